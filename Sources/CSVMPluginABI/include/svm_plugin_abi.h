/*
 * svm_plugin_abi.h - the versioned C ABI between the SVMFramework host and its plugins.
 *
 * DOC: Overview
 * A plugin is a shared object exporting one symbol, SVM_PLUGIN_ENTRY_SYMBOL, of type
 * svm_plugin_entry_fn. The host dlopen()s the file, calls the entry with what it speaks
 * (struct svm_plugin_request) and receives a static descriptor: the plugin's name, kind,
 * the ABI version it was built against, and its ops tables. The host then validates the
 * tables, calls init() with the host services, and from then on calls ops.
 *
 * DOC: Versioning
 * - ABI major: incompatible change. The host refuses a plugin whose major differs.
 * - ABI minor: compatible growth. New members are only ever appended to structs; ops added
 *   in a minor version are optional for plugins that declare an older minor.
 * - Every struct starts with uint32_t struct_size, set by whoever owns the memory. A reader
 *   reads a member only if SVM_ABI_HAS(ptr, type, member) holds, so a 1.0 plugin runs in a
 *   1.3 host and a 1.3 plugin in a 1.0 host (it sees a smaller svm_host_services and must
 *   not call what is not there).
 * - Output structs (svm_device_info, ...) are zeroed by the host, which sets struct_size;
 *   the plugin fills only the members that fit.
 *
 * DOC: Calling contexts
 * Each op says whether it is [required] or [optional] and in which context it is called.
 * The host never holds one of its own locks while calling into a plugin unless an op says
 * so, and a plugin may call host services from any thread unless a service says otherwise.
 *
 * DOC: Status codes
 * Ops return svm_status: 0 on success, or a negative errno that tells the caller what to
 * do: -EINVAL bad argument (a bug in the caller), -ENODEV no such device, -ENOMEM out of
 * memory (the caller may evict and retry), -EAGAIN transient (retry), -EOPNOTSUPP not
 * supported (fall back), -EFAULT bad address, -EIO device error, -ENOLINK no peer path
 * between two devices (they reach each other through system memory only).
 */
#ifndef SVM_PLUGIN_ABI_H
#define SVM_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SVM_PLUGIN_ABI_MAJOR 1
#define SVM_PLUGIN_ABI_MINOR 7

/* The one symbol a plugin exports. */
#define SVM_PLUGIN_ENTRY_SYMBOL "svm_plugin_entry"

/* Length of the fixed name buffers in output structs, terminating NUL included. */
#define SVM_NAME_MAX 64

/* The most devices one plugin may expose (device_count); the host refuses a larger count. */
#define SVM_MAX_DEVICES 256

/* The most links one path between two devices may cross. */
#define SVM_MAX_HOPS 8

/* True when the struct at ptr, whose owner set struct_size, contains member. */
#define SVM_ABI_HAS(ptr, type, member) \
    ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member))

typedef int32_t svm_status;

enum svm_plugin_kind {
    SVM_PLUGIN_KIND_DEVICE = 1,       /* a device; it also provides its pagemap */
    SVM_PLUGIN_KIND_INTERCONNECT = 2, /* a fabric between devices */
};

enum svm_log_level {
    SVM_LOG_DEBUG = 0,
    SVM_LOG_INFO = 1,
    SVM_LOG_WARNING = 2,
    SVM_LOG_ERROR = 3,
};

/* How a device reaches a page: the protocol of a pagemap address. */
enum svm_protocol {
    SVM_PROTOCOL_SYSTEM = 0,     /* system memory, DMA-mapped */
    SVM_PROTOCOL_LOCAL_VRAM = 1, /* the accessing device's own memory */
    SVM_PROTOCOL_PCIE_P2P = 2,   /* a peer's memory across PCIe */
    SVM_PROTOCOL_FABRIC = 3,     /* a peer's memory across a device fabric */
};

enum svm_access {
    SVM_ACCESS_READ = 1u << 0,
    SVM_ACCESS_WRITE = 1u << 1,
    SVM_ACCESS_ATOMIC = 1u << 2,
};

enum svm_device_flags {
    SVM_DEVICE_SIMULATED = 1u << 0, /* time is simulated, memory is host memory */
    SVM_DEVICE_HARDWARE = 1u << 1,  /* a real device driven through its kernel driver */
};

/* ---------------------------------------------------------------------------------------
 * Host services: given to the plugin by init(); valid until fini() returns.
 */

