/* memcpy/memset-heavy: word-at-a-time copy and fill routines (with byte heads
 * and tails for unaligned ends) moving blocks of varying size and alignment
 * around a 1 MiB arena. The routines are in this file so every engine runs the
 * same code (no C library's tuned memcpy). */
#include "workload.h"

#define ARENA (1u << 20)
#define MOVES SCALE(24000, 200)
#define EXPECTED_FULL 0xafa2a3e64946d950ULL
#define EXPECTED_SMALL 0x1c6c7b77da58f921ULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

static uint8_t arena[ARENA] __attribute__((aligned(64)));

__attribute__((noinline)) static void fill(uint8_t *d, uint8_t value, size_t n) {
    uint64_t word = value * 0x0101010101010101ULL;
    while (n && ((uintptr_t)d & 7)) {
        *d++ = value;
        n--;
    }
    for (; n >= 8; n -= 8, d += 8) *(uint64_t *)d = word;
    while (n--) *d++ = value;
}

__attribute__((noinline)) static void copy(uint8_t *d, const uint8_t *s, size_t n) {
    while (n && ((uintptr_t)d & 7)) {
        *d++ = *s++;
        n--;
    }
    if (((uintptr_t)s & 7) == 0) {
        for (; n >= 32; n -= 32, d += 32, s += 32) {
            uint64_t a = ((const uint64_t *)s)[0], b = ((const uint64_t *)s)[1];
            uint64_t c = ((const uint64_t *)s)[2], e = ((const uint64_t *)s)[3];
            ((uint64_t *)d)[0] = a;
            ((uint64_t *)d)[1] = b;
            ((uint64_t *)d)[2] = c;
            ((uint64_t *)d)[3] = e;
        }
        for (; n >= 8; n -= 8, d += 8, s += 8) *(uint64_t *)d = *(const uint64_t *)s;
    }
    while (n--) *d++ = *s++;
}

static uint64_t workload(void) {
    uint64_t seed = 5, sum = 0;
    for (uint32_t i = 0; i < ARENA; i++) arena[i] = (uint8_t)i;
    for (int m = 0; m < MOVES; m++) {
        uint64_t r = next_random(&seed);
        size_t len = 64 + (r & 0x7fff);          /* 64 B .. 32 KiB */
        size_t from = (r >> 16) % (ARENA / 2 - len);
        size_t to = ARENA / 2 + (r >> 40) % (ARENA / 2 - len);
        if (m & 1) fill(arena + to, (uint8_t)(r >> 8), len / 2);
        copy(arena + to, arena + from, len);
        copy(arena + from, arena + to + len / 4, len / 2);
        sum = sum * 31 + arena[to + len / 3] + arena[from + len / 5];
    }
    return sum;
}

#define WORKLOAD_MAIN
#include "workload.h"
