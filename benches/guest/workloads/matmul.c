/* Floating point: dense double-precision matrix multiply, C = A * B, 160x160,
 * i-k-j loop order, repeated with A updated from C so no pass can be skipped. */
#include "workload.h"

#define DIM SCALE(160, 24)
#define REPEATS SCALE(12, 2)
#define EXPECTED_FULL 0x403ddb6f99454540ULL
#define EXPECTED_SMALL 0x3ffd3e78ea4a3759ULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

static double a[DIM][DIM], b[DIM][DIM], c[DIM][DIM];

static uint64_t workload(void) {
    uint64_t seed = 7;
    for (int i = 0; i < DIM; i++)
        for (int j = 0; j < DIM; j++) {
            a[i][j] = (double)(next_random(&seed) >> 40) / (double)(1u << 24) - 0.5;
            b[i][j] = (double)(next_random(&seed) >> 40) / (double)(1u << 24) - 0.5;
        }
    double trace = 0.0;
    for (int r = 0; r < REPEATS; r++) {
        for (int i = 0; i < DIM; i++)
            for (int j = 0; j < DIM; j++) c[i][j] = 0.0;
        for (int i = 0; i < DIM; i++)
            for (int k = 0; k < DIM; k++) {
                double aik = a[i][k];
                for (int j = 0; j < DIM; j++) c[i][j] += aik * b[k][j];
            }
        /* Feed the result back, scaled to stay in range. */
        for (int i = 0; i < DIM; i++)
            for (int j = 0; j < DIM; j++) a[i][j] = c[i][j] * 0.125;
        for (int i = 0; i < DIM; i++) trace += c[i][i];
    }
    uint64_t bits;
    __builtin_memcpy(&bits, &trace, sizeof bits);
    return bits;
}

#define WORKLOAD_MAIN
#include "workload.h"