/* A fault a device reports on an SVM address. */
struct svm_device_fault {
    uint32_t struct_size;
    uint32_t access;  /* enum svm_access */
    uint64_t address; /* CPU virtual address the device faulted on */
    /* [1.2] The replayable-fault batch this fault belongs to, counted from 1 per kernel
     * (0: the device does not batch). The host services a batch's faults together and
     * charges one fault-service latency per batch in simulated time. */
    uint64_t batch;
};

struct svm_host_services {
    uint32_t struct_size;
    uint16_t abi_major; /* what the host speaks */
    uint16_t abi_minor;
    void *host_ctx; /* pass back as the first argument of every service */

    /* [1.0] Log one line (no trailing newline needed). Any thread. */
    void (*log)(void *host_ctx, int32_t level, const char *message);

    /* [1.0] Report a device fault on an SVM address of the device the host opened as
     * host_device (see open_device). Called from the device's fault-handling thread; it
     * blocks until the host has serviced the fault. Returns 0 when the device should replay
     * the access, -EFAULT when the address is not mapped (the access fails: a device fault
     * error, not a crash), -EACCES when the access is not allowed by the CPU protection,
     * -ENODEV when host_device is unknown. */
    svm_status (*report_device_fault)(void *host_ctx, uint64_t host_device,
                                      const struct svm_device_fault *fault);

    /* [1.0] Simulated time in nanoseconds: the host's deterministic clock. Any thread. */
    uint64_t (*clock_now_ns)(void *host_ctx);

    /* [1.0] A configuration value given to this plugin by the user (for example
     * `--plugin-option SimDevice.memory=1G`). Copies the value, NUL-terminated and cut to
     * buffer_size - 1 bytes, into buffer, and returns its full length in bytes, or -ENOENT
     * when the key is not set. Any thread. */
    int64_t (*config_get)(void *host_ctx, const char *key, char *buffer, size_t buffer_size);

    /* [1.3] The device opened as host_device lost the contents of its memory (a reset):
     * every allocation the host made is unreadable now (copies out of it may fail with
     * -EIO) and its page table is empty. The host treats the data as lost: it frees the
     * device memory, invalidates the ranges and marks their CPU pages so that reading them
     * fails, never returning zeros in their place. Call it after the device's state is reset
     * and before it runs anything else; it returns once the host is done. Not while holding
     * a lock the host's calls into the plugin take. Returns 0, or -ENODEV when host_device
     * is unknown. */
    svm_status (*report_device_reset)(void *host_ctx, uint64_t host_device);

    /* [1.5] Declare [address, address + size) memory of the plugin's own (simulated device
     * memory, bounce buffers, staging): the host never makes an SVM range over it, and a
     * device fault on it is answered -EFAULT, as for memory that is not mapped. Without the
     * declaration a device access through a stray pointer could migrate the plugin's pages
     * away, and the plugin's next touch of them, under a lock the host's zap takes, would
     * deadlock. Declare after mapping, before any device may touch the memory. address and
     * size are 4096-aligned, size is not 0, and every page is mapped. Any thread; the host
     * takes only a lock of its own. Returns 0, or -EINVAL for a bad or unmapped interval or
     * one overlapping a declared one. */
    svm_status (*add_private_memory)(void *host_ctx, uint64_t address, uint64_t size);

    /* [1.5] Withdraw exactly an interval add_private_memory declared, before unmapping it.
     * Returns 0, or -EINVAL when no such interval was declared. */
    svm_status (*remove_private_memory)(void *host_ctx, uint64_t address, uint64_t size);

    /* [1.7] The device opened as host_device is about to lose the contents of its memory (a
     * reset): call it before wiping anything, then report_device_reset once done. On return
     * no other device maps this device's memory (peers that mapped it in place are zapped),
     * and until report_device_reset no device maps it again: a fault on data held there is
     * answered as on lost data. Not while holding a lock the host's calls into the plugin
     * take (it zaps). Returns 0, or -ENODEV when host_device is unknown. */
    svm_status (*report_device_reset_begin)(void *host_ctx, uint64_t host_device);
};

/* ---------------------------------------------------------------------------------------
 * Device plugins: a device plugin exposes zero or more devices of one kind.
 */

