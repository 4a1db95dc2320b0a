/* edgeprov SDK: everything a plugin includes. */
#ifndef EDGEPROV_EDGEPROV_H
#define EDGEPROV_EDGEPROV_H

#include "abi.h"
#include "actions.h"
#include "boot.h"
#include "host.h"
#include "identity.h"
#include "os.h"
#include "plugin.h"
#include "storage.h"

#endif
