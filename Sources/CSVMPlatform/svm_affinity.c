#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "svm_affinity.h"

/* cpu_set_t holds CPUs 0 to 1023 (CPU_SETSIZE), the kernel's default NR_CPUS limit on
 * x86-64 distributions; a machine numbering more would need CPU_ALLOC. */
size_t svm_affinity_mask_size(void) { return sizeof(cpu_set_t); }

int svm_affinity_save(void *mask) {
    return sched_getaffinity(0, sizeof(cpu_set_t), (cpu_set_t *)mask) == 0 ? 0 : -errno;
}

int svm_affinity_restore(const void *mask) {
    return sched_setaffinity(0, sizeof(cpu_set_t), (const cpu_set_t *)mask) == 0 ? 0 : -errno;
}

int svm_affinity_cpus(const void *mask, int *cpus, int capacity) {
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, (const cpu_set_t *)mask)) continue;
        if (count < capacity) cpus[count] = cpu;
        count++;
    }
    return count;
}

int svm_affinity_pin(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}
