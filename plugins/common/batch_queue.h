/* Storage plugins: the queue of a group-commit writer. Callers queue an item (embedded in
 * their request, on their stack) and wait; one thread takes up to batch_max queued items at
 * a time and hands them to the plugin's run function (which commits them together and fills
 * in each request's result), then wakes their callers. Stopping drains the queue first. */
#ifndef EP_PLUGIN_BATCH_QUEUE_H
#define EP_PLUGIN_BATCH_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct batch_item {
  bool done;
  pthread_cond_t done_cond;
  struct batch_item *next;
} batch_item;

/* Commits items[0..n-1] (the plugin's requests, through container_of-like casts). Runs on the
 * queue's thread only. */
typedef void (*batch_run_fn)(void *data, batch_item **items, size_t n);

typedef struct batch_queue {
  pthread_mutex_t lock;
  pthread_cond_t work; /* queue not empty, or stopping */
  batch_item *head, *tail;
  bool stopping, running;
  pthread_t thread;
  uint32_t batch_max;
  batch_item **batch;
  batch_run_fn run;
  void *data;
} batch_queue;

/* Starts the thread. Returns 0, or EP_ENOMEM / -errno with a message in err (cap bytes). */
int batch_queue_start(batch_queue *q, uint32_t batch_max, batch_run_fn run, void *data, char *err, size_t cap);

/* Queues item and waits until run has handled it: true. False at once when the queue is
 * stopping or stopped (the item was not run). Any thread, while the queue exists. */
bool batch_queue_submit(batch_queue *q, batch_item *item);

/* Lets the thread drain the queue and joins it. Safe on a queue that never started. */
void batch_queue_stop(batch_queue *q);

#endif
