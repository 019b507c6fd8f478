#include "svm_futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint32_t svm_futex_load(const uint32_t *word) {
    return atomic_load_explicit((_Atomic const uint32_t *)word, memory_order_seq_cst);
}

void svm_futex_increment(uint32_t *word) {
    atomic_fetch_add_explicit((_Atomic uint32_t *)word, 1, memory_order_seq_cst);
}

int svm_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec timeout = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    /* Private: only threads of this process wait on these words. */
    long status = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout_ns < 0 ? NULL : &timeout, NULL, 0);
    if (status == 0 || errno == EAGAIN) return 0;
    return -errno;
}

void svm_futex_wake_all(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
