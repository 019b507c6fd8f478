/*
 * example_device.c - a complete SVMFramework device plugin in plain C.
 *
 * It exposes one device, "example0", whose device memory size is the option
 * `--plugin-option ExampleC.memory-mib=N` (default 256), and logs through the host at init.
 * Build it on its own with:
 *
 *     cc -shared -fPIC -I Sources/CSVMPluginABI/include \
 *        Tests/Fixtures/ExampleCPlugin/example_device.c -o libExampleC.so
 *
 * As it stands it implements none of the optional ops of ABI 1.1 (device memory, bind, zap,
 * kernels): the host describes its device but answers -EOPNOTSUPP for them. Built with
 * EXAMPLE_DEVICE_MEMORY it also has device memory (mapped memory it declares its own with
 * add_private_memory, ABI 1.5, but not host memory the host may move pages into: every
 * migration takes the copy path) and a page table that only accepts binds and zaps, enough
 * for the host to migrate ranges to it and back.
 *
 * The EXAMPLE_* macros exist for the test suite, which compiles broken variants of this
 * file (another name, another ABI major, no entry symbol, a missing required op, a failing
 * init, devmem_alloc without the ops it requires) to check that the host refuses each of
 * them and loads the rest, and a variant declaring ABI 1.0 (EXAMPLE_ABI_1_0).
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE under -std=c11 */
#include "svm_plugin_abi.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef EXAMPLE_NAME
#define EXAMPLE_NAME "ExampleC"
#endif
#ifndef EXAMPLE_ABI_MAJOR
#define EXAMPLE_ABI_MAJOR SVM_PLUGIN_ABI_MAJOR
#endif
#ifndef EXAMPLE_ENTRY
#define EXAMPLE_ENTRY svm_plugin_entry
#endif
/* A 1.0 plugin's tables end before the members 1.1 appended: the host must not read them. */
#ifdef EXAMPLE_ABI_1_0
#define EXAMPLE_ABI_MINOR 0
#define EXAMPLE_PAGEMAP_OPS_SIZE offsetof(struct svm_pagemap_ops, devmem_alloc)
#else
#define EXAMPLE_ABI_MINOR SVM_PLUGIN_ABI_MINOR
#define EXAMPLE_PAGEMAP_OPS_SIZE sizeof(struct svm_pagemap_ops)
#endif

struct example_plugin {
    const struct svm_host_services *host;
    uint64_t memory_bytes;
};

struct example_block {
    uint64_t offset, size;
};

struct example_device {
    struct example_plugin *plugin;
    uint64_t host_device;
#ifdef EXAMPLE_DEVICE_MEMORY
    /* Device memory: bytes handed out from the bottom up; freed blocks are kept by size
     * and reused first. The host calls from any thread: the mutex orders them. */
    pthread_mutex_t lock;
    unsigned char *memory;
    uint64_t next;
    struct example_block freed[1024];
    unsigned freed_count;
#endif
};

static void example_log(const struct example_plugin *plugin, int32_t level, const char *text) {
    if (SVM_ABI_HAS(plugin->host, struct svm_host_services, log) && plugin->host->log)
        plugin->host->log(plugin->host->host_ctx, level, text);
}

static svm_status example_init(const struct svm_plugin_descriptor *self,
                               const struct svm_host_services *host, void **plugin_ctx) {
    (void)self;
    struct example_plugin *plugin = calloc(1, sizeof *plugin);
    if (!plugin) return -ENOMEM;
    plugin->host = host;
    plugin->memory_bytes = 256ull << 20;
#ifdef EXAMPLE_INIT_FAILS
    example_log(plugin, SVM_LOG_ERROR, "no example hardware (built with EXAMPLE_INIT_FAILS)");
    free(plugin);
    (void)plugin_ctx;
    return -ENODEV;
#endif

    char value[32];
    if (SVM_ABI_HAS(host, struct svm_host_services, config_get) && host->config_get &&
        host->config_get(host->host_ctx, "memory-mib", value, sizeof value) >= 0) {
        char *end = NULL;
        unsigned long long mib = strtoull(value, &end, 10);
        if (*value == '\0' || *end != '\0' || mib == 0 || mib > (1ull << 20)) {
            example_log(plugin, SVM_LOG_ERROR, "memory-mib must be 1 to 1048576");
            free(plugin);
            return -EINVAL;
        }
        plugin->memory_bytes = mib << 20;
    }

    char line[96];
    snprintf(line, sizeof line, "example plugin ready: %llu MiB of device memory",
             (unsigned long long)(plugin->memory_bytes >> 20));
    example_log(plugin, SVM_LOG_INFO, line);
    *plugin_ctx = plugin;
    return 0;
}

