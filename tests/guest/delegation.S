/* Trap delegation to S-mode: medeleg (WARL), ecall from U,
 * breakpoints, illegal instruction and load access fault delegated to S land in
 * stvec with scause/sepc/stval set and the M-mode handler never running;
 * sstatus.SPP/SPIE/SIE on entry and sret; non-delegated causes still go to M;
 * traps taken in M are never delegated; mideleg of the supervisor software
 * interrupt: SSIP set from M is handled in S with scause = 0x8000000000000001
 * (never taken in M, masked by SIE in S, always taken in U), through a vectored
 * stvec at base + 4; without delegation it goes to M even from S with MIE = 0;
 * sie/sip are views of mie/mip restricted by mideleg (bits of non-delegated
 * interrupts read 0 and ignore writes; sip.STIP is read-only).
 *
 * M handler: s8 = mcause, s9 = mepc, s10 = mtval, s6 = mstatus, s7 counts;
 * for interrupts it clears mip.SSIP/STIP and returns to the same instruction;
 * otherwise it skips the instruction (or resumes in M for an ecall with
 * a7 = 0x4d, at s5 if the S handler forwarded it). S handler (stvec):
 * s2 = scause, s3 = sepc, s4 = stval, s1 = sstatus, a6 counts; interrupts:
 * clears sip.SSIP, returns to sepc; exceptions: skips the instruction, except a
 * delegated ecall from U with a7 = 0x4d, which it forwards to M with its own
 * ecall and s5 = the resume address. */
#include "test.h"

#define MSTATUS_SIE  (1 << 1)
#define MSTATUS_MIE  (1 << 3)
#define MSTATUS_SPIE (1 << 5)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_SPP  (1 << 8)
#define MSTATUS_MPP  (3 << 11)
#define SSI_CAUSE 0x8000000000000001
#define BAD_ADDR 0x90000000

#define ENTER_MODE(mode) \
  li t0, MSTATUS_MPP; csrc mstatus, t0; li t0, ((mode) << 11); csrs mstatus, t0; \
  la t0, 1f; csrw mepc, t0; mret; 1:
#define BACK_TO_M li a7, 0x4d; ecall; li a7, 0
/* From S: continue at the next instruction in U-mode. */
#define S_TO_U li t0, MSTATUS_SPP; csrc sstatus, t0; la t0, 1f; csrw sepc, t0; sret; 1:
/* Expect an exception handled by the S handler at the first instruction. */
#define EXPECT_S_TRAP(n, cause, ...) \
  TEST(n); li s2, -1; li s3, -1; 1: __VA_ARGS__; CHECK(s2, cause); la t0, 1b; CHECK_EQ(s3, t0)
#define EXPECT_M_TRAP(n, cause, ...) \
  TEST(n); li s8, -1; li s9, -1; 1: __VA_ARGS__; CHECK(s8, cause); la t0, 1b; CHECK_EQ(s9, t0)
#define CHECK_FIELD(reg, mask, val) li t0, mask; and t0, reg, t0; CHECK(t0, val)

  .text
  .globl test_main
