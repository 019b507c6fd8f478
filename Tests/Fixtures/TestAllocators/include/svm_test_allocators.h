/* C++'s allocation operators for the tests (IGT's `new` loops): Swift calls C, not C++. */
#ifndef SVM_TEST_ALLOCATORS_H
#define SVM_TEST_ALLOCATORS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* new unsigned char[size] */
void *svm_test_new_bytes(size_t size);
/* delete[] of a block from svm_test_new_bytes */
void svm_test_delete_bytes(void *block);

#ifdef __cplusplus
}
#endif

#endif
