/* A riscv64 Linux program exercising what real programs found missing under
 * `turing user`: posix_spawn and vfork (clone with CLONE_VM|CLONE_VFORK and a
 * child stack), clone3 threads, eventfd, the generic ioctls, interval timers and
 * SIGALRM, FIFOs, timerfd, signalfd, xattrs, capabilities, riscv_hwprobe,
 * copy_file_range, mincore, madvise, prctl names, sendmmsg/recvmmsg, and calls a
 * kernel may lack answering ENOSYS without a warning. Prints one "ok NAME" line
 * per check and "ALL OK" at the end; exits 0 only when everything passed.
 * `processes child N` is the program posix_spawn starts: it exits with N. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

static volatile sig_atomic_t alarms;

static void on_alarm(int signal) {
    (void)signal;
    alarms++;
}

static __thread int thread_value = 5;

static void *thread_main(void *arg) {
    thread_value += (int)(intptr_t)arg;
    return (void *)(intptr_t)thread_value;
}

/* Waits for `pid` and returns its exit status, or -1. */
static int exit_status(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "child") == 0)
        return atoi(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];

    /* posix_spawn: glibc clones with CLONE_VM|CLONE_VFORK on a stack of its
     * own; the child runs there until it execs this program again. */
    pid_t pid = 0;
    char *child_argv[] = {argv[0], "child", "23", NULL};
    int spawned = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, child_argv, environ);
    CHECK("posix_spawn", spawned == 0 && exit_status(pid) == 23);
    char *missing_argv[] = {"/nonexistent/program", NULL};
    spawned = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, missing_argv, environ);
    CHECK("posix_spawn of a missing program fails",
          spawned != 0 || exit_status(pid) == 127);

    /* vfork: the parent waits until the child exits. */
    pid = vfork();
    if (pid == 0)
        _exit(7);
    CHECK("vfork", pid > 0 && exit_status(pid) == 7);

    /* waitid on a forked child. */
    pid = fork();
    if (pid == 0)
        _exit(3);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    CHECK("waitid", waitid(P_PID, pid, &info, WEXITED) == 0 && info.si_pid == pid &&
                        info.si_status == 3 && info.si_code == CLD_EXITED);

    /* Threads (glibc creates them with clone3) with their own TLS. */
    pthread_t thread;
    void *result = NULL;
    CHECK("pthread_create", pthread_create(&thread, NULL, thread_main, (void *)(intptr_t)10) == 0);
    CHECK("pthread_join", pthread_join(thread, &result) == 0 && (intptr_t)result == 15 &&
                              thread_value == 5);

    /* eventfd: writes add up; a non-blocking read of zero is EAGAIN. */
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t count = 3;
    CHECK("eventfd", efd >= 0);
    CHECK("eventfd write", write(efd, &count, 8) == 8 && (count = 4, write(efd, &count, 8)) == 8);
    CHECK("eventfd read", read(efd, &count, 8) == 8 && count == 7);
    CHECK("eventfd empty", read(efd, &count, 8) == -1 && errno == EAGAIN);
    close(efd);

    /* Generic ioctls on a pipe: FIONBIO, FIONREAD, FIOCLEX, FIONCLEX. */
    int fds[2];
    CHECK("pipe", pipe(fds) == 0);
    int on = 1;
    char byte;
    CHECK("FIONBIO", ioctl(fds[0], FIONBIO, &on) == 0 && read(fds[0], &byte, 1) == -1 &&
                         errno == EAGAIN);
    int queued = 0;
    CHECK("FIONREAD", write(fds[1], "hello", 5) == 5 && ioctl(fds[0], FIONREAD, &queued) == 0 &&
                          queued == 5);
    CHECK("FIOCLEX", ioctl(fds[0], FIOCLEX) == 0 && (fcntl(fds[0], F_GETFD) & FD_CLOEXEC));
    CHECK("FIONCLEX", ioctl(fds[0], FIONCLEX) == 0 && !(fcntl(fds[0], F_GETFD) & FD_CLOEXEC));
    close(fds[0]);
    close(fds[1]);

    /* Interval timers: SIGALRM reaches the handler; getitimer sees the rest. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    struct itimerval timer = {{0, 0}, {0, 20000}};
    CHECK("setitimer", setitimer(ITIMER_REAL, &timer, NULL) == 0);
    for (int i = 0; i < 400 && alarms == 0; i++)
        usleep(5000);
    CHECK("SIGALRM", alarms == 1);
    timer.it_value.tv_sec = 100;
    struct itimerval left;
    CHECK("getitimer", setitimer(ITIMER_REAL, &timer, NULL) == 0 &&
                           getitimer(ITIMER_REAL, &left) == 0 && left.it_value.tv_sec >= 98 &&
                           left.it_value.tv_sec <= 100);
    CHECK("alarm", alarm(0) >= 98);

    /* A FIFO (mknodat). */
    snprintf(path, sizeof path, "%s/fifo", dir);
    unlink(path);
    struct stat st;
    CHECK("mkfifo", mkfifo(path, 0600) == 0 && stat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    unlink(path);

    /* timerfd: one expiry after 10 ms. */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec spec = {{0, 0}, {0, 10000000}};
    CHECK("timerfd", tfd >= 0 && timerfd_settime(tfd, 0, &spec, NULL) == 0);
    CHECK("timerfd read", read(tfd, &count, 8) == 8 && count >= 1);
    close(tfd);

    /* signalfd: a blocked SIGUSR1 sent to this thread is read from it. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    int sfd = signalfd(-1, &usr1, SFD_CLOEXEC);
    struct signalfd_siginfo received;
    CHECK("signalfd", sfd >= 0 && raise(SIGUSR1) == 0 &&
                          read(sfd, &received, sizeof received) == sizeof received &&
                          received.ssi_signo == SIGUSR1);
    close(sfd);

    /* Extended attributes: a round trip where the file system has them. */
    snprintf(path, sizeof path, "%s/xattr.txt", dir);
    int xfd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    char value[16] = {0};
    if (setxattr(path, "user.turing", "riscv", 5, 0) == 0) {
        CHECK("xattr", getxattr(path, "user.turing", value, sizeof value) == 5 &&
                           memcmp(value, "riscv", 5) == 0 &&
                           listxattr(path, value, sizeof value) > 0);
    } else {
        CHECK("xattr unsupported", errno == ENOTSUP);
    }

    /* copy_file_range between two files. */
    CHECK("copy source", write(xfd, "0123456789", 10) == 10);
    snprintf(path, sizeof path, "%s/copy.txt", dir);
    int cfd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    loff_t from = 2;
    char copied[8] = {0};
    CHECK("copy_file_range", copy_file_range(xfd, &from, cfd, NULL, 5, 0) == 5 && from == 7 &&
                                 pread(cfd, copied, 8, 0) == 5 &&
                                 memcmp(copied, "23456", 5) == 0);
    struct iovec parts[2] = {{copied, 2}, {copied + 4, 3}};
    memset(copied, 0, sizeof copied);
    CHECK("preadv", preadv(cfd, parts, 2, 0) == 5 && memcmp(copied, "23", 2) == 0 &&
                        memcmp(copied + 4, "456", 3) == 0);
    close(cfd);
    close(xfd);

    /* Capabilities of an ordinary process; scheduler queries. */
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[2];
    CHECK("capget", syscall(SYS_capget, &header, caps) == 0);
    CHECK("sched_getscheduler", sched_getscheduler(0) == SCHED_OTHER);
    CHECK("personality", personality(0xffffffff) == 0);

    /* riscv_hwprobe: F, D and C; an unknown key comes back as -1. */
    int64_t probe[4] = {4, 0, 9999, 0};
    CHECK("riscv_hwprobe", syscall(258, probe, 2, 0, NULL, 0) == 0 && (probe[1] & 3) == 3 &&
                               probe[2] == -1);

    /* mincore and madvise(MADV_DONTNEED) on anonymous memory. */
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char residency[2];
    map[0] = 42;
    CHECK("mincore", mincore(map, 2 * page, residency) == 0 && (residency[0] & 1));
    CHECK("madvise DONTNEED", madvise(map, page, MADV_DONTNEED) == 0 && map[0] == 0);
    munmap(map + page, page);
    CHECK("mincore unmapped", mincore(map, 2 * page, residency) == -1 && errno == ENOMEM);
    munmap(map, page);

    /* MAP_SHARED: stores reach the file; anonymous shared memory stays shared
     * with a forked child; a mapping made later at the same place is fresh. */
    snprintf(path, sizeof path, "%s/shared.bin", dir);
    int sfile = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK("shared file", sfile >= 0 && ftruncate(sfile, page) == 0);
    char *fmap = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, sfile, 0);
    char back[8] = {0};
    CHECK("MAP_SHARED file", fmap != MAP_FAILED && (memcpy(fmap, "shared!", 7), 1) &&
                                 msync(fmap, page, MS_SYNC) == 0 &&
                                 pread(sfile, back, 7, 0) == 7 && memcmp(back, "shared!", 7) == 0);
    CHECK("MAP_SHARED sees file writes", pwrite(sfile, "FILE", 4, 0) == 4 &&
                                             memcmp(fmap, "FILE", 4) == 0);
    char *again = mmap(fmap, page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK("MAP_FIXED over a shared map", again == fmap && fmap[0] == 0 &&
                                             pread(sfile, back, 4, 0) == 4 &&
                                             memcmp(back, "FILE", 4) == 0);
    munmap(again, page);
    int rdonly = open(path, O_RDONLY);
    CHECK("MAP_SHARED writable on a read-only file",
          mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, rdonly, 0) == MAP_FAILED &&
              errno == EACCES);
    close(rdonly);
    close(sfile);
    volatile int *counter = mmap(NULL, page, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid = fork();
    if (pid == 0) {
        *counter = 42;
        _exit(0);
    }
    CHECK("MAP_SHARED anonymous after fork", counter != MAP_FAILED && exit_status(pid) == 0 &&
                                                 *counter == 42);
    munmap((void *)counter, page);

    /* prctl: the thread's name. */
    char name[16] = {0};
    CHECK("prctl name", prctl(PR_SET_NAME, "riscv-test") == 0 && prctl(PR_GET_NAME, name) == 0 &&
                            strcmp(name, "riscv-test") == 0);

    /* sendmmsg and recvmmsg over a socket pair. */
    int pair[2];
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) == 0);
    struct iovec out[2] = {{"one", 3}, {"three", 5}};
    struct mmsghdr sent[2];
    memset(sent, 0, sizeof sent);
    sent[0].msg_hdr.msg_iov = &out[0];
    sent[0].msg_hdr.msg_iovlen = 1;
    sent[1].msg_hdr.msg_iov = &out[1];
    sent[1].msg_hdr.msg_iovlen = 1;
    CHECK("sendmmsg", sendmmsg(pair[0], sent, 2, 0) == 2 && sent[1].msg_len == 5);
    char in_a[8], in_b[8];
    struct iovec in[2] = {{in_a, 8}, {in_b, 8}};
    struct mmsghdr got[2];
    memset(got, 0, sizeof got);
    got[0].msg_hdr.msg_iov = &in[0];
    got[0].msg_hdr.msg_iovlen = 1;
    got[1].msg_hdr.msg_iov = &in[1];
    got[1].msg_hdr.msg_iovlen = 1;
    CHECK("recvmmsg", recvmmsg(pair[1], got, 2, MSG_DONTWAIT, NULL) == 2 && got[0].msg_len == 3 &&
                          got[1].msg_len == 5 && memcmp(in_b, "three", 5) == 0);
    close(pair[0]);
    close(pair[1]);

    /* close_range above every descriptor in use. */
    CHECK("close_range", syscall(SYS_close_range, 1000, ~0U, 0) == 0);

    /* What a kernel built without the feature answers, without a warning. */
    CHECK("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL) == -1 && errno == ENOSYS);
    CHECK("rseq", syscall(SYS_rseq, NULL, 0, 0, 0) == -1 && errno == ENOSYS);

    if (failures == 0)
        printf("ALL OK\n");
    return failures == 0 ? 0 : 1;
}
