/* Sort: quicksort (median of three, insertion sort for short runs) of 512 Ki
 * pseudo-random 64-bit keys, several rounds with fresh keys. */
#include "workload.h"

#define N SCALE(512 * 1024, 8 * 1024)
#define ROUNDS SCALE(3, 2)
#define EXPECTED_FULL 0x5c3c821714046280ULL
#define EXPECTED_SMALL 0x5bd9058cffd40428ULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

static uint64_t keys[N];

static void insertion_sort(uint64_t *a, long n) {
    for (long i = 1; i < n; i++) {
        uint64_t v = a[i];
        long j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void swap(uint64_t *a, uint64_t *b) {
    uint64_t t = *a;
    *a = *b;
    *b = t;
}

static void quicksort(uint64_t *a, long n) {
    while (n > 16) {
        long mid = n / 2;
        if (a[mid] < a[0]) swap(&a[mid], &a[0]);
        if (a[n - 1] < a[0]) swap(&a[n - 1], &a[0]);
        if (a[n - 1] < a[mid]) swap(&a[n - 1], &a[mid]);
        uint64_t pivot = a[mid];
        long i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i >= j) break;
            swap(&a[i], &a[j]);
            i++;
            j--;
        }
        /* Recurse into the smaller side, loop on the larger: bounded stack. */
        if (j + 1 < n - j - 1) {
            quicksort(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            quicksort(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    insertion_sort(a, n);
}

static uint64_t workload(void) {
    uint64_t seed = 42, sum = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (long i = 0; i < N; i++) keys[i] = next_random(&seed);
        quicksort(keys, N);
        for (long i = 1; i < N; i++)
            if (keys[i - 1] > keys[i]) return 0; /* not sorted: fails the check */
        for (long i = 0; i < N; i += N / 64) sum = sum * 31 + keys[i];
    }
    return sum;
}

#define WORKLOAD_MAIN
#include "workload.h"
