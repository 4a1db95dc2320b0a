/* core: the host-services table handed to plugins (edgeprov/host.h), answering each call
 * from the ep_ctx it is given (runtime/plugin_ctx.h). */
#ifndef EP_CORE_HOST_SERVICES_H
#define EP_CORE_HOST_SERVICES_H

#include <edgeprov/host.h>

#include "runtime/plugin_ctx.h"

/* The table handed to every plugin's init; static, valid for the life of the process. */
const ep_host *ep_host_table(void);

#endif
