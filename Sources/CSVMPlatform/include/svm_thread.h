/* svm_thread.h - the calling thread's kernel id. */
#ifndef SVM_THREAD_H
#define SVM_THREAD_H

/* gettid(2): the id the kernel, /proc and gdb show for the calling thread; a syscall once
 * per thread, then remembered (forgotten in a child forked through libc). */
int svm_thread_id(void);

/* getpid(2), a syscall once per process, then remembered (forgotten in a child forked
 * through libc; a raw fork or clone system call is not seen). */
int svm_process_id(void);

/* A count, per thread, of calls into a plugin that the ABI forbids to call host services
 * (bind and zap, made under the host's notifier lock): entered before such a call, left
 * after it. While it is positive the host's services refuse instead of taking locks the
 * thread already holds. */
void svm_thread_enter_plugin_call_without_host_services(void);
void svm_thread_leave_plugin_call_without_host_services(void);
int svm_thread_in_plugin_call_without_host_services(void);

#endif
