#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#include "svm_thread.h"

int svm_thread_id(void) { return (int)syscall(SYS_gettid); }

static _Thread_local int calls_without_host_services;

void svm_thread_enter_plugin_call_without_host_services(void) { calls_without_host_services++; }
void svm_thread_leave_plugin_call_without_host_services(void) { calls_without_host_services--; }
int svm_thread_in_plugin_call_without_host_services(void) { return calls_without_host_services > 0; }
