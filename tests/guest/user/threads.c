/* Threads, futexes, thread-local storage and signals under `turing user`.
 * Prints "ok NAME" per check and "ALL OK"; exits 0 only if all passed. Built
 * with Debian's riscv64-linux-gnu-gcc, dynamically linked with -pthread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define THREADS 4
#define ROUNDS 20000

static __thread long tls_value;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long locked_total;
static atomic_long atomic_total;
static int ready;
static long tls_seen[THREADS];

static void *worker(void *arg) {
    long id = (long)arg;
    tls_value = id * 1000;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        locked_total++;
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&atomic_total, 1);
        tls_value++;
    }
    /* Wait on a condition variable until main says go (futex wait/wake). */
    pthread_mutex_lock(&lock);
    while (!ready) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    tls_seen[id] = tls_value;
    return (void *)(id + 100);
}

static volatile sig_atomic_t usr1_count;
static volatile pthread_t usr1_thread;
static void on_usr1(int sig, siginfo_t *info, void *uc) {
    (void)uc;
    if (sig == SIGUSR1 && info->si_signo == SIGUSR1) usr1_count++;
    usr1_thread = pthread_self();
}

static sigjmp_buf recover;
static volatile void *fault_address;
static void on_segv(int sig, siginfo_t *info, void *uc) {
    (void)sig;
    (void)uc;
    fault_address = info->si_addr;
    siglongjmp(recover, 1);
}

static void *wait_for_usr1(void *arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    int sig = 0;
    sigwait(&set, &sig);
    return (void *)(long)sig;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t threads[THREADS];
    tls_value = -1;
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    usleep(50 * 1000);
    pthread_mutex_lock(&lock);
    ready = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    int joined = 0;
    for (long i = 0; i < THREADS; i++) {
        void *result;
        if (pthread_join(threads[i], &result) == 0 && (long)result == i + 100) joined++;
    }
    CHECK("join", joined == THREADS);
    CHECK("mutex", locked_total == (long)THREADS * ROUNDS);
    CHECK("atomics", atomic_total == (long)THREADS * ROUNDS);
    int tls_ok = tls_value == -1;
    for (long i = 0; i < THREADS; i++) tls_ok &= tls_seen[i] == i * 1000 + ROUNDS;
    CHECK("thread-local storage", tls_ok);

    /* A handler run by raise(), returning through rt_sigreturn. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    long before = 12345;
    raise(SIGUSR1);
    CHECK("raise", usr1_count == 1 && before == 12345);
    /* Blocked, then delivered when unblocked. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    int while_blocked = usr1_count;
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    CHECK("blocked signal", while_blocked == 1 && usr1_count == 2);

    /* A signal to another thread: sigwait there, pthread_kill here. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    pthread_t waiter;
    pthread_create(&waiter, NULL, wait_for_usr1, NULL);
    usleep(20 * 1000);
    pthread_kill(waiter, SIGUSR2);
    void *got = NULL;
    pthread_join(waiter, &got);
    CHECK("pthread_kill + sigwait", (long)got == SIGUSR2);

    /* A fault in guest code becomes SIGSEGV with the faulting address. */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int recovered = 0;
    if (sigsetjmp(recover, 1) == 0) {
        page[100] = 1;
    } else {
        recovered = 1;
    }
    CHECK("SIGSEGV handler", recovered && fault_address == page + 100);

    /* Ignored signals are ignored. */
    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    CHECK("SIG_IGN", usr1_count == 2);

    if (failures) {
        printf("%d FAILED\n", failures);
        return 1;
    }
    printf("ALL OK\n");
    return 0;
}