test_main:
  mv s11, ra
  la t0, m_handler
  csrw mtvec, t0
  la t0, s_handler
  csrw stvec, t0
  li s7, 0
  li a6, 0
  li a7, 0
  li s5, 0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  csrw mie, x0
  csrw mideleg, x0

  /* ---- medeleg ---- */
  /* (The spec makes medeleg[11] read-only zero; QEMU 7.2 lets it be set, so
   * that bit is not checked.) */
  TEST(2)
  li t0, -1
  csrw medeleg, t0
  csrr a0, medeleg
  li t0, (1 << 8) | (1 << 3) | (1 << 2) | (1 << 5)
  and a1, a0, t0
  CHECK_EQ(a1, t0)                             /* these are delegable */
  TEST(3)
  li t0, (1 << 8) | (1 << 3)
  csrw medeleg, t0
  csrr a0, medeleg
  CHECK(a0, (1 << 8) | (1 << 3))

  /* ---- delegated exceptions from U ---- */
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  ENTER_MODE(1)
  li t0, MSTATUS_SPIE
  csrs sstatus, t0                             /* sret below makes SIE = 1 in U */
  S_TO_U
  li a7, 0
  EXPECT_S_TRAP(10, 8, ecall)
  TEST(11); CHECK(s4, 0)
  TEST(12); CHECK(a6, 1)
  TEST(13); CHECK(s7, 0)                       /* M handler did not run */
  TEST(14); CHECK_FIELD(s1, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE)
  EXPECT_S_TRAP(15, 3, ebreak)
  TEST(16); CHECK(s4, 0)
  EXPECT_S_TRAP(17, 3, c.ebreak)
  TEST(18); CHECK(a6, 3)
  /* Not delegated: illegal instruction and load access fault go to M. */
  li s2, -1
  EXPECT_M_TRAP(19, 2, .word 0xfe000033)
  TEST(20); CHECK(s10, 0xfe000033)
  TEST(21); CHECK_FIELD(s6, MSTATUS_MPP, 0)    /* from U */
  TEST(22); CHECK(s2, -1)                      /* S handler did not run */
  li t1, BAD_ADDR
  EXPECT_M_TRAP(23, 5, ld a0, 0(t1))
  TEST(24); CHECK(s10, BAD_ADDR)
  TEST(25); CHECK(s7, 2)
  TEST(26); CHECK(a6, 3)
  BACK_TO_M
  /* Now delegate them too: stval is set like mtval would be. */
  li t0, (1 << 8) | (1 << 3) | (1 << 2) | (1 << 5)
  csrw medeleg, t0
  li s7, 0
  ENTER_MODE(0)
  EXPECT_S_TRAP(30, 2, .word 0xfe000033)
  TEST(31); CHECK(s4, 0xfe000033)
  li t1, BAD_ADDR
  EXPECT_S_TRAP(32, 5, ld a0, 8(t1))
  TEST(33); CHECK(s4, BAD_ADDR + 8)
  TEST(34); CHECK(s7, 0)
  BACK_TO_M
  li t0, (1 << 8) | (1 << 3)
  csrw medeleg, t0

  /* ---- delegated exceptions from S ---- */
  li s7, 0
  li a6, 0
  ENTER_MODE(1)
  csrsi sstatus, MSTATUS_SIE
  EXPECT_S_TRAP(40, 3, ebreak)
  TEST(41); CHECK_FIELD(s1, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP | MSTATUS_SPIE)
  TEST(42)
  csrr a0, sstatus                             /* sret: SIE <- SPIE = 1, SPP <- U */
  CHECK_FIELD(a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE | MSTATUS_SIE)
  csrci sstatus, MSTATUS_SIE
  EXPECT_S_TRAP(43, 3, ebreak)
  TEST(44); CHECK_FIELD(s1, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP)
  TEST(45)
  csrr a0, sstatus
  CHECK_FIELD(a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE)
  /* ecall from S (cause 9) is not delegated: M. */
  li a7, 0
  EXPECT_M_TRAP(46, 9, ecall)
  TEST(47); CHECK_FIELD(s6, MSTATUS_MPP, (1 << 11))
  TEST(48); CHECK(a6, 2)
  TEST(49); CHECK(s7, 1)
  BACK_TO_M
  /* In M-mode nothing is delegated. */
  li s2, -1
  EXPECT_M_TRAP(50, 3, ebreak)
  TEST(51); CHECK(s2, -1)

  /* ---- sie / sip views ---- */
  csrw mideleg, x0
  li t0, 0x222                                 /* SSIE, STIE, SEIE */
  csrw mie, t0
  TEST(60)
  csrr a0, sie
  CHECK(a0, 0)                                 /* not delegated: read 0 */
  TEST(61)
  csrw sie, x0
  csrr a0, mie
  CHECK(a0, 0x222)                             /* ... and writes ignored */
  TEST(62)
  li t0, 0x222
  csrw mideleg, t0
  csrr a0, mideleg
  and a0, a0, t0
  CHECK(a0, 0x222)
  TEST(63)
  csrr a0, sie
  CHECK(a0, 0x222)
  TEST(64)
  li t0, 0x8                                   /* MSIE (MSIP is clear) */
  csrs mie, t0
  csrw sie, x0
  csrr a0, mie
  CHECK(a0, 0x8)                               /* S bits cleared, M bit kept */
  TEST(65)
  li t0, -1
  csrw sie, t0
  csrr a0, mie
  li t0, 0xaaa                                 /* S bits set, MSIE kept, no other M bit */
  and a0, a0, t0
  CHECK(a0, 0x22a)
  TEST(66)
  csrr a0, sie
  li t0, 0x222
  and a0, a0, t0
  CHECK(a0, 0x222)
  csrw mie, x0
  /* sip.SSIP writable when delegated. */
  TEST(67)
  csrsi sip, 2
  csrr a0, mip
  andi a0, a0, 2
  CHECK(a0, 2)
  TEST(68)
  csrr a0, sip
  andi a0, a0, 2
  CHECK(a0, 2)
  TEST(69)
  csrci sip, 2
  csrr a0, mip
  andi a0, a0, 2
  CHECK(a0, 0)
  /* sip.STIP reflects mip.STIP but is read-only. */
  TEST(70)
  li t0, 0x20
  csrs mip, t0
  csrr a0, sip
  andi a0, a0, 0x20
  CHECK(a0, 0x20)
  TEST(71)
  li t0, 0x20
  csrc sip, t0
  csrr a0, mip
  andi a0, a0, 0x20
  CHECK(a0, 0x20)
  li t0, 0x20
  csrc mip, t0
  /* Not delegated: sip.SSIP reads 0 and ignores writes. */
  csrw mideleg, x0
  TEST(72)
  csrsi sip, 2
  csrr a0, mip
  andi a0, a0, 2
  CHECK(a0, 0)
  TEST(73)
  csrsi mip, 2
  csrr a0, sip
  andi a0, a0, 2
  CHECK(a0, 0)
  csrci mip, 2

  /* ---- delegated supervisor software interrupt ---- */
  li s7, 0
  li a6, 0
  li t0, 2
  csrw mideleg, t0
  csrw mie, t0                                 /* SSIE */
  csrs mip, t0                                 /* SSIP pending */
  /* Never taken in M-mode, even with MIE = 1. */
  TEST(80)
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  nop
  nop
  csrc mstatus, t0
  CHECK(a6, 0)
  TEST(81); CHECK(s7, 0)
  /* In S with SIE = 0: masked. */
  li t0, MSTATUS_SIE
  csrc mstatus, t0
  ENTER_MODE(1)
  TEST(82)
  nop
  nop
  CHECK(a6, 0)
  TEST(83)
  li s2, -1
  csrsi sstatus, MSTATUS_SIE                   /* taken right after this */