static void example_fini(void *plugin_ctx) {
    struct example_plugin *plugin = plugin_ctx;
    example_log(plugin, SVM_LOG_DEBUG, "example plugin finalised");
    free(plugin);
}

static svm_status example_device_count(void *plugin_ctx, uint32_t *count) {
    (void)plugin_ctx;
    *count = 1;
    return 0;
}

static svm_status example_device_info(void *plugin_ctx, uint32_t index,
                                      struct svm_device_info *info) {
    const struct example_plugin *plugin = plugin_ctx;
    if (index != 0) return -ENODEV;
    /* The host zeroed *info and set struct_size: fill what fits. */
    svm_abi_copy_name(info->name, sizeof info->name, "example0");
    info->flags = SVM_DEVICE_SIMULATED;
    if (SVM_ABI_HAS(info, struct svm_device_info, memory_bytes))
        info->memory_bytes = plugin->memory_bytes;
    if (SVM_ABI_HAS(info, struct svm_device_info, page_size_mask))
        info->page_size_mask = (1u << 12) | (1u << 21); /* 4 KiB and 2 MiB */
    return 0;
}

static svm_status example_open_device(void *plugin_ctx, uint32_t index, uint64_t host_device,
                                      void **device_ctx) {
    if (index != 0) return -ENODEV;
    struct example_device *device = calloc(1, sizeof *device);
    if (!device) return -ENOMEM;
    device->plugin = plugin_ctx;
    device->host_device = host_device;
#ifdef EXAMPLE_DEVICE_MEMORY
    /* Anonymous memory of its own: pages cost memory only once written. */
    void *memory = mmap(NULL, device->plugin->memory_bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
        free(device);
        return -ENOMEM;
    }
    device->memory = memory;
    /* The plugin's own memory, not the program's: the host makes no SVM range over it, even
     * when a device faults on it through a stray pointer. A host older than 1.5 has no such
     * service; the memory then only relies on nobody pointing a device at it. */
    const struct svm_host_services *host = device->plugin->host;
    if (SVM_ABI_HAS(host, struct svm_host_services, add_private_memory) && host->add_private_memory &&
        host->add_private_memory(host->host_ctx, (uint64_t)(uintptr_t)memory, device->plugin->memory_bytes) != 0) {
        munmap(memory, device->plugin->memory_bytes);
        free(device);
        return -ENOMEM;
    }
    pthread_mutex_init(&device->lock, NULL);
#endif
    *device_ctx = device;
    return 0;
}

static void example_close_device(void *device_ctx) {
#ifdef EXAMPLE_DEVICE_MEMORY
    struct example_device *device = device_ctx;
    pthread_mutex_destroy(&device->lock);
    const struct svm_host_services *host = device->plugin->host;
    if (SVM_ABI_HAS(host, struct svm_host_services, remove_private_memory) && host->remove_private_memory)
        host->remove_private_memory(host->host_ctx, (uint64_t)(uintptr_t)device->memory, device->plugin->memory_bytes);
    munmap(device->memory, device->plugin->memory_bytes);
#endif
    free(device_ctx);
}

static svm_status example_pagemap_info(void *device_ctx, struct svm_pagemap_info *info) {
    const struct example_device *device = device_ctx;
    info->min_page_size = 4096;
    info->capacity_bytes = device->plugin->memory_bytes;
    return 0;
}

#if defined(EXAMPLE_DEVMEM_ALLOC_ONLY) || defined(EXAMPLE_ABI_1_0)
/* devmem_alloc without devmem_free, copy_to_devmem and copy_to_ram: refused in a 1.1
 * table; in a 1.0 table it lies past struct_size, where the host does not look. */
static svm_status example_devmem_alloc(void *device_ctx, uint64_t size, uint64_t *offset) {
    (void)device_ctx;
    (void)size;
    (void)offset;
    return -ENOMEM;
}
#endif

