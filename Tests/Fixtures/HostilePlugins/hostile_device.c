/*
 * hostile_device.c - a device plugin that breaks the ABI's rules on purpose, one way per
 * build, for the host's trust-boundary tests. The test suite compiles it with HOSTILE_*
 * macros; each build must be refused with one line, or load and fail its ops with errors
 * the host names, while the host and the other plugins carry on.
 *
 *   HOSTILE_NAME, HOSTILE_VERSION     the descriptor's strings (newlines, escapes)
 *   HOSTILE_<OP>_STATUS               what init / device_count / device_info / open_device /
 *                                     pagemap_info return (INT32_MIN, INT32_MAX, -12345)
 *   HOSTILE_DEVICE_COUNT              the count device_count reports (UINT32_MAX)
 *   HOSTILE_LOG_NEWLINES, HOSTILE_LOG_HUGE   what init logs (control characters; 1 MiB)
 *   HOSTILE_PAGE_END_TABLES           the ops tables declare their ABI 1.0 size and end
 *                                     exactly at a page boundary, before an unmapped page
 *   HOSTILE_ENTRY_IS_DATA             the entry symbol is an array, not a function
 *   HOSTILE_BAD_PRIVATE_MEMORY        init declares bad private-memory intervals (ABI 1.5)
 *   HOSTILE_INTERCONNECT              an interconnect plugin instead, whose link_info writes
 *                                     HOSTILE_LINK_PROTOCOL and a name filling all of
 *                                     name[] with no NUL, escapes and a newline in it
 */
#define _DEFAULT_SOURCE
#include "svm_plugin_abi.h"
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef HOSTILE_NAME
#define HOSTILE_NAME "Hostile"
#endif
#ifndef HOSTILE_VERSION
#define HOSTILE_VERSION "1.0.0"
#endif
#ifndef HOSTILE_INIT_STATUS
#define HOSTILE_INIT_STATUS 0
#endif
#ifndef HOSTILE_DEVICE_COUNT_STATUS
#define HOSTILE_DEVICE_COUNT_STATUS 0
#endif
#ifndef HOSTILE_DEVICE_INFO_STATUS
#define HOSTILE_DEVICE_INFO_STATUS 0
#endif
#ifndef HOSTILE_OPEN_DEVICE_STATUS
#define HOSTILE_OPEN_DEVICE_STATUS 0
#endif
#ifndef HOSTILE_PAGEMAP_INFO_STATUS
#define HOSTILE_PAGEMAP_INFO_STATUS 0
#endif
#ifndef HOSTILE_DEVICE_COUNT
#define HOSTILE_DEVICE_COUNT 1
#endif

static svm_status hostile_init(const struct svm_plugin_descriptor *self,
                               const struct svm_host_services *host, void **plugin_ctx) {
    (void)self;
    *plugin_ctx = NULL;
#if defined(HOSTILE_LOG_NEWLINES)
    host->log(host->host_ctx, SVM_LOG_ERROR, "first line\nsecond line\r\x1b[31mred\x1b[0m\ttab\x7f");
#elif defined(HOSTILE_LOG_HUGE)
    size_t size = 1u << 20;
    char *line = malloc(size + 1);
    if (line) {
        memset(line, 'x', size);
        line[size] = '\0';
        host->log(host->host_ctx, SVM_LOG_INFO, line);
        free(line);
    }
#elif defined(HOSTILE_BAD_PRIVATE_MEMORY)
    /* Every bad declaration must come back -EINVAL: unaligned, empty, wrapping, unmapped,
     * overlapping, and a withdrawal of what was never declared. */
    void *mapped = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return -ENOMEM;
    uint64_t base = (uint64_t)(uintptr_t)mapped;
    int refused = host->add_private_memory(host->host_ctx, base + 1, 4096) == -EINVAL;
    refused += host->add_private_memory(host->host_ctx, base, 0) == -EINVAL;
    refused += host->add_private_memory(host->host_ctx, UINT64_MAX - 4095, 2 * 4096) == -EINVAL;
    munmap((char *)mapped + 4096, 4096);
    refused += host->add_private_memory(host->host_ctx, base, 2 * 4096) == -EINVAL;
    int declared = host->add_private_memory(host->host_ctx, base, 4096) == 0;
    refused += host->add_private_memory(host->host_ctx, base, 4096) == -EINVAL;
    refused += host->remove_private_memory(host->host_ctx, base + 4096, 4096) == -EINVAL;
    int withdrawn = host->remove_private_memory(host->host_ctx, base, 4096) == 0;
    munmap(mapped, 4096);
    if (refused != 6 || !declared || !withdrawn) return -ENOTRECOVERABLE;
#else
    (void)host;
#endif
    return HOSTILE_INIT_STATUS;
}

