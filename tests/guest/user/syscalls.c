/* A riscv64 Linux program exercising the system calls `turing user` carries
 * out: files and directories, memory maps, processes, time, identity, and an
 * unimplemented call. Prints one "ok NAME" line per check and "ALL OK" at the
 * end; exits 0 only when everything passed. Built with Debian's
 * riscv64-linux-gnu-gcc, dynamically linked. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static __thread int tls_counter = 41;

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];

    /* Files: create, write, seek, read back, stat, rename, unlink. */
    snprintf(path, sizeof path, "%s/user-test.txt", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK("open", fd >= 0);
    CHECK("write", write(fd, "hello, riscv64\n", 15) == 15);
    CHECK("lseek", lseek(fd, 7, SEEK_SET) == 7);
    char buf[64] = {0};
    CHECK("read", read(fd, buf, sizeof buf) == 8 && strcmp(buf, "riscv64\n") == 0);
    struct stat st;
    CHECK("fstat", fstat(fd, &st) == 0 && st.st_size == 15 && S_ISREG(st.st_mode));
    CHECK("pread", pread(fd, buf, 5, 0) == 5 && memcmp(buf, "hello", 5) == 0);
    close(fd);
    CHECK("stat", stat(path, &st) == 0 && st.st_size == 15 && (st.st_mode & 0777) == 0644);
    char renamed[4096];
    snprintf(renamed, sizeof renamed, "%s/user-test-renamed.txt", dir);
    CHECK("rename", rename(path, renamed) == 0 && access(renamed, R_OK) == 0);

    /* Directories. */
    snprintf(path, sizeof path, "%s/user-test-dir", dir);
    CHECK("mkdir", mkdir(path, 0755) == 0);
    DIR *d = opendir(dir);
    int seen = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, "user-test-dir") == 0 || strcmp(e->d_name, "user-test-renamed.txt") == 0)
            seen++;
    }
    if (d) closedir(d);
    CHECK("getdents64", seen == 2);
    CHECK("rmdir", rmdir(path) == 0 && unlink(renamed) == 0);
    CHECK("enoent", open(renamed, O_RDONLY) < 0 && errno == ENOENT);

    /* Memory: anonymous maps, mprotect, mremap, a file map, brk via malloc. */
    char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap", p != MAP_FAILED && p[12345] == 0);
    memset(p, 0x5a, 1 << 20);
    CHECK("mprotect", mprotect(p, 4096, PROT_READ) == 0 && p[0] == 0x5a);
    char *q = mremap(p + 4096, (1 << 20) - 4096, 4 << 20, MREMAP_MAYMOVE);
    CHECK("mremap", q != MAP_FAILED && q[0] == 0x5a && q[(1 << 20) - 4097] == 0x5a && q[(3 << 20)] == 0);
    CHECK("munmap", munmap(p, 4096) == 0 && munmap(q, 4 << 20) == 0);
    fd = open("/proc/self/exe", O_RDONLY);
    char *exe = fd >= 0 ? mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    CHECK("mmap file", exe != MAP_FAILED && memcmp(exe, "\177ELF", 4) == 0 && exe[18] == (char)243);
    if (fd >= 0) close(fd);
    char *big = malloc(10 << 20);
    CHECK("malloc", big != NULL);
    memset(big, 1, 10 << 20);
    free(big);

    /* Processes: fork, a pipe, wait, exit codes. */
    int pipefd[2];
    CHECK("pipe", pipe(pipefd) == 0);
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        dprintf(pipefd[1], "from child %d", tls_counter + 1);
        _exit(7);
    }
    close(pipefd[1]);
    memset(buf, 0, sizeof buf);
    ssize_t got = read(pipefd[0], buf, sizeof buf - 1);
    int status = 0;
    CHECK("fork+pipe", got > 0 && strcmp(buf, "from child 42") == 0);
    CHECK("wait4", waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 7);

    /* Identity, time, randomness. */
    struct utsname u;
    CHECK("uname", uname(&u) == 0 && strcmp(u.machine, "riscv64") == 0);
    CHECK("getpid", getpid() > 1 && getppid() > 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK("nanosleep", ms >= 19 && ms < 2000);
    CHECK("realtime", time(NULL) > 1700000000);
    unsigned char r1[16] = {0}, r2[16] = {0};
    CHECK("getrandom", getrandom(r1, 16, 0) == 16 && getrandom(r2, 16, 0) == 16 && memcmp(r1, r2, 16) != 0);
    char cwd[4096];
    CHECK("getcwd", getcwd(cwd, sizeof cwd) != NULL && cwd[0] == '/');

    /* Sockets: a TCP connection over loopback, and a Unix socket pair with
     * sendmsg/recvmsg. */
    int server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;
    int one = 1;
    CHECK("socket", server >= 0 && setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    CHECK("bind+listen", bind(server, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(server, 4) == 0);
    CHECK("getsockname", getsockname(server, (struct sockaddr *)&addr, &addr_len) == 0 && addr.sin_port != 0);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("connect", connect(client, (struct sockaddr *)&addr, sizeof addr) == 0);
    struct sockaddr_in peer;
    socklen_t peer_len = sizeof peer;
    int accepted = accept(server, (struct sockaddr *)&peer, &peer_len);
    CHECK("accept", accepted >= 0 && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    memset(buf, 0, sizeof buf);
    CHECK("send+recv", send(client, "over tcp", 8, 0) == 8 && recv(accepted, buf, sizeof buf, 0) == 8 && strcmp(buf, "over tcp") == 0);
    close(client);
    close(accepted);
    close(server);
    int pair[2];
    CHECK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    struct iovec parts[2] = {{"scatter ", 8}, {"gather", 6}};
    struct msghdr msg = {.msg_iov = parts, .msg_iovlen = 2};
    char got_a[4] = {0}, got_b[16] = {0};
    struct iovec into[2] = {{got_a, 4}, {got_b, 15}};
    struct msghdr in_msg = {.msg_iov = into, .msg_iovlen = 2};
    CHECK("sendmsg+recvmsg", sendmsg(pair[0], &msg, 0) == 14 && recvmsg(pair[1], &in_msg, 0) == 14 &&
                                 memcmp(got_a, "scat", 4) == 0 && strcmp(got_b, "ter gather") == 0);

    /* epoll: a readable pipe end is reported with its data. */
    int ep = epoll_create1(0);
    int efd[2];
    pipe(efd);
    struct epoll_event want = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ull};
    CHECK("epoll_ctl", ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, efd[0], &want) == 0);
    struct epoll_event ready[4];
    CHECK("epoll_wait empty", epoll_wait(ep, ready, 4, 0) == 0);
    write(efd[1], "x", 1);
    int n_ready = epoll_wait(ep, ready, 4, 1000);
    CHECK("epoll_wait", n_ready == 1 && ready[0].events == EPOLLIN && ready[0].data.u64 == 0x1122334455667788ull);

    /* An unimplemented call fails with ENOSYS instead of stopping the program. */
    errno = 0;
    CHECK("enosys", syscall(3999) == -1 && errno == ENOSYS);

    /* A bad pointer gives EFAULT, not a crash. */
    void *volatile bad = (void *)16;
    CHECK("efault", write(1, bad, 10) == -1 && errno == EFAULT);

    if (failures) {
        printf("%d FAILED\n", failures);
        return 1;
    }
    printf("ALL OK\n");
    return 0;
}