#ifdef EXAMPLE_DEVICE_MEMORY
/* Sizes are powers of two of at least min_page_size: a block is naturally aligned. */
static svm_status example_devmem_alloc(void *device_ctx, uint64_t size, uint64_t *offset) {
    struct example_device *device = device_ctx;
    if (size < 4096 || (size & (size - 1)) != 0) return -EINVAL;
    svm_status status = -ENOMEM;
    pthread_mutex_lock(&device->lock);
    for (unsigned i = 0; i < device->freed_count; i++) {
        if (device->freed[i].size == size) {
            *offset = device->freed[i].offset;
            device->freed[i] = device->freed[--device->freed_count];
            status = 0;
            break;
        }
    }
    uint64_t start = (device->next + size - 1) & ~(size - 1);
    if (status != 0 && start + size <= device->plugin->memory_bytes) {
        *offset = start;
        device->next = start + size;
        status = 0;
    }
    pthread_mutex_unlock(&device->lock);
    return status; /* -ENOMEM: the host evicts and asks again */
}

static void example_devmem_free(void *device_ctx, uint64_t offset, uint64_t size) {
    struct example_device *device = device_ctx;
    pthread_mutex_lock(&device->lock);
    if (device->freed_count < sizeof device->freed / sizeof device->freed[0])
        device->freed[device->freed_count++] = (struct example_block){offset, size};
    pthread_mutex_unlock(&device->lock);
}

static int example_inside(const struct example_device *device, uint64_t offset, uint64_t size) {
    return offset <= device->plugin->memory_bytes && size <= device->plugin->memory_bytes - offset;
}

static svm_status example_copy_to_devmem(void *device_ctx, uint64_t offset, const void *source,
                                         uint64_t size) {
    struct example_device *device = device_ctx;
    if (!example_inside(device, offset, size)) return -EINVAL;
    memcpy(device->memory + offset, source, size);
    return 0;
}

static svm_status example_copy_to_ram(void *device_ctx, uint64_t offset, void *destination,
                                      uint64_t size) {
    struct example_device *device = device_ctx;
    if (!example_inside(device, offset, size)) return -EINVAL;
    memcpy(destination, device->memory + offset, size);
    return 0;
}

/* A page table that keeps nothing: this device runs no kernels, so no access needs a
 * translation; the host still binds what it migrated and zaps what it takes away. */
static svm_status example_bind(void *device_ctx, uint64_t address, uint64_t size,
                               const struct svm_bind_piece *pieces, uint32_t count,
                               uint32_t flags) {
    (void)device_ctx, (void)address, (void)size, (void)pieces, (void)count, (void)flags;
    return 0;
}

static svm_status example_zap(void *device_ctx, uint64_t address, uint64_t size) {
    (void)device_ctx, (void)address, (void)size;
    return 0;
}
#endif

static const struct svm_device_ops example_device_ops = {
    .struct_size = sizeof(struct svm_device_ops),
    .device_count = example_device_count,
#ifndef EXAMPLE_WITHOUT_DEVICE_INFO
    .device_info = example_device_info,
#endif
    .open_device = example_open_device,
    .close_device = example_close_device,
#ifdef EXAMPLE_DEVICE_MEMORY
    .bind = example_bind,
    .zap = example_zap,
#endif
};

static const struct svm_pagemap_ops example_pagemap_ops = {
    .struct_size = EXAMPLE_PAGEMAP_OPS_SIZE,
    .pagemap_info = example_pagemap_info,
#if defined(EXAMPLE_DEVMEM_ALLOC_ONLY) || defined(EXAMPLE_ABI_1_0)
    .devmem_alloc = example_devmem_alloc,
#elif defined(EXAMPLE_DEVICE_MEMORY)
    .devmem_alloc = example_devmem_alloc,
    .devmem_free = example_devmem_free,
    .copy_to_devmem = example_copy_to_devmem,
    .copy_to_ram = example_copy_to_ram,
#endif
};

static const struct svm_plugin_descriptor example_descriptor = {
    .struct_size = sizeof(struct svm_plugin_descriptor),
    .abi_major = EXAMPLE_ABI_MAJOR,
    .abi_minor = EXAMPLE_ABI_MINOR,
    .kind = SVM_PLUGIN_KIND_DEVICE,
    .name = EXAMPLE_NAME,
    .version = "1.0.0",
    .description = "Example device plugin written in C",
    .init = example_init,
    .fini = example_fini,
    .device_ops = &example_device_ops,
    .pagemap_ops = &example_pagemap_ops,
};

__attribute__((visibility("default")))
const struct svm_plugin_descriptor *EXAMPLE_ENTRY(const struct svm_plugin_request *request) {
    /* A host of another major lays out every struct differently: refuse it. */
    if (request->host_abi_major != SVM_PLUGIN_ABI_MAJOR) return NULL;
    return &example_descriptor;
}
