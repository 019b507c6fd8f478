#include "svm_platform.h"

#include <dlfcn.h>
#include <string.h>

void *svm_dl_open(const char *path, char *error, size_t error_size) {
    /* RTLD_LOCAL: each plugin keeps its own copy of the plugin kit's symbols, so plugins
     * built by different compilers never bind to each other's code. */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle && error && error_size) {
        const char *message = dlerror();
        strncpy(error, message ? message : "unknown dlopen error", error_size - 1);
        error[error_size - 1] = '\0';
    }
    return handle;
}

void *svm_dl_symbol(void *handle, const char *symbol) {
    dlerror();
    return dlsym(handle, symbol);
}
