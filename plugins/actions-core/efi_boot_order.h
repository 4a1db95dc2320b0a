/* actions-core: efi.boot_order, the installed OS put first in the firmware's boot order. */
#ifndef EP_ACTIONS_CORE_EFI_BOOT_ORDER_H
#define EP_ACTIONS_CORE_EFI_BOOT_ORDER_H

#include <edgeprov/edgeprov.h>

extern const ep_field_decl efi_boot_order_params[];
extern const uint32_t efi_boot_order_params_count;

/* Reads BootOrder and the Boot#### load options from "efivars_dir" (efivarfs, or a plain
 * directory of files in its format: 4 bytes of attributes, then the payload) and writes a
 * BootOrder with the matching entries first, the others after them in their old order.
 * Matching entries: those whose description is "entry_label"; when it is empty, or matches
 * nothing and "target" is given, those whose hard-drive device path names a GPT partition
 * (by its unique GUID) of the target. No match logs a warning listing the entries found and
 * leaves BootOrder alone (the firmware's removable-media path still boots a freshly written
 * disk), or fails with that message when "fail_if_missing" is set. On efivarfs the
 * immutable flag is cleared for the write and restored after it; an order that is already
 * right is not rewritten. */
int32_t efi_boot_order_run(void *plugin_state, ep_ctx *ctx);

#endif
