/* Guest memory under `turing user` as translated code sees it: loads and stores
 * that go straight to the host mapping, whose protection stands in for the
 * guest's. Built with Debian's riscv64-linux-gnu-gcc. Every loop runs long
 * enough to be translated before the access that matters.
 *
 *   memory code      code rewritten in place, without a cache flush, by a
 *                    store the interpreter runs and by one translated code runs:
 *                    the new code runs. Prints "ALL OK".
 *   memory resume    a SIGSEGV handler that maps the missing page and returns:
 *                    the translated loop that faulted goes on with every
 *                    register intact. Prints "ALL OK".
 *   memory unmapped  a translated loop reads on into an unmapped page: the
 *                    process dies by SIGSEGV after printing "walking".
 *   memory readonly  a translated loop stores into a page made read-only: the
 *                    process dies by SIGSEGV after printing "storing".
 *   memory high      a translated loop loads from beyond the 256 GiB user
 *                    space: the process dies by SIGSEGV after printing "high".
 *   memory top       translated code loads the last word of the user space and
 *                    then the word after it (one base register, no second
 *                    check): the process dies by SIGSEGV after printing "top". */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define PAGE 4096
#define HOT 20000

/* addi a0, zero, value; ret */
static void write_function(void (*put)(volatile uint32_t *, uint32_t), volatile uint32_t *at,
                           int value) {
    put(at, 0x00000513u | ((uint32_t)value << 20));
    put(at + 1, 0x00008067u);
}

__attribute__((noinline)) static void put_word(volatile uint32_t *at, uint32_t value) {
    *at = value;
}

__attribute__((noinline)) static long call_many(int (*f)(void), int times) {
    long sum = 0;
    for (int i = 0; i < times; i++) sum += f();
    return sum;
}

static int rewritten_code(void) {
    uint32_t *code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static volatile uint32_t scratch[2];
    CHECK("mmap rwx", code != MAP_FAILED);
    int (*f)(void) = (int (*)(void))code;

    /* Written once before put_word is hot: the interpreter's store. */
    write_function(put_word, code, 1);
    __builtin___clear_cache((char *)code, (char *)code + 8);
    CHECK("first code runs hot", call_many(f, HOT) == HOT);

    /* Rewritten by the interpreter, with no cache flush. */
    write_function(put_word, code, 2);
    CHECK("interpreter store seen", call_many(f, HOT) == 2L * HOT);

    /* put_word translated, then rewriting the code with it: a direct store. */
    for (int i = 0; i < HOT; i++) put_word(&scratch[i & 1], i);
    write_function(put_word, code, 3);
    CHECK("translated store seen", call_many(f, HOT) == 3L * HOT);
    /* Once more: the page is guarded again after its code ran again. */
    write_function(put_word, code, 4);
    CHECK("guarded again", call_many(f, HOT) == 4L * HOT);
    /* Data next to code on one page: writing it does not break the code. */
    for (int i = 0; i < HOT; i++) put_word(code + 100 + (i & 7), i);
    CHECK("data beside code", call_many(f, 10) == 40 && code[100] == HOT - 8);
    /* As Linux: nothing maps below 64 KiB. */
    void *low = mmap((void *)0x1000, PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK("no mapping at 4 KiB", low == MAP_FAILED && errno == EPERM);
    return 0;
}

static volatile char *window;
static volatile int faults;

static void on_segv(int sig, siginfo_t *info, void *uc) {
    (void)sig;
    (void)uc;
    char *page = (char *)((uintptr_t)info->si_addr & ~(uintptr_t)(PAGE - 1));
    if (page < (char *)window || page >= (char *)window + 4 * PAGE) _exit(3);
    faults++;
    /* Map the page and let the faulting load run again. */
    if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) != 0) _exit(4);
    memset(page, 1, PAGE);
}

__attribute__((noinline)) static long sum_bytes(volatile char *p, long n) {
    long sum = 0, weighted = 0;
    for (long i = 0; i < n; i++) {
        sum += p[i];
        weighted += p[i] * (i & 15);
    }
    return sum * 1000003 + weighted;
}

static int resumed_faults(void) {
    window = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap window", window != MAP_FAILED);
    memset((char *)window, 1, PAGE);
    CHECK("protect the rest", mprotect((char *)window + PAGE, 3 * PAGE, PROT_NONE) == 0);
    /* Translated before the handler exists. */
    long warm = 0;
    for (int i = 0; i < 200; i++) warm += sum_bytes(window, PAGE);
    CHECK("warm", warm == 200 * (PAGE * 1000003L + (PAGE / 16) * 120));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    long expect = 4L * PAGE * 1000003L + (4L * PAGE / 16) * 120;
    CHECK("loop resumed after each fault", sum_bytes(window, 4 * PAGE) == expect);
    CHECK("three faults", faults == 3);
    return 0;
}

static void die_walking(void) {
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + PAGE, PAGE);
    memset(p, 1, PAGE);
    long warm = 0;
    for (int i = 0; i < 200; i++) warm += sum_bytes(p, PAGE);
    printf("walking %ld\n", warm);
    fflush(stdout);
    sum_bytes(p, 2 * PAGE);
    printf("survived\n");
}

static void die_storing(void) {
    static volatile uint32_t scratch[2];
    uint32_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < HOT; i++) put_word(&scratch[i & 1], i);
    put_word(p, 1);
    mprotect(p, PAGE, PROT_READ);
    printf("storing %u\n", p[0]);
    fflush(stdout);
    put_word(p, 2);
    printf("survived\n");
}

static void die_high(void) {
    char *p = malloc(PAGE);
    memset(p, 1, PAGE);
    long warm = 0;
    for (int i = 0; i < 200; i++) warm += sum_bytes(p, PAGE);
    printf("high %ld\n", warm);
    fflush(stdout);
    sum_bytes((volatile char *)(1UL << 40), 1);
    printf("survived\n");
}

__attribute__((noinline)) static long sum_pair(volatile long *p) {
    return p[0] + p[1];
}

static void die_at_the_top(void) {
    static volatile long pair[2] = {20, 22};
    long warm = 0;
    for (int i = 0; i < HOT; i++) warm += sum_pair(pair);
    volatile long *top = mmap((void *)((1UL << 38) - PAGE), PAGE, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (top == MAP_FAILED) {
        printf("mmap at the top failed\n");
        return;
    }
    top[PAGE / sizeof(long) - 1] = 1;
    printf("top %ld\n", warm / HOT + sum_pair(top + PAGE / sizeof(long) - 2));
    fflush(stdout);
    sum_pair(top + PAGE / sizeof(long) - 1);
    printf("survived\n");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "code")) {
        rewritten_code();
    } else if (!strcmp(mode, "resume")) {
        resumed_faults();
    } else if (!strcmp(mode, "unmapped")) {
        die_walking();
        return 1;
    } else if (!strcmp(mode, "readonly")) {
        die_storing();
        return 1;
    } else if (!strcmp(mode, "high")) {
        die_high();
        return 1;
    } else if (!strcmp(mode, "top")) {
        die_at_the_top();
        return 1;
    } else {
        printf("usage: memory code|resume|unmapped|readonly|high|top\n");
        return 2;
    }
    if (failures == 0) printf("ALL OK\n");
    return failures != 0;
}
