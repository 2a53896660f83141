/* RV64A: lr.w/sc.w and lr.d/sc.d (lr.w sign-extends, sc writes 0 on success and
 * stores; an sc without a valid reservation -- none ever taken, or already used by
 * an earlier sc -- writes nonzero and does not store), every amo*.w and amo*.d
 * (swap, add, xor, and, or, min, max, minu, maxu): rd gets the old memory value
 * (sign-extended for .w), memory gets the result, the other half of the doubleword
 * is untouched, .w ops use only rs2[31:0] and compare as 32-bit values, rd = x0
 * and rd = rs2 cases, and the aq/rl variants. Expected values computed from the
 * spec's definitions. */
#include "test.h"

/* 32-bit AMO on the word at amo_buf+off with the doubleword initialised to init:
 * rd must get old (sign-extended) and the doubleword must become after. */
#define AMOW(n, insn, init, off, rs2, old, after) \
  TEST(n); la s0, amo_buf; li t0, init; sd t0, 0(s0); addi s1, s0, off; li a1, rs2; \
  insn a0, a1, (s1); CHECK(a0, old); TEST(n+1); ld t0, 0(s0); CHECK(t0, after)
/* 64-bit AMO: memory initial value init, operand rs2, memory after = after. */
#define AMOD(n, insn, init, rs2, after) \
  TEST(n); la s0, amo_buf; li t0, init; sd t0, 0(s0); li a1, rs2; \
  insn a0, a1, (s0); CHECK(a0, init); TEST(n+1); ld t0, 0(s0); CHECK(t0, after)

  .text
  .globl test_main
test_main:
  la s0, buf
  li t0, 0x1111111111111111
  sd t0, 0(s0)
  sd t0, 8(s0)
  /* sc.w before any lr: no reservation, fails and does not store. */
  TEST(1)
  li t1, 0x22
  sc.w a0, t1, (s0)
  beqz a0, fail
  TEST(2)
  ld t0, 0(s0)
  CHECK(t0, 0x1111111111111111)
  /* sc.d before any lr fails too. */
  TEST(3)
  sc.d a0, t1, (s0)
  beqz a0, fail
  TEST(4)
  ld t0, 0(s0)
  CHECK(t0, 0x1111111111111111)

  /* lr.w sign-extends the loaded word. */
  TEST(10)
  li t0, 0x1234567887654321
  sd t0, 0(s0)
  lr.w a0, (s0)
  CHECK(a0, 0xffffffff87654321)
  /* Matching sc.w succeeds (rd = 0) and stores only the low 32 bits of rs2. */
  TEST(11)
  li t1, 0xaaaaaaaa00005555
  sc.w a1, t1, (s0)
  CHECK(a1, 0)
  TEST(12)
  ld t0, 0(s0)
  CHECK(t0, 0x1234567800005555)
  /* The reservation was consumed: a second sc.w fails and does not store. */
  TEST(13)
  li t1, 0x777
  sc.w a1, t1, (s0)
  beqz a1, fail
  TEST(14)
  ld t0, 0(s0)
  CHECK(t0, 0x1234567800005555)
  /* lr.w / sc.w on the upper word, positive value. */
  TEST(15)
  addi s1, s0, 4
  lr.w a0, (s1)
  CHECK(a0, 0x12345678)
  TEST(16)
  li t1, 0x9abcdef0
  sc.w a1, t1, (s1)
  CHECK(a1, 0)
  TEST(17)
  ld t0, 0(s0)
  CHECK(t0, 0x9abcdef000005555)

  /* lr.d / sc.d */
  TEST(20)
  li t0, 0xfedcba9876543210
  sd t0, 8(s0)
  addi s1, s0, 8
  lr.d a0, (s1)
  CHECK(a0, 0xfedcba9876543210)
  TEST(21)
  li t1, 0x0123456789abcdef
  sc.d a1, t1, (s1)
  CHECK(a1, 0)
  TEST(22)
  ld t0, 8(s0)
  CHECK(t0, 0x0123456789abcdef)
  TEST(23)
  li t1, 0x42
  sc.d a1, t1, (s1)
  beqz a1, fail
  TEST(24)
  ld t0, 8(s0)
  CHECK(t0, 0x0123456789abcdef)
  /* The first doubleword was not touched by the .d operations. */
  TEST(25)
  ld t0, 0(s0)
  CHECK(t0, 0x9abcdef000005555)

  /* A typical lr/sc increment loop. */
  TEST(30)
  li t0, 40
  sd t0, 0(s0)
  li t2, 0