1: nop
  CHECK(s2, SSI_CAUSE)
  TEST(84); la t0, 1b; CHECK_EQ(s3, t0)
  TEST(85); CHECK(s4, 0)
  TEST(86); CHECK_FIELD(s1, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP | MSTATUS_SPIE)
  TEST(87); CHECK(a6, 1)
  TEST(88); csrr a0, sip; andi a0, a0, 2; CHECK(a0, 0)   /* handler cleared it */
  /* In U: taken whatever SIE is. */
  csrci sstatus, MSTATUS_SIE
  csrsi sip, 2
  TEST(89)
  nop
  CHECK(a6, 1)                                 /* masked in S */
  TEST(90)
  li s2, -1
  li t0, MSTATUS_SPP
  csrc sstatus, t0
  la t0, 2f
  csrw sepc, t0
  sret
  j fail
2: nop                                         /* interrupted before this runs */
  CHECK(s2, SSI_CAUSE)
  TEST(91); la t0, 2b; CHECK_EQ(s3, t0)
  TEST(92); CHECK_FIELD(s1, MSTATUS_SPP, 0)
  TEST(93); CHECK(a6, 2)
  TEST(94); CHECK(s7, 0)
  BACK_TO_M
  /* Vectored stvec: the interrupt goes to base + 4 * 1, exceptions to base. */
  la t0, s_vec
  ori t0, t0, 1
  csrw stvec, t0
  li a5, 0
  ENTER_MODE(1)
  TEST(95)
  csrsi sip, 2
  csrsi sstatus, MSTATUS_SIE
  nop
  CHECK(s2, SSI_CAUSE)
  TEST(96); CHECK(a5, 0x101)
  TEST(97)
  ebreak
  CHECK(s2, 3)
  TEST(98); CHECK(a5, 0x100)
  csrci sstatus, MSTATUS_SIE
  BACK_TO_M
  la t0, s_handler
  csrw stvec, t0

  /* ---- not delegated: the software interrupt goes to M, even from S with MIE = 0 ---- */
  csrw mideleg, x0
  li s7, 0
  li a6, 0
  li t0, 2
  csrw mie, t0
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  csrsi mip, 2
  TEST(100)
  nop
  CHECK(s7, 0)                                 /* MIE = 0 in M: masked */
  TEST(101)
  li s8, -1
  li t0, MSTATUS_MPP | MSTATUS_MPIE
  csrc mstatus, t0
  li t0, (1 << 11)
  csrs mstatus, t0
  la t0, 1f
  csrw mepc, t0
  mret
  j fail