struct svm_device_info {
    uint32_t struct_size;
    uint32_t flags; /* enum svm_device_flags */
    char name[SVM_NAME_MAX];
    uint32_t vendor_id; /* PCI ids, or 0 for a simulated device */
    uint32_t device_id;
    uint64_t memory_bytes;   /* device-local memory */
    uint64_t page_size_mask; /* GPU page-table granularities: bit n set = 2^n bytes */
    /* [1.6] Where the device sits, which interconnects name it by: a PCI address
     * ("0000:03:00.0") or a simulated slot ("sim:0"). Empty: nowhere an interconnect knows,
     * so the device reaches others through system memory only. */
    char location[SVM_NAME_MAX];
};

/* [1.1] One physically contiguous piece of a bind. */
struct svm_bind_piece {
    /* SYSTEM: the CPU virtual address of the page (the host process's "DMA address");
     * LOCAL_VRAM: an offset in the device's own memory, as devmem_alloc returned it;
     * PCIE_P2P / FABRIC: an offset in the owning peer's memory. */
    uint64_t address;
    uint32_t protocol; /* enum svm_protocol */
    uint32_t order;    /* the piece is 4096 << order bytes, and address is aligned to it */
};

/* [1.7] One physically contiguous piece of a bind, sized, naming whose memory it is. The
 * host passes an array of them with their stride (piece_size), so that the struct can grow. */
struct svm_bind_range {
    uint64_t address;  /* as svm_bind_piece's, for the protocol */
    uint64_t size;     /* bytes: 4096 << n, and address is aligned to it */
    uint32_t protocol; /* enum svm_protocol */
    uint32_t reserved;
    uint64_t owner;    /* PCIE_P2P / FABRIC: the host_device of the device whose memory it
                        * is (an offset in that device's memory); otherwise 0 */
};

enum svm_bind_flags {
    SVM_BIND_WRITABLE = 1u << 0, /* writes allowed; otherwise a write faults */
    SVM_BIND_ATOMIC = 1u << 1,   /* device atomics allowed; otherwise an atomic faults */
};

/* [1.1] What a kernel does. Addresses named "SVM" are CPU virtual addresses the device
 * reaches through its page table (faulting as needed); "host buffer" addresses are plain
 * memory of the host the device reads or writes directly, like the result buffer of a
 * test device (the kernel's dmirror read/write). */
enum svm_kernel_kind {
    SVM_KERNEL_FILL = 1,      /* SVM destination[0, size) = (uint8_t)value */
    SVM_KERNEL_COPY = 2,      /* SVM destination[0, size) = SVM source[0, size) */
    SVM_KERNEL_INCREMENT = 3, /* each uint32_t of SVM destination[0, size) += (uint32_t)value,
                               * atomically (device atomics); size and destination 4-aligned */
    SVM_KERNEL_READ = 4,      /* host buffer destination = SVM source[0, size) */
    SVM_KERNEL_WRITE = 5,     /* SVM destination[0, size) = host buffer source */
    SVM_KERNEL_TRIAD = 6,     /* [1.2] for each uint32_t i of size / 4: SVM destination[i] =
                               * SVM source[i] + (uint32_t)value * SVM source2[i], wrapping
                               * (STREAM's triad); all three 4-aligned */
    SVM_KERNEL_GATHER = 7,    /* [1.2] for each uint32_t i of size / 4: SVM destination[i] =
                               * SVM source2[SVM source[i]] (source holds uint32_t element
                               * indices into the table at source2); all 4-aligned */
};

struct svm_kernel {
    uint32_t struct_size;
    uint32_t kind; /* enum svm_kernel_kind */
    uint64_t destination;
    uint64_t source;
    uint64_t size;
    uint64_t value;
    uint64_t source2; /* [1.2] the second source of TRIAD and GATHER */
};

struct svm_kernel_result {
    uint32_t struct_size;
    int32_t status;         /* 0, or the host's answer that stopped the kernel (-EFAULT, -EACCES) */
    uint64_t fault_address; /* where it stopped, when status != 0 */
    uint64_t faults;        /* device faults reported while it ran */
    uint64_t bytes;         /* bytes of SVM memory it completed */
    /* [1.2] What the device did, for the host's timing model and statistics. A device that
     * does not simulate time leaves them 0. */
    uint64_t accesses;            /* memory accesses issued (each one TLB lookup) */
    uint64_t tlb_hits;
    uint64_t tlb_misses;          /* each one a page-table walk */
    uint64_t local_bytes;         /* bytes read or written in its own memory */
    uint64_t system_bytes_read;   /* bytes read from system memory in place (remote) */
    uint64_t system_bytes_written; /* bytes written to system memory in place (remote) */
    uint64_t fault_batches;       /* replayable-fault batches reported */
    uint64_t busy_ns;             /* simulated time executing, without fault service and
                                   * without remote transfers (the host times those) */
    uint64_t peer_bytes_read;     /* [1.7] bytes read from peers' memory in place */
    uint64_t peer_bytes_written;  /* [1.7] bytes written to peers' memory in place */
};

