/* Storage plugins: the queue of a group-commit writer, see batch_queue.h. */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#include "batch_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/abi.h>

static void *queue_main(void *arg) {
  batch_queue *q = arg;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (!q->head && !q->stopping) pthread_cond_wait(&q->work, &q->lock);
    if (!q->head) break; /* stopping, and the queue is drained */
    size_t n = 0;
    while (q->head && n < q->batch_max) {
      q->batch[n++] = q->head;
      q->head = q->head->next;
    }
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->lock);

    q->run(q->data, q->batch, n);

    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++) {
      q->batch[i]->done = true;
      pthread_cond_signal(&q->batch[i]->done_cond);
    }
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

int batch_queue_start(batch_queue *q, uint32_t batch_max, batch_run_fn run, void *data, char *err, size_t cap) {
  memset(q, 0, sizeof *q);
  q->batch = calloc(batch_max, sizeof *q->batch);
  if (!q->batch) {
    snprintf(err, cap, "out of memory");
    return EP_ENOMEM;
  }
  q->batch_max = batch_max;
  q->run = run;
  q->data = data;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->work, NULL);
  int e = pthread_create(&q->thread, NULL, queue_main, q);
  if (e != 0) {
    snprintf(err, cap, "cannot start the writer thread: %s", strerror(e));
    pthread_cond_destroy(&q->work);
    pthread_mutex_destroy(&q->lock);
    free(q->batch);
    q->batch = NULL;
    return -e;
  }
  q->running = true;
  return 0;
}

bool batch_queue_submit(batch_queue *q, batch_item *item) {
  if (!q->running) return false; /* never started, or stopped: its lock is gone */
  item->done = false;
  item->next = NULL;
  pthread_cond_init(&item->done_cond, NULL);
  pthread_mutex_lock(&q->lock);
  if (q->stopping) {
    pthread_mutex_unlock(&q->lock);
    pthread_cond_destroy(&item->done_cond);
    return false;
  }
  if (q->tail)
    q->tail->next = item;
  else
    q->head = item;
  q->tail = item;
  pthread_cond_signal(&q->work);
  while (!item->done) pthread_cond_wait(&item->done_cond, &q->lock);
  pthread_mutex_unlock(&q->lock);
  pthread_cond_destroy(&item->done_cond);
  return true;
}

void batch_queue_stop(batch_queue *q) {
  if (!q->running) return;
  pthread_mutex_lock(&q->lock);
  q->stopping = true;
  pthread_cond_signal(&q->work);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->thread, NULL);
  q->running = false;
  pthread_cond_destroy(&q->work);
  pthread_mutex_destroy(&q->lock);
  free(q->batch);
  q->batch = NULL;
}