1: lr.d a0, (s0)
  addi a0, a0, 2
  sc.d a1, a0, (s0)
  addi t2, t2, 1
  li t0, 100
  bgeu t2, t0, fail       /* should succeed long before 100 tries */
  bnez a1, 1b
  ld t0, 0(s0)
  CHECK(t0, 42)

  /* Acquire / release variants behave the same. */
  TEST(31)
  lr.w.aq a0, (s0)
  CHECK(a0, 42)
  TEST(32)
  li t1, 43
  sc.w.rl a1, t1, (s0)
  CHECK(a1, 0)
  TEST(33)
  lr.d.aqrl a0, (s0)
  CHECK(a0, 43)
  TEST(34)
  li t1, 44
  sc.d.aqrl a1, t1, (s0)
  CHECK(a1, 0)
  TEST(35)
  li t1, 6
  amoadd.d.aq a0, t1, (s0)
  CHECK(a0, 44)
  TEST(36)
  amoadd.w.rl a0, t1, (s0)
  CHECK(a0, 50)
  TEST(37)
  li t1, 7
  amoswap.d.aqrl a0, t1, (s0)
  CHECK(a0, 56)
  TEST(38)
  ld t0, 0(s0)
  CHECK(t0, 7)

  /* rd = x0: memory still updated. */
  TEST(40)
  li t1, 0x10
  amoor.d x0, t1, (s0)
  CHECK(x0, 0)
  TEST(41)
  ld t0, 0(s0)
  CHECK(t0, 0x17)
  /* rd = rs2: the operation uses the old rs2, rd gets the old memory value. */
  TEST(42)
  li t1, 0x100
  amoadd.d t1, t1, (s0)
  CHECK(t1, 0x17)
  TEST(43)
  ld t0, 0(s0)
  CHECK(t0, 0x117)
  TEST(44)
  li t1, 0xffffffff00000003
  amoswap.w t1, t1, (s0)
  CHECK(t1, 0x117)
  TEST(45)
  ld t0, 0(s0)
  CHECK(t0, 0x3)

  AMOW(100, amoswap.w, 0x5a5a5a5a12345678, 0, 0xffffffff87654321, 0x12345678, 0x5a5a5a5a87654321)
  AMOW(102, amoswap.w, 0x800000005a5a5a5a, 4, 0x0, 0xffffffff80000000, 0x5a5a5a5a)
  AMOW(104, amoadd.w, 0x5a5a5a5a7fffffff, 0, 0x1, 0x7fffffff, 0x5a5a5a5a80000000)
  AMOW(106, amoadd.w, 0xffffffff5a5a5a5a, 4, 0x1234567800000002, 0xffffffffffffffff, 0x15a5a5a5a)
  AMOW(108, amoadd.w, 0x5a5a5a5a00000005, 0, 0xfffffffffffffffd, 0x5, 0x5a5a5a5a00000002)
  AMOW(110, amoxor.w, 0x5a5a5a5af0f0f0f0, 0, 0xffffffff0ff00ff0, 0xfffffffff0f0f0f0, 0x5a5a5a5aff00ff00)
  AMOW(112, amoxor.w, 0x15a5a5a5a, 4, 0x80000001, 0x1, 0x800000005a5a5a5a)
  AMOW(114, amoand.w, 0x5a5a5a5af0f0f0f0, 0, 0xff00ff0, 0xfffffffff0f0f0f0, 0x5a5a5a5a00f000f0)
  AMOW(116, amoand.w, 0x8000ffff5a5a5a5a, 4, 0xffffffffffff0000, 0xffffffff8000ffff, 0x800000005a5a5a5a)
  AMOW(118, amoor.w, 0x5a5a5a5a80000000, 0, 0x1, 0xffffffff80000000, 0x5a5a5a5a80000001)
  AMOW(120, amoor.w, 0xff005a5a5a5a, 4, 0xffffffff00ff0000, 0xff00, 0xffff005a5a5a5a)
  AMOW(122, amomin.w, 0x5a5a5a5a80000000, 0, 0x7fffffff, 0xffffffff80000000, 0x5a5a5a5a80000000)
  AMOW(124, amomin.w, 0x7fffffff5a5a5a5a, 4, 0x80000000, 0x7fffffff, 0x800000005a5a5a5a)
  AMOW(126, amomin.w, 0x5a5a5a5a00000005, 0, 0x3, 0x5, 0x5a5a5a5a00000003)
  AMOW(128, amomin.w, 0xffffffff5a5a5a5a, 4, 0x0, 0xffffffffffffffff, 0xffffffff5a5a5a5a)
  AMOW(130, amomin.w, 0x5a5a5a5a00000001, 0, 0x100000002, 0x1, 0x5a5a5a5a00000001)
  AMOW(132, amomax.w, 0x5a5a5a5a80000000, 0, 0x7fffffff, 0xffffffff80000000, 0x5a5a5a5a7fffffff)
  AMOW(134, amomax.w, 0x7fffffff5a5a5a5a, 4, 0x80000000, 0x7fffffff, 0x7fffffff5a5a5a5a)
  AMOW(136, amomax.w, 0x5a5a5a5a00000005, 0, 0x3, 0x5, 0x5a5a5a5a00000005)
  AMOW(138, amomax.w, 0xffffffff5a5a5a5a, 4, 0x0, 0xffffffffffffffff, 0x5a5a5a5a)
  AMOW(140, amomax.w, 0x5a5a5a5afffffffe, 0, 0xffffffffffffffff, 0xfffffffffffffffe, 0x5a5a5a5affffffff)
  AMOW(142, amominu.w, 0x5a5a5a5a80000000, 0, 0x7fffffff, 0xffffffff80000000, 0x5a5a5a5a7fffffff)
  AMOW(144, amominu.w, 0x7fffffff5a5a5a5a, 4, 0x80000000, 0x7fffffff, 0x7fffffff5a5a5a5a)
  AMOW(146, amominu.w, 0x5a5a5a5affffffff, 0, 0x0, 0xffffffffffffffff, 0x5a5a5a5a00000000)
  AMOW(148, amominu.w, 0x35a5a5a5a, 4, 0xffffffff00000004, 0x3, 0x35a5a5a5a)
  AMOW(150, amomaxu.w, 0x5a5a5a5a80000000, 0, 0x7fffffff, 0xffffffff80000000, 0x5a5a5a5a80000000)
  AMOW(152, amomaxu.w, 0x7fffffff5a5a5a5a, 4, 0x80000000, 0x7fffffff, 0x800000005a5a5a5a)
  AMOW(154, amomaxu.w, 0x5a5a5a5affffffff, 0, 0x0, 0xffffffffffffffff, 0x5a5a5a5affffffff)
  AMOW(156, amomaxu.w, 0x35a5a5a5a, 4, 0xfffffffe, 0x3, 0xfffffffe5a5a5a5a)
  AMOD(200, amoswap.d, 0x123456789abcdef0, 0xfedcba9876543210, 0xfedcba9876543210)
  AMOD(202, amoadd.d, 0x7fffffffffffffff, 0x1, 0x8000000000000000)
  AMOD(204, amoadd.d, 0xffffffffffffffff, 0x2, 0x1)
  AMOD(206, amoadd.d, 0xffffffff, 0x1, 0x100000000)
  AMOD(208, amoxor.d, 0xff00ff00ff00ff00, 0xff00ff00ff00ff0, 0xf0f0f0f0f0f0f0f0)
  AMOD(210, amoand.d, 0xff00ff00ff00ff00, 0xff00ff00ff00ff0, 0xf000f000f000f00)
  AMOD(212, amoor.d, 0xff00ff00ff00ff00, 0xff00ff00ff00ff0, 0xfff0fff0fff0fff0)
  AMOD(214, amomin.d, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000)
  AMOD(216, amomin.d, 0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000000)
  AMOD(218, amomin.d, 0xffffffffffffffff, 0x0, 0xffffffffffffffff)
  AMOD(220, amomin.d, 0x80000000, 0x7fffffff, 0x7fffffff)
  AMOD(222, amomax.d, 0x8000000000000000, 0x7fffffffffffffff, 0x7fffffffffffffff)
  AMOD(224, amomax.d, 0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff)
  AMOD(226, amomax.d, 0xffffffffffffffff, 0x0, 0x0)
  AMOD(228, amomax.d, 0x80000000, 0x7fffffff, 0x80000000)
  AMOD(230, amominu.d, 0x8000000000000000, 0x7fffffffffffffff, 0x7fffffffffffffff)
  AMOD(232, amominu.d, 0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff)
  AMOD(234, amominu.d, 0xffffffffffffffff, 0x0, 0x0)
  AMOD(236, amominu.d, 0x5, 0x6, 0x5)
  AMOD(238, amomaxu.d, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000)
  AMOD(240, amomaxu.d, 0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000000)
  AMOD(242, amomaxu.d, 0xffffffffffffffff, 0x0, 0xffffffffffffffff)
  AMOD(244, amomaxu.d, 0x5, 0x6, 0x6)
  ret

  .data
  .align 4
buf:
  .dword 0, 0
amo_buf:
  .dword 0, 0
