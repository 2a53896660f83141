/* Misaligned regular loads and stores (lh/lhu/lw/lwu/ld, sh/sw/sd at every
 * misaligned offset within 16 bytes, flw/fld/fsw/fsd, c.lw/c.ld/c.sw/c.sd, and
 * accesses crossing a 4 KiB page boundary).
 *
 * Behaviour checked (QEMU 7.2 virt, spec-allowed): misaligned loads and stores
 * to RAM do NOT trap; they complete with the same result as the equivalent
 * sequence of byte accesses (little-endian), including across a page boundary.
 * Any trap during those checks fails the program with the check number.
 * A misaligned access that runs off the end of RAM (0x8ffffffc + 8 with 256 MiB)
 * raises an access fault (load 5 / store 7) with mtval = 0x90000000, the address
 * of the first byte of the part that faulted (not the access's own address).
 * (Misaligned LR/AMO do trap; see traps.S.) */
#include "test.h"

#define V 0xf8f7f6f5f4f3f2f1
/* insn at mbuf + off must load val. */
#define LOAD(n, insn, off, val) TEST(n); la s0, mbuf; insn a0, off(s0); CHECK(a0, val)
/* After insn stores V at mbuf + off over the pattern, mbuf's two doublewords must be lo, hi. */
#define STORE(n, insn, off, lo, hi) \
  TEST(n); la s0, mbuf; la s1, pattern; ld t0, 0(s1); sd t0, 0(s0); ld t0, 8(s1); sd t0, 8(s0); \
  li a1, V; insn a1, off(s0); ld a0, 0(s0); CHECK(a0, lo); TEST(n+1); ld a0, 8(s0); CHECK(a0, hi)

  .text
  .globl test_main
