/* svm_affinity.h - the CPUs the calling thread may run on (sched_getaffinity), and pinning
 * it to one. CPU_SET and friends are macros, which Swift cannot call. */
#ifndef SVM_AFFINITY_H
#define SVM_AFFINITY_H

#include <stddef.h>

/* The size of a saved mask, in bytes: enough for every CPU the kernel may number. */
size_t svm_affinity_mask_size(void);

/* Copies the calling thread's mask into mask (svm_affinity_mask_size() bytes). 0, or -errno. */
int svm_affinity_save(void *mask);

/* Gives the calling thread the mask a save copied. 0, or -errno. */
int svm_affinity_restore(const void *mask);

/* Writes up to capacity of the CPUs in mask, lowest first, into cpus; returns how many the
 * mask holds (may be more than capacity). */
int svm_affinity_cpus(const void *mask, int *cpus, int capacity);

/* Lets the calling thread run on cpu alone; threads it starts later inherit that. 0, or
 * -errno (EINVAL: a CPU it may not run on). */
int svm_affinity_pin(int cpu);

/* Copies thread tid's mask into mask (svm_affinity_mask_size() bytes). 0, or -errno. */
int svm_affinity_save_thread(int tid, void *mask);

/* The CPU thread tid of this process runs on or last ran on (the processor field of
 * /proc/self/task/<tid>/stat), or -errno. */
int svm_thread_last_cpu(int tid);

#endif
