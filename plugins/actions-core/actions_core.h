/* actions-core: the node actions every workflow is made of (disk.erase, image.stream, ...),
 * shipped as an in-tree plugin so the agent runs them like any vendor's actions. */
#ifndef EP_ACTIONS_CORE_H
#define EP_ACTIONS_CORE_H

#include <edgeprov/edgeprov.h>

typedef struct actions_core_state {
  const ep_host *host;
  ep_ctx *ctx;
} actions_core_state;

#endif
