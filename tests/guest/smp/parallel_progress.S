/* Four harts make progress at once (run with four harts).
 *
 * Every hart runs the same CPU-bound job (rounds of xorshift steps) and bumps a
 * shared counter once per round with an AMO; the counter is the clock, in guest
 * work rather than host time. Each hart notes the counter when its job starts
 * and ends. If the harts ran one after another, their intervals would not
 * overlap; run at once, every job starts before any job ends. Hart 0 checks
 * that, and that all four computed the same value.
 *
 * Checks: 1 all harts finished, 2 the four jobs overlapped, 3 every job's
 * result is hart 0's, 4 the counter saw every round of every hart. */
#include "test.h"

#define HARTS 4
#define ROUNDS 1000000
#define STEPS 64

  .text
  .globl test_secondary
test_secondary:
  j job

  .globl test_main
test_main:
  TEST(1)
  li a0, 0

  /* job(a0 = hart id): no stack, so secondary harts can run it. */
job:
  la t0, counter
  slli t2, a0, 3
  li t3, 1
  amoadd.d.aqrl t4, t3, (t0)
  la t1, starts
  add t1, t1, t2
  sd t4, 0(t1)
  li s0, ROUNDS
  li s1, 0x9e3779b97f4a7c15
1:
  li s2, STEPS
2:
  slli t5, s1, 13
  xor s1, s1, t5
  srli t5, s1, 7
  xor s1, s1, t5
  slli t5, s1, 17
  xor s1, s1, t5
  addi s2, s2, -1
  bnez s2, 2b
  amoadd.d zero, t3, (t0)
  addi s0, s0, -1
  bnez s0, 1b
  amoadd.d.aqrl t4, t3, (t0)
  la t1, ends
  add t1, t1, t2
  sd t4, 0(t1)
  la t1, results
  add t1, t1, t2
  sd s1, 0(t1)
  la t1, done
  amoadd.w.aqrl zero, t3, (t1)
  bnez a0, park

  /* Hart 0: wait for the others, then look at the intervals. */
  la t1, done
  li t5, HARTS
3:
  lw t4, 0(t1)
  bne t4, t5, 3b
  fence rw, rw

  TEST(2)
  la t1, starts
  la t2, ends
  li s3, 0          /* latest start */
  li s4, -1         /* earliest end */
  li t6, HARTS
4:
  ld t4, 0(t1)
  bgeu s3, t4, 5f
  mv s3, t4
5:
  ld t4, 0(t2)
  bgeu t4, s4, 6f
  mv s4, t4
6:
  addi t1, t1, 8
  addi t2, t2, 8
  addi t6, t6, -1
  bnez t6, 4b
  bgeu s3, s4, fail

  TEST(3)
  la t1, results
  ld s5, 0(t1)
  li t6, HARTS - 1
7:
  addi t1, t1, 8
  ld t4, 0(t1)
  bne t4, s5, fail
  addi t6, t6, -1
  bnez t6, 7b

  TEST(4)
  la t1, counter
  ld t4, 0(t1)
  li t5, HARTS * (ROUNDS + 2)
  bne t4, t5, fail
  j pass

park:
  wfi
  j park

  .data
  .align 3
counter: .dword 0
done: .dword 0
starts: .zero 8 * HARTS
ends: .zero 8 * HARTS
results: .zero 8 * HARTS
