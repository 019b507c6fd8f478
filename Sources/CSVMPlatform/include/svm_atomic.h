/* svm_atomic.h - C11 atomics on plain memory, for a simulated device's atomic operations on
 * its memory (Swift's Atomic cannot be laid over memory it did not initialise). */
#ifndef SVM_ATOMIC_H
#define SVM_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

/* Adds addend to each of the count naturally aligned uint32_t at words, each one atomically
 * (relaxed: a device atomic orders nothing but itself). */
void svm_atomic_add_u32_array(uint32_t *words, size_t count, uint32_t addend);

#endif