struct svm_device_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* [required] How many devices this plugin exposes, at most SVM_MAX_DEVICES. Host
     * thread, no host lock. */
    svm_status (*device_count)(void *plugin_ctx, uint32_t *count);

    /* [required] Describe device index (< count). Host thread, no host lock. -ENODEV for a
     * bad index. */
    svm_status (*device_info)(void *plugin_ctx, uint32_t index, struct svm_device_info *info);

    /* [required] Open device index for use. host_device is the host's handle for this
     * device: pass it to report_device_fault. Host thread, no host lock. */
    svm_status (*open_device)(void *plugin_ctx, uint32_t index, uint64_t host_device,
                              void **device_ctx);

    /* [required] Close a device opened by open_device; no op is called on it afterwards.
     * Host thread, no host lock. */
    void (*close_device)(void *device_ctx);

    /* ---- [1.1] the device's page table and its kernels. Optional: a device without them
     * can be described but not used for SVM. ---- */

    /* [optional] Map the device virtual range [address, address + size), which is the same
     * range of CPU virtual addresses, to the pieces in order (their sizes add up to size).
     * flags: enum svm_bind_flags. Replaces nothing: the host zaps before it rebinds.
     * Called with the host's notifier lock held for reading: it must not call host services
     * and must not wait for a kernel that may be reporting a fault. -EINVAL misaligned or
     * overlapping, -ENOMEM no page-table memory. */
    svm_status (*bind)(void *device_ctx, uint64_t address, uint64_t size,
                       const struct svm_bind_piece *pieces, uint32_t count, uint32_t flags);

    /* [optional] Unmap every translation in [address, address + size) and flush the
     * device's TLBs: on return no device access uses an old translation (wait for accesses
     * in flight, which must never wait for the host). Accesses to system memory (pieces of
     * SVM_PROTOCOL_SYSTEM, a CPU address) are the exception: they may wait for the host (a
     * missing page, when its CPU mirror serves kernel-mode faults), so make them through
     * the kernel (process_vm_readv) without holding what zap waits for, and without keeping
     * a page pinned while waiting for another; zap need not wait for them (the host never
     * copies a CPU page a device can reach in place, it moves it). Ranges never bound are fine. Called
     * with the host's notifier lock held for writing (an invalidation), from any host
     * thread, including the thread that services CPU page faults; or held for reading, by
     * the commit that replaces this device's own earlier binding of the range right before
     * it calls bind (commits of one range on one device never overlap). */
    svm_status (*zap)(void *device_ctx, uint64_t address, uint64_t size);

    /* [optional] Run one kernel to completion on the calling thread. A missing translation
     * or a forbidden access is reported with report_device_fault from this thread (holding
     * no lock that bind or zap take) and the access replayed when the host answers 0; any
     * other answer stops the kernel with that status in result->status and the address in
     * result->fault_address, and run_kernel returns 0. run_kernel itself fails only for a
     * malformed kernel (-EINVAL) or a device error (-EIO). */
    svm_status (*run_kernel)(void *device_ctx, const struct svm_kernel *kernel,
                             struct svm_kernel_result *result);

    /* [1.7, optional] bind with sized pieces that name their owner: what bind does, for
     * pieces of any protocol, PCIE_P2P and FABRIC included (a peer's memory, reached in
     * place over the path between the devices). piece_size is the stride of pieces (read
     * only the members that fit). The same calling context as bind. The host uses it when
     * present, and binds no peer memory without it. -EOPNOTSUPP for an owner this plugin
     * cannot reach (the host then migrates instead). */
    svm_status (*bind_ranges)(void *device_ctx, uint64_t address, uint64_t size,
                              const struct svm_bind_range *pieces, uint32_t piece_size, uint32_t count,
                              uint32_t flags);
};

/* ---------------------------------------------------------------------------------------
 * Pagemaps: the device memory a device plugin provides (drm_pagemap).
 */

