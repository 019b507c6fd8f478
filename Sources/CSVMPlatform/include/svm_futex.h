/* svm_futex.h - a 32-bit word that threads wait on until it changes (Linux futex), with the
 * C11 atomics that go with it: Swift's Atomic has no stable address to hand the kernel. */
#ifndef SVM_FUTEX_H
#define SVM_FUTEX_H

#include <stdint.h>

/* Sequentially consistent load and increment of *word. */
uint32_t svm_futex_load(const uint32_t *word);
void svm_futex_increment(uint32_t *word);

/* Sleeps while *word == expected, at most timeout_ns (< 0: no limit). Returns 0 when woken
 * or the word had changed, -ETIMEDOUT, or -EINTR; the caller looks at the word again. */
int svm_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wakes every thread waiting on word. */
void svm_futex_wake_all(uint32_t *word);

#endif
