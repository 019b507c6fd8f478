#define _GNU_SOURCE
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "svm_thread.h"

/* Both ids are syscalls in glibc (getpid has not been cached since glibc 2.25) and are asked
 * on every fault and migration, so each is kept once it is known: the thread id per thread,
 * the process id per process. A fork through libc changes both for the child's one thread;
 * the handler below forgets them there. */
static _Thread_local pid_t known_thread_id;
static pid_t known_process_id;

static void forget_ids_in_child(void) {
    known_thread_id = 0;
    __atomic_store_n(&known_process_id, 0, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void register_fork_handler(void) {
    pthread_atfork(NULL, NULL, forget_ids_in_child);
}

int svm_thread_id(void) {
    if (known_thread_id == 0) known_thread_id = (pid_t)syscall(SYS_gettid);
    return known_thread_id;
}

int svm_process_id(void) {
    pid_t known = __atomic_load_n(&known_process_id, __ATOMIC_RELAXED);
    if (known == 0) {
        known = getpid();
        __atomic_store_n(&known_process_id, known, __ATOMIC_RELAXED);
    }
    return known;
}

static _Thread_local int calls_without_host_services;

void svm_thread_enter_plugin_call_without_host_services(void) { calls_without_host_services++; }
void svm_thread_leave_plugin_call_without_host_services(void) { calls_without_host_services--; }
int svm_thread_in_plugin_call_without_host_services(void) { return calls_without_host_services > 0; }
