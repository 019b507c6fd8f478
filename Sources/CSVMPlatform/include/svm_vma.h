/* svm_vma.h - find_vma for the mirror: the kernel's PROCMAP_QUERY ioctl on /proc/self/maps
 * (Linux 6.11), declared here because the system headers (Linux 6.1) predate it. */
#ifndef SVM_VMA_H
#define SVM_VMA_H

#include <stdint.h>

enum {
    SVM_VMA_READABLE = 1 << 0,
    SVM_VMA_WRITABLE = 1 << 1,
    SVM_VMA_EXECUTABLE = 1 << 2,
    SVM_VMA_SHARED = 1 << 3,
};

struct svm_vma_info {
    uint64_t start;
    uint64_t end;
    uint64_t flags; /* SVM_VMA_* */
    uint64_t inode; /* 0 for anonymous and special mappings */
    uint32_t dev_major;
    uint32_t dev_minor;
    char name[64]; /* "[heap]", "[stack]", "[anon:...]", "" for anonymous; cut, NUL-terminated */
};

/* Describe the mapping that contains address. fd is an open /proc/self/maps. Returns 0,
 * -ENOENT when no mapping contains address, -ENOTTY or -EINVAL when the kernel lacks
 * PROCMAP_QUERY (the caller falls back to parsing the file), other -errno on failure. */
int svm_vma_query(int fd, uint64_t address, struct svm_vma_info *info);

/* mincore(2) for [start, start + length): sets present[i] to 1 when page i is resident.
 * Returns 0 or -errno (-ENOMEM when part of the range is not mapped). */
int svm_vma_resident(uint64_t start, uint64_t length, unsigned char *present);

#endif
