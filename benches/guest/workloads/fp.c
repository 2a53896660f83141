/* Floating point: a five-body gravity simulation in double precision (divides,
 * square roots, fused multiply-adds, min/max), a spectral-norm kernel in single
 * precision, and conversions between integers, singles and doubles. Every
 * operation is IEEE-exact on both ISAs (no contraction: fused multiply-adds are
 * written out), so the checksum is the same natively and on riscv64. */
#include "workload.h"

#define STEPS SCALE(400000, 600)
#define SPECTRAL_N SCALE(320, 24)
#define CONVERSIONS SCALE(2000000, 4000)

typedef struct {
    double x, y, z, vx, vy, vz, mass;
} body;

static void advance(body *b, int n, double dt) {
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            double dx = b[i].x - b[j].x;
            double dy = b[i].y - b[j].y;
            double dz = b[i].z - b[j].z;
            double d2 = __builtin_fma(dx, dx, __builtin_fma(dy, dy, dz * dz));
            double dist = __builtin_sqrt(d2);
            double mag = dt / (d2 * dist);
            double mi = b[i].mass * mag, mj = b[j].mass * mag;
            b[i].vx = __builtin_fma(-dx, mj, b[i].vx);
            b[i].vy = __builtin_fma(-dy, mj, b[i].vy);
            b[i].vz = __builtin_fma(-dz, mj, b[i].vz);
            b[j].vx = __builtin_fma(dx, mi, b[j].vx);
            b[j].vy = __builtin_fma(dy, mi, b[j].vy);
            b[j].vz = __builtin_fma(dz, mi, b[j].vz);
        }
    }
    for (int i = 0; i < n; i++) {
        b[i].x = __builtin_fma(dt, b[i].vx, b[i].x);
        b[i].y = __builtin_fma(dt, b[i].vy, b[i].y);
        b[i].z = __builtin_fma(dt, b[i].vz, b[i].z);
    }
}

static double energy(const body *b, int n) {
    double e = 0.0;
    for (int i = 0; i < n; i++) {
        double v2 = b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz;
        e += 0.5 * b[i].mass * v2;
        for (int j = i + 1; j < n; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            e -= b[i].mass * b[j].mass / __builtin_sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

/* fmin.d/fmax.d (GCC emits calls to fmin/fmax instead, which a bare-metal
 * program does not have). */
static double min_d(double a, double b) {
#ifdef NATIVE
    return __builtin_fmin(a, b);
#else
    double r;
    __asm__("fmin.d %0, %1, %2" : "=f"(r) : "f"(a), "f"(b));
    return r;
#endif
}

static double max_d(double a, double b) {
#ifdef NATIVE
    return __builtin_fmax(a, b);
#else
    double r;
    __asm__("fmax.d %0, %1, %2" : "=f"(r) : "f"(a), "f"(b));
    return r;
#endif
}

static double simulate(void) {
    const double pi = 3.141592653589793, days = 365.24;
    const double solar = 4 * pi * pi;
    body b[5] = {
        {0, 0, 0, 0, 0, 0, solar},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * days, 7.69901118419740425e-03 * days,
         -6.90460016972063023e-05 * days, 9.54791938424326609e-04 * solar},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * days, 4.99852801234917238e-03 * days,
         2.30417297573763929e-05 * days, 2.85885980666130812e-04 * solar},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * days, 2.37847173959480950e-03 * days,
         -2.96589568540237556e-05 * days, 4.36624404335156298e-05 * solar},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * days, 1.62824170038242295e-03 * days,
         -9.51592254519715870e-05 * days, 5.15138902046611451e-05 * solar},
    };
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < 5; i++) {
        px += b[i].vx * b[i].mass;
        py += b[i].vy * b[i].mass;
        pz += b[i].vz * b[i].mass;
    }
    b[0].vx = -px / solar;
    b[0].vy = -py / solar;
    b[0].vz = -pz / solar;
    double lowest = energy(b, 5), highest = lowest;
    for (int step = 0; step < STEPS; step++) {
        advance(b, 5, 0.01);
        if (step % 1000 == 0) {
            double e = energy(b, 5);
            lowest = min_d(lowest, e);
            highest = max_d(highest, e);
        }
    }
    return energy(b, 5) + (highest - lowest);
}

static float matrix_a(int i, int j) {
    return 1.0f / (float)((i + j) * (i + j + 1) / 2 + i + 1);
}

static void times_a(int n, const float *v, float *out, int transpose) {
    for (int i = 0; i < n; i++) {
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
            float a = transpose ? matrix_a(j, i) : matrix_a(i, j);
            sum += a * v[j];
        }
        out[i] = sum;
    }
}

static float spectral_norm(void) {
    float u[SPECTRAL_N], v[SPECTRAL_N], t[SPECTRAL_N];
    for (int i = 0; i < SPECTRAL_N; i++) u[i] = 1.0f;
    for (int round = 0; round < 10; round++) {
        times_a(SPECTRAL_N, u, t, 0);
        times_a(SPECTRAL_N, t, v, 1);
        times_a(SPECTRAL_N, v, t, 0);
        times_a(SPECTRAL_N, t, u, 1);
    }
    float vbv = 0.0f, vv = 0.0f;
    for (int i = 0; i < SPECTRAL_N; i++) {
        vbv += u[i] * v[i];
        vv += v[i] * v[i];
    }
    return __builtin_sqrtf(vbv / vv);
}

/* Integer <-> float conversions as C casts write them (round toward zero to
 * integers, nearest even from them). */
static uint64_t conversions(void) {
    uint64_t state = 0x9e3779b97f4a7c15ULL, sum = 0;
    for (int i = 0; i < CONVERSIONS; i++) {
        uint64_t r = next_random(&state);
        double d = (double)(int64_t)(r >> 11) * 1e-6;
        float f = (float)d;
        int32_t w = (int32_t)(f * 0.001f);
        int64_t l = (int64_t)(d * 0.5);
        uint32_t wu = (uint32_t)((double)(r >> 40) / 3.0);
        double back = (double)w + (double)l + (double)f + (double)wu;
        sum = sum * 31 + (uint64_t)(int64_t)back + (uint64_t)w + (uint64_t)l + wu;
    }
    return sum;
}

static uint64_t bits_of(double d) {
    union {
        double d;
        uint64_t u;
    } v = {d};
    return v.u;
}

static uint64_t workload(void) {
    uint64_t sum = bits_of(simulate());
    sum = sum * 0x100000001b3ULL ^ bits_of((double)spectral_norm());
    sum = sum * 0x100000001b3ULL ^ conversions();
    return sum;
}

#define EXPECTED_FULL 0xb8905bbf8ea1e6ccULL
#define EXPECTED_SMALL 0x783e0987473bd154ULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

#define WORKLOAD_MAIN
#include "workload.h"
