/* Compile-time checks that keep the ABI header honest: the layout a plugin built by another
 * compiler relies on. */
#include "svm_plugin_abi.h"


/* Layout facts a plugin built by another compiler relies on (x86_64 / aarch64 LP64). */
_Static_assert(sizeof(struct svm_plugin_request) == 8, "request layout");
_Static_assert(offsetof(struct svm_plugin_descriptor, name) == 16, "descriptor layout");
_Static_assert(offsetof(struct svm_host_services, log) == 16, "host services layout");
_Static_assert(offsetof(struct svm_device_info, name) == 8, "device info layout");
_Static_assert(sizeof(struct svm_device_info) == 96, "device info size");
_Static_assert(sizeof(struct svm_link_info) == 96, "link info size");