struct svm_pagemap_info {
    uint32_t struct_size;
    uint32_t min_page_size;  /* smallest device-memory chunk, a power of two >= 4096 */
    uint64_t capacity_bytes; /* device memory this pagemap can hand out */
    uint64_t used_bytes;     /* [1.1] device memory allocated now */
    /* [1.4] Device memory that is host memory of this process, which the host may migrate
     * into and out of without copying (one UFFDIO_MOVE each way): byte o of device memory is
     * the byte at host_base + o, for o < host_size (at least capacity_bytes). 0 and 0: device
     * memory is not host memory (real VRAM); data moves through copy_to_devmem / copy_to_ram.
     * With host_base set, the memory must be private anonymous read-write memory in a mapping
     * of its own (MADV_DONTDUMP working memory, never merged with the program's), mapped from
     * open_device until close_device, and the plugin must never munmap, mremap or madvise it
     * meanwhile. The host registers it with its userfaultfd as a destination of moves only
     * (no fault there ever waits for the host), moves pages in and out, and keeps two
     * promises: every page of an allocation reads as its data (moved or copied in) or as
     * zeros before the device is told to use it (a page the data never had stays absent;
     * the plugin's first touch of it is the kernel's own fault, which maps zeros), and no
     * page is left in an allocation the host frees, so the next owner of the block never
     * sees the old bytes. The plugin reads
     * and writes its live allocations as plain memory and touches nothing else of it. The
     * copy ops stay required: the host copies the pages it cannot move (pinned, shared). */
    uint64_t host_base;
    uint64_t host_size;
};

struct svm_pagemap_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* [required] Describe the memory of an open device. Host thread, no host lock. */
    svm_status (*pagemap_info)(void *device_ctx, struct svm_pagemap_info *info);

    /* ---- [1.1] device memory (drm_pagemap_devmem). Optional: without them nothing
     * migrates to this device. Any host thread, no host lock held; the host memory they
     * copy from or to is the host's own staging memory, never an SVM address. ---- */

    /* [optional] Allocate size bytes of device memory (a power of two, at least
     * min_page_size), naturally aligned, and return its offset. -ENOMEM when full (the host
     * evicts and retries, or falls back to system memory), -EINVAL for a bad size. */
    svm_status (*devmem_alloc)(void *device_ctx, uint64_t size, uint64_t *offset);

    /* [optional, required with devmem_alloc] Free what devmem_alloc returned. */
    void (*devmem_free)(void *device_ctx, uint64_t offset, uint64_t size);

    /* [optional, required with devmem_alloc] Copy size bytes of host memory into device
     * memory at offset (migrate to device). -EINVAL outside an allocation. */
    svm_status (*copy_to_devmem)(void *device_ctx, uint64_t offset, const void *source,
                                 uint64_t size);

    /* [optional, required with devmem_alloc] Copy size bytes of device memory at offset
     * into host memory (migrate to RAM). */
    svm_status (*copy_to_ram)(void *device_ctx, uint64_t offset, void *destination,
                              uint64_t size);
};

/* ---------------------------------------------------------------------------------------
 * Interconnect plugins: a fabric that lets devices reach each other's memory.
 */

struct svm_link_info {
    uint32_t struct_size;
    uint32_t protocol; /* enum svm_protocol: SVM_PROTOCOL_PCIE_P2P or SVM_PROTOCOL_FABRIC */
    char name[SVM_NAME_MAX];
    uint64_t bandwidth_bytes_per_s; /* per direction */
    uint64_t latency_ns;            /* one way, for a minimal transfer */
    uint32_t max_endpoints;         /* devices one fabric instance can join */
    uint32_t reserved;
};

/* [1.6] What one link of a topology is. */
enum svm_link_kind {
    SVM_LINK_PCIE = 1,   /* a PCIe link: between the root complex, switches and devices */
    SVM_LINK_FABRIC = 2, /* a device fabric link between two devices */
};

/* [1.6] One link of the topology: between two nodes, named by the plugin ("root",
 * "switch0") or by a device's location ("sim:0"). */
struct svm_topology_link {
    uint32_t struct_size;
    uint32_t kind; /* enum svm_link_kind */
    char name[SVM_NAME_MAX];
    char end_a[SVM_NAME_MAX]; /* the end nearer the root complex, for PCIe */
    char end_b[SVM_NAME_MAX];
    uint64_t bandwidth_bytes_per_s; /* per direction */
    uint64_t latency_ns;            /* one way, for a minimal transfer */
    uint32_t lanes;
    uint32_t pcie_generation; /* 1 to 6 for PCIe links, 0 for fabric links */
};