static svm_status hostile_device_count(void *plugin_ctx, uint32_t *count) {
    (void)plugin_ctx;
    *count = HOSTILE_DEVICE_COUNT;
    return HOSTILE_DEVICE_COUNT_STATUS;
}

static svm_status hostile_device_info(void *plugin_ctx, uint32_t index, struct svm_device_info *info) {
    (void)plugin_ctx;
    if (index >= HOSTILE_DEVICE_COUNT) return -ENODEV;
    svm_abi_copy_name(info->name, sizeof info->name, "hostile\n\x1b[2J0");
    info->flags = SVM_DEVICE_SIMULATED;
    return HOSTILE_DEVICE_INFO_STATUS;
}

static int hostile_device_token;

static svm_status hostile_open_device(void *plugin_ctx, uint32_t index, uint64_t host_device, void **device_ctx) {
    (void)plugin_ctx, (void)index, (void)host_device;
    *device_ctx = &hostile_device_token;
    return HOSTILE_OPEN_DEVICE_STATUS;
}

static void hostile_close_device(void *device_ctx) { (void)device_ctx; }

static svm_status hostile_pagemap_info(void *device_ctx, struct svm_pagemap_info *info) {
    (void)device_ctx;
    info->min_page_size = 4096;
    info->capacity_bytes = 1u << 20;
    return HOSTILE_PAGEMAP_INFO_STATUS;
}

static const struct svm_device_ops hostile_device_ops = {
    .struct_size = sizeof(struct svm_device_ops),
    .device_count = hostile_device_count,
    .device_info = hostile_device_info,
    .open_device = hostile_open_device,
    .close_device = hostile_close_device,
};

static const struct svm_pagemap_ops hostile_pagemap_ops = {
    .struct_size = sizeof(struct svm_pagemap_ops),
    .pagemap_info = hostile_pagemap_info,
};

#ifndef HOSTILE_LINK_PROTOCOL
#define HOSTILE_LINK_PROTOCOL SVM_PROTOCOL_FABRIC
#endif

static svm_status hostile_link_info(void *plugin_ctx, struct svm_link_info *info) {
    (void)plugin_ctx;
    memset(info->name, 'L', sizeof info->name);
    memcpy(info->name, "link\n\x1b[2J", 9); /* no NUL */
    info->protocol = HOSTILE_LINK_PROTOCOL;
    info->bandwidth_bytes_per_s = UINT64_MAX;
    info->latency_ns = UINT64_MAX;
    info->max_endpoints = UINT32_MAX;
    return 0;
}

static const struct svm_interconnect_ops hostile_interconnect_ops = {
    .struct_size = sizeof(struct svm_interconnect_ops),
    .link_info = hostile_link_info,
};

static struct svm_plugin_descriptor hostile_descriptor = {
    .struct_size = sizeof(struct svm_plugin_descriptor),
    .abi_major = SVM_PLUGIN_ABI_MAJOR,
    .abi_minor = SVM_PLUGIN_ABI_MINOR,
#ifdef HOSTILE_INTERCONNECT
    .kind = SVM_PLUGIN_KIND_INTERCONNECT,
    .interconnect_ops = &hostile_interconnect_ops,
#else
    .kind = SVM_PLUGIN_KIND_DEVICE,
#endif
    .name = HOSTILE_NAME,
    .version = HOSTILE_VERSION,
    .description = "a plugin that breaks the ABI on purpose",
    .init = hostile_init,
    .device_ops = &hostile_device_ops,
    .pagemap_ops = &hostile_pagemap_ops,
};

#ifdef HOSTILE_PAGE_END_TABLES
/* Copies the first `size` bytes of `table` so that they end where an unmapped page begins:
 * a host that reads its own, larger, struct from there faults. */
static void *at_page_end(const void *table, size_t size) {
    long page = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) return NULL;
    munmap(pages + page, (size_t)page);
    char *start = pages + page - size;
    memcpy(start, table, size);
    *(uint32_t *)start = (uint32_t)size;
    return start;
}
#endif

#ifdef HOSTILE_ENTRY_IS_DATA
__attribute__((visibility("default"))) const unsigned char svm_plugin_entry[64] = {0};
#else
__attribute__((visibility("default")))
const struct svm_plugin_descriptor *svm_plugin_entry(const struct svm_plugin_request *request) {
    (void)request;
#ifdef HOSTILE_PAGE_END_TABLES
    static const struct svm_plugin_descriptor *placed;
    if (!placed) {
        hostile_descriptor.device_ops = at_page_end(&hostile_device_ops, offsetof(struct svm_device_ops, bind));
        hostile_descriptor.pagemap_ops = at_page_end(&hostile_pagemap_ops, offsetof(struct svm_pagemap_ops, devmem_alloc));
        placed = at_page_end(&hostile_descriptor, offsetof(struct svm_plugin_descriptor, plugin_data) + sizeof(void *));
    }
    return placed;
#else
    return &hostile_descriptor;
#endif
}
#endif
