/* Branchy interpreter loop: a small stack machine, switch-dispatched, running a
 * bytecode program that sums the Collatz step counts of 1..N. */
#include "workload.h"

#define LIMIT SCALE(20000, 2000)
#define EXPECTED_FULL 0x00000000001bfe6cULL
#define EXPECTED_SMALL 0x0000000000020b64ULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

enum op {
    PUSH,  /* push the next word */
    LOAD,  /* push local[next word] */
    STORE, /* pop into local[next word] */
    ADD,
    SUB,
    MUL,
    AND,
    SHR1,  /* top >>= 1 */
    JZ,    /* pop; jump to next word if zero */
    JMP,   /* jump to next word */
    LT,    /* pop b, pop a, push a < b */
    HALT,
};

/* locals: 0 = n, 1 = x, 2 = total steps, 3 = limit */
static const int64_t program[] = {
    /* 0 */ PUSH, 1, STORE, 0,
    /* 4: outer loop: while n < limit */
    LOAD, 0, LOAD, 3, LT, JZ, -1,
    /* 11 */ LOAD, 0, STORE, 1,
    /* 15: inner loop: while x != 1 */
    LOAD, 1, PUSH, 1, SUB, JZ, 55,
    /* 22: steps += 1 */
    LOAD, 2, PUSH, 1, ADD, STORE, 2,
    /* 29: if x odd: x = 3x + 1 else x = x / 2 */
    LOAD, 1, PUSH, 1, AND, JZ, 48,
    /* 36 */ LOAD, 1, PUSH, 3, MUL, PUSH, 1, ADD, STORE, 1, JMP, 15,
    /* 48 */ LOAD, 1, SHR1, STORE, 1, JMP, 15,
    /* 55: n += 1 */
    LOAD, 0, PUSH, 1, ADD, STORE, 0,
    /* 62: back to the outer loop */
    JMP, 4,
    /* 64: where the outer loop's JZ goes (patched in workload()) */
    HALT,
};

static int64_t run(const int64_t *code, int64_t *locals) {
    int64_t stack[64];
    int sp = 0;
    long pc = 0;
    for (;;) {
        int64_t a, b;
        switch ((enum op)code[pc++]) {
        case PUSH: stack[sp++] = code[pc++]; break;
        case LOAD: stack[sp++] = locals[code[pc++]]; break;
        case STORE: locals[code[pc++]] = stack[--sp]; break;
        case ADD: b = stack[--sp]; a = stack[--sp]; stack[sp++] = a + b; break;
        case SUB: b = stack[--sp]; a = stack[--sp]; stack[sp++] = a - b; break;
        case MUL: b = stack[--sp]; a = stack[--sp]; stack[sp++] = a * b; break;
        case AND: b = stack[--sp]; a = stack[--sp]; stack[sp++] = a & b; break;
        case SHR1: stack[sp - 1] = (int64_t)((uint64_t)stack[sp - 1] >> 1); break;
        case JZ: a = stack[--sp]; if (a == 0) pc = code[pc]; else pc++; break;
        case JMP: pc = code[pc]; break;
        case LT: b = stack[--sp]; a = stack[--sp]; stack[sp++] = a < b; break;
        case HALT: return locals[2];
        default: return -1;
        }
    }
}

static uint64_t workload(void) {
    int64_t code[sizeof program / sizeof program[0]];
    long n = (long)(sizeof program / sizeof program[0]);
    for (long i = 0; i < n; i++) code[i] = program[i];
    /* The outer loop's exit jumps to HALT, the last word. */
    code[10] = n - 1;
    int64_t locals[4] = {0, 0, 0, LIMIT};
    return (uint64_t)run(code, locals);
}

#define WORKLOAD_MAIN
#include "workload.h"
