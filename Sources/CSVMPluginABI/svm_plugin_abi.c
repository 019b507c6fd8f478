/* Compile-time checks that keep the ABI header honest: the layout a plugin built by another
 * compiler relies on. */
#include "svm_plugin_abi.h"


/* Layout facts a plugin built by another compiler relies on (x86_64 / aarch64 LP64). */
_Static_assert(sizeof(struct svm_plugin_request) == 8, "request layout");
_Static_assert(offsetof(struct svm_plugin_descriptor, name) == 16, "descriptor layout");
_Static_assert(offsetof(struct svm_host_services, log) == 16, "host services layout");
_Static_assert(offsetof(struct svm_host_services, report_device_reset) == 48, "host services 1.3 appended after config_get");
_Static_assert(offsetof(struct svm_host_services, add_private_memory) == 56, "host services 1.5 appended after report_device_reset");
_Static_assert(offsetof(struct svm_host_services, report_device_reset_begin) == 72, "host services 1.7 appended");
_Static_assert(sizeof(struct svm_host_services) == 80, "host services 1.7 size");
_Static_assert(offsetof(struct svm_device_info, name) == 8, "device info layout");
_Static_assert(offsetof(struct svm_device_info, location) == 96, "device info 1.6 appended after page_size_mask");
_Static_assert(sizeof(struct svm_device_info) == 160, "device info 1.6 size");
_Static_assert(offsetof(struct svm_interconnect_ops, link_count) == 24, "interconnect ops 1.6 appended after can_connect");
_Static_assert(sizeof(struct svm_topology_link) == 224, "topology link size");
_Static_assert(offsetof(struct svm_path, hops) == 32, "path layout");
_Static_assert(sizeof(struct svm_link_info) == 96, "link info size");
/* ABI 1.1 growth: appended members only. */
_Static_assert(sizeof(struct svm_bind_piece) == 16, "bind piece layout");
_Static_assert(offsetof(struct svm_kernel, source2) == 40, "kernel 1.2 appended after value");
_Static_assert(sizeof(struct svm_kernel) == 48, "kernel layout");
_Static_assert(offsetof(struct svm_kernel_result, accesses) == 32, "kernel result 1.2 appended after bytes");
_Static_assert(offsetof(struct svm_kernel_result, peer_bytes_read) == 96, "kernel result 1.7 appended after busy_ns");
_Static_assert(sizeof(struct svm_kernel_result) == 112, "kernel result 1.7 size");
_Static_assert(sizeof(struct svm_bind_range) == 32, "bind range layout");
_Static_assert(offsetof(struct svm_device_ops, bind_ranges) == 64, "device ops 1.7 appended after run_kernel");
_Static_assert(offsetof(struct svm_device_fault, batch) == 16, "device fault 1.2 appended after address");
_Static_assert(offsetof(struct svm_device_ops, bind) == 40, "device ops 1.1 appended after close_device");
_Static_assert(offsetof(struct svm_pagemap_ops, devmem_alloc) == 16, "pagemap ops 1.1 appended");
_Static_assert(offsetof(struct svm_pagemap_info, used_bytes) == 16, "pagemap info 1.1 appended");
_Static_assert(offsetof(struct svm_pagemap_info, host_base) == 24, "pagemap info 1.4 appended");
_Static_assert(sizeof(struct svm_pagemap_info) == 40, "pagemap info 1.4 size");
