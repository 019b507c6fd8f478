#include "svm_atomic.h"

#include <stdatomic.h>

/* _Atomic uint32_t has the size and alignment of uint32_t on every Linux target, so plain
 * aligned words can be used through it. */
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "atomic word size");
_Static_assert(_Alignof(_Atomic uint32_t) == _Alignof(uint32_t), "atomic word alignment");

void svm_atomic_add_u32_array(uint32_t *words, size_t count, uint32_t addend) {
    for (size_t i = 0; i < count; i++)
        atomic_fetch_add_explicit((_Atomic uint32_t *)&words[i], addend, memory_order_relaxed);
}