1: nop                                         /* in S: interrupted before this runs */
  CHECK(s8, SSI_CAUSE)
  TEST(102); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(103); CHECK_FIELD(s6, MSTATUS_MPP, (1 << 11))
  TEST(104); CHECK(a6, 0)
  TEST(105); CHECK(s7, 1)
  BACK_TO_M
  csrw mie, x0
  csrw medeleg, x0

  mv ra, s11
  ret

  /* ---- M-mode trap handler ---- */
  .align 2
m_handler:
  csrr s8, mcause
  csrr s9, mepc
  csrr s10, mtval
  csrr s6, mstatus
  addi s7, s7, 1
  bgez s8, 4f
  li t5, 0x22                                  /* interrupt: clear SSIP, STIP */
  csrc mip, t5
  mret
4: li t5, 0x4d
  bne a7, t5, 2f
  li t5, 8
  beq s8, t5, 3f
  li t5, 9
  bne s8, t5, 2f
3: li t5, MSTATUS_MPP
  csrs mstatus, t5
  beqz s5, 2f
  csrw mepc, s5                                /* forwarded from the S handler */
  li s5, 0
  mret
2: csrr t4, mepc
  lhu t5, 0(t4)
  andi t5, t5, 3
  addi t4, t4, 2
  addi t5, t5, -3
  bnez t5, 1f
  addi t4, t4, 2
1: csrw mepc, t4
  mret

  /* ---- S-mode trap handler ---- */
  .align 2
s_handler:
  /* ecall from U with a7 = 0x4d (delegated): forward to M, resuming after it. */
  li t5, 0x4d
  bne a7, t5, 3f
  csrr t5, scause
  addi t5, t5, -8
  bnez t5, 3f
  csrr s5, sepc
  addi s5, s5, 4
  ecall
3: csrr s2, scause
  csrr s3, sepc
  csrr s4, stval
  csrr s1, sstatus
  addi a6, a6, 1
  bgez s2, 2f
  csrci sip, 2                                 /* interrupt: clear SSIP */
  sret
2: csrr t4, sepc
  lhu t5, 0(t4)
  andi t5, t5, 3
  addi t4, t4, 2
  addi t5, t5, -3
  bnez t5, 1f
  addi t4, t4, 2
1: csrw sepc, t4
  sret

  .align 8
s_vec:
  .option push
  .option norvc                                /* 4-byte entries */
  j s_vec0
  j s_vec1
  .rept 14
  j s_vec_bad
  .endr
  .option pop
s_vec0:
  li a5, 0x100
  j s_handler
s_vec1:
  li a5, 0x101
  j s_handler
s_vec_bad:
  li gp, 254
  j fail
