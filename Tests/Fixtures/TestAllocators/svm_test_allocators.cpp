#include "svm_test_allocators.h"

void *svm_test_new_bytes(size_t size) { return new unsigned char[size]; }

void svm_test_delete_bytes(void *block) { delete[] static_cast<unsigned char *>(block); }
