/* svm_thread.h - the calling thread's kernel id. */
#ifndef SVM_THREAD_H
#define SVM_THREAD_H

/* gettid(2): the id the kernel, /proc and gdb show for the calling thread. */
int svm_thread_id(void);

#endif