test_main:
  la t0, trap_handler
  csrw mtvec, t0
  li s5, 0
  la s0, mbuf
  la s1, pattern
  ld t0, 0(s1)
  sd t0, 0(s0)
  ld t0, 8(s1)
  sd t0, 8(s0)

  /* ---- integer loads: every misaligned offset ---- */
  LOAD(1, lh, 1, 0x3322)
  LOAD(2, lh, 3, 0x5544)
  LOAD(3, lh, 5, 0x7766)
  LOAD(4, lh, 7, 0xffffffffffff9988)
  LOAD(5, lh, 9, 0xffffffffffffbbaa)
  LOAD(6, lh, 11, 0xffffffffffffddcc)
  LOAD(7, lh, 13, 0xffffffffffffffee)
  LOAD(8, lhu, 1, 0x3322)
  LOAD(9, lhu, 3, 0x5544)
  LOAD(10, lhu, 5, 0x7766)
  LOAD(11, lhu, 7, 0x9988)
  LOAD(12, lhu, 9, 0xbbaa)
  LOAD(13, lhu, 11, 0xddcc)
  LOAD(14, lhu, 13, 0xffee)
  LOAD(15, lw, 1, 0x55443322)
  LOAD(16, lw, 2, 0x66554433)
  LOAD(17, lw, 3, 0x77665544)
  LOAD(18, lw, 5, 0xffffffff99887766)
  LOAD(19, lw, 6, 0xffffffffaa998877)
  LOAD(20, lw, 7, 0xffffffffbbaa9988)
  LOAD(21, lw, 9, 0xffffffffddccbbaa)
  LOAD(22, lw, 10, 0xffffffffeeddccbb)
  LOAD(23, lw, 11, 0xffffffffffeeddcc)
  LOAD(24, lwu, 1, 0x55443322)
  LOAD(25, lwu, 2, 0x66554433)
  LOAD(26, lwu, 3, 0x77665544)
  LOAD(27, lwu, 5, 0x99887766)
  LOAD(28, lwu, 6, 0xaa998877)
  LOAD(29, lwu, 7, 0xbbaa9988)
  LOAD(30, lwu, 9, 0xddccbbaa)
  LOAD(31, lwu, 10, 0xeeddccbb)
  LOAD(32, lwu, 11, 0xffeeddcc)
  LOAD(33, ld, 1, 0x9988776655443322)
  LOAD(34, ld, 2, 0xaa99887766554433)
  LOAD(35, ld, 3, 0xbbaa998877665544)
  LOAD(36, ld, 4, 0xccbbaa9988776655)
  LOAD(37, ld, 5, 0xddccbbaa99887766)
  LOAD(38, ld, 6, 0xeeddccbbaa998877)
  LOAD(39, ld, 7, 0xffeeddccbbaa9988)

  /* ---- integer stores ---- */
  STORE(100, sh, 1, 0x8877665544f2f111, 0xffeeddccbbaa99)
  STORE(102, sh, 3, 0x887766f2f1332211, 0xffeeddccbbaa99)
  STORE(104, sh, 7, 0xf177665544332211, 0xffeeddccbbaaf2)
  STORE(106, sh, 13, 0x8877665544332211, 0xf2f1ddccbbaa99)
  STORE(108, sw, 1, 0x887766f4f3f2f111, 0xffeeddccbbaa99)
  STORE(110, sw, 2, 0x8877f4f3f2f12211, 0xffeeddccbbaa99)
  STORE(112, sw, 3, 0x88f4f3f2f1332211, 0xffeeddccbbaa99)
  STORE(114, sw, 6, 0xf2f1665544332211, 0xffeeddccbbf4f3)
  STORE(116, sw, 7, 0xf177665544332211, 0xffeeddccf4f3f2)
  STORE(118, sw, 11, 0x8877665544332211, 0xf4f3f2f1bbaa99)
  STORE(120, sd, 1, 0xf7f6f5f4f3f2f111, 0xffeeddccbbaaf8)
  STORE(122, sd, 2, 0xf6f5f4f3f2f12211, 0xffeeddccbbf8f7)
  STORE(124, sd, 3, 0xf5f4f3f2f1332211, 0xffeeddccf8f7f6)
  STORE(126, sd, 4, 0xf4f3f2f144332211, 0xffeeddf8f7f6f5)
  STORE(128, sd, 5, 0xf3f2f15544332211, 0xffeef8f7f6f5f4)
  STORE(130, sd, 6, 0xf2f1665544332211, 0xfff8f7f6f5f4f3)
  STORE(132, sd, 7, 0xf177665544332211, 0xf8f7f6f5f4f3f2)

  /* ---- floating point ---- */
  la s0, mbuf
  la s1, pattern
  ld t0, 0(s1)
  sd t0, 0(s0)
  ld t0, 8(s1)
  sd t0, 8(s0)
  TEST(200)
  flw fa0, 1(s0)
  fmv.x.w a0, fa0
  CHECK(a0, 0x55443322)
  TEST(201)
  flw fa0, 5(s0)
  fmv.x.w a0, fa0
  CHECK(a0, 0xffffffff99887766)
  TEST(202)
  fld fa1, 3(s0)
  fmv.x.d a0, fa1
  CHECK(a0, 0xbbaa998877665544)
  TEST(203)
  li t0, 0x0102030405060708
  fmv.d.x fa2, t0
  fsd fa2, 5(s0)
  ld a0, 0(s0)
  CHECK(a0, 0x0607085544332211)
  TEST(204)
  ld a0, 8(s0)
  CHECK(a0, 0x00ffee0102030405)
  TEST(205)
  li t0, 0xa1b2c3d4
  fmv.w.x fa3, t0
  fsw fa3, 2(s0)
  ld a0, 0(s0)
  CHECK(a0, 0x0607a1b2c3d42211)

  /* ---- compressed loads and stores with a misaligned base ---- */
  la s0, mbuf
  la s1, pattern
  ld t0, 0(s1)
  sd t0, 0(s0)
  ld t0, 8(s1)
  sd t0, 8(s0)
  addi a2, s0, 1
  TEST(210)
  c.lw a0, 0(a2)
  CHECK(a0, 0x55443322)
  TEST(211)
  c.lw a0, 4(a2)
  CHECK(a0, 0xffffffff99887766)
  TEST(212)
  c.ld a0, 0(a2)
  CHECK(a0, 0x9988776655443322)
  TEST(213)
  c.ld a0, 8(a2)
  CHECK(a0, 0x0000ffeeddccbbaa)
  TEST(214)
  li a3, V
  c.sw a3, 0(a2)
  ld a0, 0(s0)
  CHECK(a0, 0x887766f4f3f2f111)
  TEST(215)
  c.sd a3, 8(a2)
  ld a0, 8(s0)
  CHECK(a0, 0xf7f6f5f4f3f2f199)
  TEST(216)
  ld a0, 0(s0)
  CHECK(a0, 0x887766f4f3f2f111)
  TEST(217)
  lbu a0, 16(s0)
  CHECK(a0, 0xf8)

  /* ---- crossing a 4 KiB page boundary (P = pgbuf + 4096) ---- */
  la s0, pgbuf
  li t0, 4096
  add s0, s0, t0
  la s1, pattern
  ld t0, 0(s1)
  sd t0, -8(s0)
  ld t0, 8(s1)
  sd t0, 0(s0)
  TEST(220)
  ld a0, -4(s0)
  CHECK(a0, 0xccbbaa9988776655)
  TEST(221)
  lw a0, -2(s0)
  CHECK(a0, 0xffffffffaa998877)
  TEST(222)
  lh a0, -1(s0)
  CHECK(a0, 0xffffffffffff9988)
  TEST(223)
  lwu a0, -3(s0)
  CHECK(a0, 0x99887766)
  TEST(224)
  ld a0, -7(s0)
  CHECK(a0, 0x9988776655443322)
  TEST(225)
  fld fa0, -5(s0)
  fmv.x.d a0, fa0
  CHECK(a0, 0xbbaa998877665544)
  TEST(226)
  li a1, V
  sd a1, -3(s0)
  ld a0, -8(s0)
  CHECK(a0, 0xf3f2f15544332211)
  TEST(227)
  ld a0, 0(s0)
  CHECK(a0, 0xffeef8f7f6f5f4)
  TEST(228)
  sw a1, -1(s0)
  ld a0, -8(s0)
  CHECK(a0, 0xf1f2f15544332211)
  TEST(229)
  ld a0, 0(s0)
  CHECK(a0, 0x00ffeef8f7f4f3f2)
  TEST(230)
  sh a1, -1(s0)
  lhu a0, -1(s0)
  CHECK(a0, 0xf2f1)

  /* ---- running off the end of RAM: access fault at the first unmapped byte ---- */
  li s0, 0x8ffffffc
  li a0, 1234
  TEST(240)
  li s5, 1
  li s8, -1