/* [1.6] How one device reaches another's memory: the links crossed, in order. */
struct svm_path {
    uint32_t struct_size;
    uint32_t protocol;  /* SVM_PROTOCOL_PCIE_P2P or SVM_PROTOCOL_FABRIC */
    uint32_t hop_count; /* 1 to SVM_MAX_HOPS */
    uint32_t reserved;
    uint64_t bandwidth_bytes_per_s; /* the narrowest hop's */
    uint64_t latency_ns;            /* the hops' together */
    struct svm_topology_link hops[SVM_MAX_HOPS];
};

struct svm_interconnect_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* [required] Describe the links this fabric builds. Host thread, no host lock. */
    svm_status (*link_info)(void *plugin_ctx, struct svm_link_info *info);

    /* [optional] 0 when the fabric can join devices a and b, -EOPNOTSUPP when it cannot.
     * Absent: any two devices can be joined. Host thread, no host lock. */
    svm_status (*can_connect)(void *plugin_ctx, const struct svm_device_info *a,
                              const struct svm_device_info *b);

    /* ---- [1.6] the topology. Optional: a fabric without them joins no devices for peer
     * access. Host thread, no host lock. ---- */

    /* [optional] How many links the topology has. */
    svm_status (*link_count)(void *plugin_ctx, uint32_t *count);

    /* [optional] Describe link index (< count). -ENODEV for a bad index. */
    svm_status (*topology_link)(void *plugin_ctx, uint32_t index, struct svm_topology_link *link);

    /* [optional] The path by which the device at location from reaches the memory of the
     * device at location to (device locations, see svm_device_info). 0 with *path filled:
     * from may map to's memory and migrate to it directly. -ENOLINK: no peer path (they
     * reach each other through system memory only); -ENODEV: a location the topology does
     * not have. */
    svm_status (*path)(void *plugin_ctx, const char *from, const char *to, struct svm_path *path);
};

/* ---------------------------------------------------------------------------------------
 * The entry point.
 */

struct svm_plugin_request {
    uint32_t struct_size;
    uint16_t host_abi_major;
    uint16_t host_abi_minor;
};

struct svm_plugin_descriptor {
    uint32_t struct_size;
    uint16_t abi_major; /* the ABI the plugin was built against */
    uint16_t abi_minor;
    uint32_t kind;      /* enum svm_plugin_kind */
    uint32_t reserved;

    const char *name;        /* [required] unique among loaded plugins: [A-Za-z0-9_.-]+ */
    const char *version;     /* [required] the plugin's own version, e.g. "1.2.0" */
    const char *description; /* [optional] one line */

    /* [required] Set up the plugin. self is this descriptor; host stays valid until fini.
     * Store the plugin's state in *plugin_ctx. A failure makes the host skip the plugin. */
    svm_status (*init)(const struct svm_plugin_descriptor *self,
                       const struct svm_host_services *host, void **plugin_ctx);

    /* [optional] Tear down what init made. Host thread, after every device is closed. */
    void (*fini)(void *plugin_ctx);

    const struct svm_device_ops *device_ops;             /* [required] for DEVICE */
    const struct svm_pagemap_ops *pagemap_ops;           /* [required] for DEVICE */
    const struct svm_interconnect_ops *interconnect_ops; /* [required] for INTERCONNECT */

    void *plugin_data; /* the plugin's own, for init to find; the host never reads it */
};

/* Return the plugin's descriptor, or NULL to refuse the host (for example a major it cannot
 * serve). Must not allocate resources: init does that. The descriptor must stay valid while
 * the plugin is loaded. */
typedef const struct svm_plugin_descriptor *(*svm_plugin_entry_fn)(
    const struct svm_plugin_request *request);

/* ---------------------------------------------------------------------------------------
 * Helpers, inline so that a plugin needs nothing but this header.
 */

/* Copy source into a fixed name buffer of capacity bytes, cut and NUL-terminated; returns
 * the copied length. */
static inline size_t svm_abi_copy_name(char *destination, size_t capacity, const char *source) {
    size_t length = 0;
    if (capacity == 0) return 0;
    while (source && length + 1 < capacity && source[length] != '\0') {
        destination[length] = source[length];
        length++;
    }
    destination[length] = '\0';
    return length;
}

#ifdef __cplusplus
}
#endif

#endif /* SVM_PLUGIN_ABI_H */

