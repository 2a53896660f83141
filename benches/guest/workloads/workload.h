/* Shared by the benchmark workloads. Each workload file defines
 *   static uint64_t workload(void)   - the work, returning a checksum
 *   EXPECTED                         - the checksum a correct run gives
 * and includes this header last. The same source builds bare-metal for riscv64
 * (benches/guest/start.S calls main and reports its result through the test
 * finisher) and natively for the host (-DNATIVE), so the two run identical C.
 * Both builds use -fno-builtin and -fno-tree-loop-distribute-patterns, so loops
 * stay loops instead of becoming calls into different C libraries.
 * With -DPRINT_CHECKSUM the native build prints the checksum (how EXPECTED was
 * found; the bare-metal runs then check the emulators against it). */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* SMALL sizes keep the correctness test in the test suite fast. */
#ifdef SMALL
#define SCALE(full, small) (small)
#else
#define SCALE(full, small) (full)
#endif

/* xorshift64*: the workloads' deterministic input generator. */
static inline uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

#ifndef NATIVE
/* The compiler may emit calls to these even when freestanding. */
void *memset(void *d, int c, size_t n) {
    volatile uint8_t *p = d;
    while (n--) *p++ = (uint8_t)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n) {
    volatile uint8_t *p = d;
    const uint8_t *q = s;
    while (n--) *p++ = *q++;
    return d;
}
#endif

#endif

#ifdef WORKLOAD_MAIN
#ifdef PRINT_CHECKSUM
#include <stdio.h>
int main(void) {
    printf("0x%016llxULL\n", (unsigned long long)workload());
    return 0;
}
#else
int main(void) { return workload() == EXPECTED ? 0 : 1; }
#endif
#endif
