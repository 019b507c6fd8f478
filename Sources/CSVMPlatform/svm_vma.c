#include "svm_vma.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

/* The uAPI of Linux 6.11 (include/uapi/linux/fs.h), as the kernel defines its layout. */
struct svm_procmap_query {
    uint64_t size;
    uint64_t query_flags;
    uint64_t query_addr;
    uint64_t vma_start;
    uint64_t vma_end;
    uint64_t vma_flags;
    uint64_t vma_page_size;
    uint64_t vma_offset;
    uint64_t inode;
    uint32_t dev_major;
    uint32_t dev_minor;
    uint32_t vma_name_size;
    uint32_t build_id_size;
    uint64_t vma_name_addr;
    uint64_t build_id_addr;
};
_Static_assert(sizeof(struct svm_procmap_query) == 104, "procmap_query layout");

#define SVM_PROCMAP_QUERY _IOWR('f', 17, struct svm_procmap_query)

int svm_vma_query(int fd, uint64_t address, struct svm_vma_info *info) {
    /* File names can be long; a name that does not fit only matters for anonymous areas,
     * whose names are short, so ask for it in a buffer big enough for any path. */
    char name[4096];
    struct svm_procmap_query query;
    memset(&query, 0, sizeof query);
    query.size = sizeof query;
    query.query_addr = address;
    query.vma_name_addr = (uint64_t)(uintptr_t)name;
    query.vma_name_size = sizeof name;
    int result;
    do {
        result = ioctl(fd, SVM_PROCMAP_QUERY, &query);
    } while (result < 0 && errno == EINTR);
    if (result < 0) return -errno;
    memset(info, 0, sizeof *info);
    info->start = query.vma_start;
    info->end = query.vma_end;
    info->flags = query.vma_flags & 0xf; /* the kernel's READABLE..SHARED bits are ours */
    info->inode = query.inode;
    info->dev_major = query.dev_major;
    info->dev_minor = query.dev_minor;
    if (query.vma_name_size > 0) {
        size_t length = strnlen(name, sizeof name);
        if (length >= sizeof info->name) length = sizeof info->name - 1;
        memcpy(info->name, name, length);
        info->name[length] = '\0';
    }
    return 0;
}

int svm_vma_resident(uint64_t start, uint64_t length, unsigned char *present) {
    if (mincore((void *)(uintptr_t)start, length, present) < 0) return -errno;
    return 0;
}

