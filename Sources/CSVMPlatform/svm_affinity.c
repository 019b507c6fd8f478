#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int svm_affinity_save_thread(int tid, void *mask) {
    return sched_getaffinity(tid, sizeof(cpu_set_t), (cpu_set_t *)mask) == 0 ? 0 : -errno;
}

int svm_thread_last_cpu(int tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int descriptor = open(path, O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) return -errno;
    /* A stat line is under 1 KiB: 52 numbers and a command name of at most 16 bytes. */
    char line[1024];
    ssize_t length = read(descriptor, line, sizeof line - 1);
    int saved = errno;
    close(descriptor);
    if (length <= 0) return length < 0 ? -saved : -EIO;
    line[length] = 0;
    /* The command name, in parentheses, may hold spaces and parentheses: fields are counted
     * from the last ')'. It ends field 2; the processor is field 39. */
    char *field = strrchr(line, ')');
    if (!field) return -EIO;
    for (int number = 2; number < 39; number++) {
        field = strchr(field + 1, ' ');
        if (!field) return -EIO;
    }
    char *end;
    long cpu = strtol(field + 1, &end, 10);
    return end == field + 1 || cpu < 0 ? -EIO : (int)cpu;
}
