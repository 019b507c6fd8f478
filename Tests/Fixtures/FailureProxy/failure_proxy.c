/*
 * failure_proxy.c - a device plugin that wraps another and makes some of its ops fail, for
 * the host's tests of errors that change data: the host must never compute with a stale
 * device mapping or wrong data, whichever plugin lets it down.
 *
 * Built by the test suite with PROXY_TARGET="/path/to/libSimDevice.so". At init it loads
 * the target, initializes it with the proxy's own host services (so the target reads its
 * options as FailureProxy.<key>) and forwards every op to it, except:
 *   FailureProxy.proxy-fail-zap-every=N       every Nth zap returns -EIO without zapping
 *   FailureProxy.proxy-fail-copy-out-every=N  every Nth copy_to_ram returns -EIO uncopied
 * (0 or unset: never). The contexts are the target's own: the proxy keeps no state per
 * device, only its counters.
 */
#define _DEFAULT_SOURCE
#include "svm_plugin_abi.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef PROXY_TARGET
#error "PROXY_TARGET names the plugin file to wrap"
#endif

/* Set once by init, before the host calls any other op. */
static const struct svm_plugin_descriptor *target;
static const struct svm_host_services *services;
static uint64_t zap_every, copy_out_every;
static atomic_uint_fast64_t zaps, copies_out;

static void proxy_log(int32_t level, const char *message) {
    if (SVM_ABI_HAS(services, struct svm_host_services, log) && services->log)
        services->log(services->host_ctx, level, message);
}

static uint64_t proxy_option(const char *key) {
    char value[32];
    if (!SVM_ABI_HAS(services, struct svm_host_services, config_get) || !services->config_get ||
        services->config_get(services->host_ctx, key, value, sizeof value) < 0)
        return 0;
    return strtoull(value, NULL, 10);
}

/* Whether this call, the nth (from 1) of an op failing every `every`, fails. */
static int proxy_fails(atomic_uint_fast64_t *calls, uint64_t every) {
    uint64_t n = atomic_fetch_add(calls, 1) + 1;
    return every != 0 && n % every == 0;
}

static svm_status proxy_init(const struct svm_plugin_descriptor *self, const struct svm_host_services *host,
                             void **plugin_ctx) {
    (void)self;
    services = host;
    void *image = dlopen(PROXY_TARGET, RTLD_NOW | RTLD_LOCAL);
    svm_plugin_entry_fn entry = image ? (svm_plugin_entry_fn)dlsym(image, SVM_PLUGIN_ENTRY_SYMBOL) : NULL;
    struct svm_plugin_request request = {
        .struct_size = sizeof request, .host_abi_major = host->abi_major, .host_abi_minor = host->abi_minor};
    target = entry ? entry(&request) : NULL;
    if (!target || target->abi_major != SVM_PLUGIN_ABI_MAJOR || target->abi_minor != SVM_PLUGIN_ABI_MINOR ||
        target->kind != SVM_PLUGIN_KIND_DEVICE) {
        proxy_log(SVM_LOG_ERROR, "cannot load the target " PROXY_TARGET " as a device plugin of this ABI");
        return -EINVAL;
    }
    zap_every = proxy_option("proxy-fail-zap-every");
    copy_out_every = proxy_option("proxy-fail-copy-out-every");
    return target->init(target, host, plugin_ctx);
}

static void proxy_fini(void *plugin_ctx) {
    if (target->fini) target->fini(plugin_ctx);
}

static svm_status proxy_device_count(void *plugin_ctx, uint32_t *count) {
    return target->device_ops->device_count(plugin_ctx, count);
}

static svm_status proxy_device_info(void *plugin_ctx, uint32_t index, struct svm_device_info *info) {
    return target->device_ops->device_info(plugin_ctx, index, info);
}

static svm_status proxy_open_device(void *plugin_ctx, uint32_t index, uint64_t host_device, void **device_ctx) {
    return target->device_ops->open_device(plugin_ctx, index, host_device, device_ctx);
}

static void proxy_close_device(void *device_ctx) { target->device_ops->close_device(device_ctx); }

static svm_status proxy_bind(void *device_ctx, uint64_t address, uint64_t size, const struct svm_bind_piece *pieces,
                             uint32_t count, uint32_t flags) {
    return target->device_ops->bind(device_ctx, address, size, pieces, count, flags);
}

static svm_status proxy_zap(void *device_ctx, uint64_t address, uint64_t size) {
    if (proxy_fails(&zaps, zap_every)) return -EIO; /* the device keeps its translations */
    return target->device_ops->zap(device_ctx, address, size);
}

static svm_status proxy_run_kernel(void *device_ctx, const struct svm_kernel *kernel, struct svm_kernel_result *result) {
    return target->device_ops->run_kernel(device_ctx, kernel, result);
}

static svm_status proxy_pagemap_info(void *device_ctx, struct svm_pagemap_info *info) {
    return target->pagemap_ops->pagemap_info(device_ctx, info);
}

static svm_status proxy_devmem_alloc(void *device_ctx, uint64_t size, uint64_t *offset) {
    return target->pagemap_ops->devmem_alloc(device_ctx, size, offset);
}

static void proxy_devmem_free(void *device_ctx, uint64_t offset, uint64_t size) {
    target->pagemap_ops->devmem_free(device_ctx, offset, size);
}

static svm_status proxy_copy_to_devmem(void *device_ctx, uint64_t offset, const void *source, uint64_t size) {
    return target->pagemap_ops->copy_to_devmem(device_ctx, offset, source, size);
}

static svm_status proxy_copy_to_ram(void *device_ctx, uint64_t offset, void *destination, uint64_t size) {
    if (proxy_fails(&copies_out, copy_out_every)) return -EIO; /* nothing copied */
    return target->pagemap_ops->copy_to_ram(device_ctx, offset, destination, size);
}

static const struct svm_device_ops proxy_device_ops = {
    .struct_size = sizeof(struct svm_device_ops),
    .device_count = proxy_device_count,
    .device_info = proxy_device_info,
    .open_device = proxy_open_device,
    .close_device = proxy_close_device,
    .bind = proxy_bind,
    .zap = proxy_zap,
    .run_kernel = proxy_run_kernel,
};

static const struct svm_pagemap_ops proxy_pagemap_ops = {
    .struct_size = sizeof(struct svm_pagemap_ops),
    .pagemap_info = proxy_pagemap_info,
    .devmem_alloc = proxy_devmem_alloc,
    .devmem_free = proxy_devmem_free,
    .copy_to_devmem = proxy_copy_to_devmem,
    .copy_to_ram = proxy_copy_to_ram,
};

static const struct svm_plugin_descriptor proxy_descriptor = {
    .struct_size = sizeof(struct svm_plugin_descriptor),
    .abi_major = SVM_PLUGIN_ABI_MAJOR,
    .abi_minor = SVM_PLUGIN_ABI_MINOR,
    .kind = SVM_PLUGIN_KIND_DEVICE,
    .name = "FailureProxy",
    .version = "1.0.0",
    .description = "Forwards to another device plugin; fails some zaps and copies out",
    .init = proxy_init,
    .fini = proxy_fini,
    .device_ops = &proxy_device_ops,
    .pagemap_ops = &proxy_pagemap_ops,
};

const struct svm_plugin_descriptor *svm_plugin_entry(const struct svm_plugin_request *request) {
    (void)request;
    return &proxy_descriptor;
}
