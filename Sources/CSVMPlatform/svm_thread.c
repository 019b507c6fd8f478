#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#include "svm_thread.h"

int svm_thread_id(void) { return (int)syscall(SYS_gettid); }