1: ld a0, 0(s0)
  CHECK(s8, 5)
  TEST(241); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(242); CHECK(s10, 0x90000000)
  TEST(243); CHECK(a0, 1234)
  TEST(244)
  li s5, 1
  li s8, -1
1: sd a0, 0(s0)
  CHECK(s8, 7)
  TEST(245); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(246); CHECK(s10, 0x90000000)
  TEST(247)
  li s5, 1
  li s8, -1
  addi s1, s0, 2
1: lw a0, 0(s1)
  CHECK(s8, 5)
  TEST(248); CHECK(s10, 0x90000000)
  TEST(249); CHECK(a0, 1234)
  /* The last bytes of RAM can be accessed misaligned without a fault. */
  TEST(250)
  li t0, 0x1122334455667788
  sd t0, -4(s0)                               /* 0x8ffffff8, the last doubleword */
  sd t0, -12(s0)
  ld a0, -5(s0)                               /* 0x8ffffff7 .. 0x8ffffffe */
  CHECK(a0, 0x2233445566778811)
  TEST(251)
  li t0, 0xaabbccdd
  sw t0, -1(s0)                               /* 0x8ffffffb .. 0x8ffffffe */
  ld a0, -4(s0)
  CHECK(a0, 0x11aabbccdd667788)
  ret

  /* Traps are only expected when s5 != 0; otherwise fail with the check number. */
  .align 2
trap_handler:
  beqz s5, fail
  li s5, 0
  csrr s8, mcause
  csrr s9, mepc
  csrr s10, mtval
  csrr t4, mepc
  lhu t5, 0(t4)
  andi t5, t5, 3
  addi t4, t4, 2
  addi t5, t5, -3
  bnez t5, 1f
  addi t4, t4, 2
1: csrw mepc, t4
  mret

  .data
  .align 4
pattern:
  .byte 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88
  .byte 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00
mbuf:
  .dword 0, 0, 0

  .bss
  .align 12
pgbuf:
  .skip 8192
