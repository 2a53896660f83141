/* Interrupts: machine timer through the CLINT (mtime/mtimecmp drive mip.MTIP,
 * mcause = 0x8000000000000007, mtval = 0), machine software interrupt through
 * CLINT msip (mcause 0x8000000000000003), masking by mstatus.MIE and mie (pending
 * shows in mip, no trap), taken right after the csrs that unmasks it, M-level
 * interrupts taken in U-mode regardless of MIE, wfi with MIE = 0 returning when
 * the timer becomes pending (no trap), wfi with MIE = 1 (mepc = wfi + 4),
 * read-only mip.MSIP/MTIP/MEIP, supervisor timer interrupt via mip.STIP set by M
 * and delegated with mideleg (scause 0x8000000000000005, never taken in M),
 * non-delegated STI/SEI/SSI taken in M, a machine external interrupt from the
 * UART (THR-empty interrupt, IRQ 10) through the PLIC (context 0 = hart 0
 * M-mode, claim returns 10), vectored mtvec (interrupt n at base + 4n), and
 * priority among several pending interrupts, only where QEMU 7.2 agrees with
 * the spec (MSI > MTI > SEI, SSI > STI; see the note at that test).
 * Interrupts raised by an MMIO write (msip, mtimecmp, UART) may arrive a few
 * instructions later, so those tests spin until the handler has run.
 *
 * M handler: s8 = mcause, s9 = mepc, s10 = mtval, s6 = mstatus, s7 counts; for
 * an interrupt it appends the cause's low byte at a5 (if a5 != 0), then clears
 * the source (PLIC claim -> a4, UART IER = 0, complete; msip = 0;
 * mtimecmp = -1; or clears mip.SEIP/SSIP/STIP) and returns to mepc. The handler
 * uses only t4/t5, which the test code never uses. S handler: s2 = scause,
 * s3 = sepc, a6 counts; an STI/SEI is silenced by clearing sie.STIE/SEIE. */
#include "test.h"

#define MSTATUS_SIE  (1 << 1)
#define MSTATUS_MIE  (1 << 3)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_MPP  (3 << 11)
#define MIP_SSIP (1 << 1)
#define MIP_MSIP (1 << 3)
#define MIP_STIP (1 << 5)
#define MIP_MTIP (1 << 7)
#define MIP_SEIP (1 << 9)
#define MIP_MEIP (1 << 11)
#define INT(n) (0x8000000000000000 | (n))

#define PLIC_BASE 0xc000000
#define PLIC_PRIO10 (PLIC_BASE + 4 * 10)
#define PLIC_ENABLE0 (PLIC_BASE + 0x2000)
#define PLIC_THRESH0 (PLIC_BASE + 0x200000)
#define PLIC_CLAIM0 (PLIC_BASE + 0x200004)
#define UART_IER (UART_BASE + 1)

#define ENTER_MODE(mode) \
  li t0, MSTATUS_MPP; csrc mstatus, t0; li t0, ((mode) << 11); csrs mstatus, t0; \
  la t0, 1f; csrw mepc, t0; mret; 1:
#define BACK_TO_M li a7, 0x4d; ecall; li a7, 0
/* mtimecmp = mtime + delta (clobbers t0-t2). */
#define TIMER_IN(delta) li t0, CLINT_MTIME; ld t1, 0(t0); li t2, delta; add t1, t1, t2; li t0, CLINT_MTIMECMP; sd t1, 0(t0)
#define TIMER_OFF li t0, CLINT_MTIMECMP; li t1, -1; sd t1, 0(t0)
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
  li a5, 0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  csrw mie, x0
  csrw mideleg, x0
  csrw medeleg, x0
  li t0, MSTATUS_MIE
  csrc mstatus, t0

  /* ---- mtimecmp drives mip.MTIP ---- */
  TEST(1)
  TIMER_OFF
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  CHECK(a0, 0)
  TEST(2)
  li t0, CLINT_MTIMECMP
  sd x0, 0(t0)
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  CHECK(a0, MIP_MTIP)
  TEST(3)
  TIMER_OFF
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  CHECK(a0, 0)

  /* ---- timer interrupt masked by MIE = 0, taken when MIE is set ---- */
  TEST(4)
  li t0, MIP_MTIP
  csrw mie, t0
  TIMER_IN(1000)
  li t3, 100000000
1: csrr a0, mip
  andi a0, a0, MIP_MTIP
  bnez a0, 2f
  addi t3, t3, -1
  bnez t3, 1b
  j fail
2: CHECK(s7, 0)                                /* pending, but no trap */
  TEST(5)
  li s8, -1
  li t0, MSTATUS_MIE
  csrs mstatus, t0
1: nop
  CHECK(s8, INT(7))
  TEST(6); la t0, 1b; CHECK_EQ(s9, t0)       /* taken right after the csrs */
  TEST(7); CHECK(s10, 0)
  TEST(8); CHECK_FIELD(s6, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE, MSTATUS_MPP | MSTATUS_MPIE)
  TEST(9)
  csrr a0, mstatus
  andi a0, a0, MSTATUS_MIE
  CHECK(a0, MSTATUS_MIE)                       /* restored by mret */
  TEST(10)
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  CHECK(a0, 0)                                 /* handler moved mtimecmp */
  TEST(11); CHECK(s7, 1)

  /* ---- timer interrupt while spinning ---- */
  TEST(12)
  li s8, 0
  TIMER_IN(2000)
  li t3, 100000000
1: bnez s8, 2f
  addi t3, t3, -1
  bnez t3, 1b
  j fail
2: CHECK(s8, INT(7))
  TEST(13)
  la t0, 1b
  bltu s9, t0, fail
  la t0, 2b
  bgeu s9, t0, fail                            /* mepc inside the loop */
  TEST(14); CHECK(s7, 2)

  /* ---- wfi with MIE = 1: interrupt taken, mepc = wfi + 4 ---- */
  TEST(15)
  li s8, 0
  TIMER_IN(2000)
  li t3, 100000000
1: wfi
2: bnez s8, 3f
  addi t3, t3, -1
  bnez t3, 1b
  j fail
3: CHECK(s8, INT(7))
  TEST(16)
  la t0, 2b
  CHECK_EQ(s9, t0)
  li t0, MSTATUS_MIE
  csrc mstatus, t0

  /* ---- wfi with MIE = 0 returns once the timer is pending; no trap ---- */
  TEST(17)
  li s7, 0
  TIMER_IN(2000)
  li t3, 100000000
1: wfi
  csrr a0, mip
  andi a0, a0, MIP_MTIP
  bnez a0, 2f
  addi t3, t3, -1
  bnez t3, 1b
  j fail
2: CHECK(s7, 0)
  TEST(18)
  li t0, CLINT_MTIME
  ld a0, 0(t0)
  li t0, CLINT_MTIMECMP
  ld a1, 0(t0)
  bltu a0, a1, fail                            /* mtime >= mtimecmp */
  /* An M interrupt is taken in U-mode even with MIE = 0. */
  TEST(19)
  li s8, -1
  li t0, MSTATUS_MPIE
  csrc mstatus, t0                             /* MIE stays 0 after the mret */
  ENTER_MODE(0)
  CHECK(s8, INT(7))
  TEST(20); la t0, 1b; CHECK_EQ(s9, t0)      /* the first U-mode instruction */
  TEST(21); CHECK_FIELD(s6, MSTATUS_MPP, 0)
  BACK_TO_M
  csrw mie, x0

  /* ---- machine software interrupt (CLINT msip) ---- */
  TEST(30)
  li s7, 0
  li t0, MIP_MSIP
  csrw mie, t0
  li t0, CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)
  lw a0, 0(t0)
  CHECK(a0, 1)
  TEST(31)
  csrr a0, mip
  andi a0, a0, MIP_MSIP
  CHECK(a0, MIP_MSIP)
  TEST(32); CHECK(s7, 0)
  TEST(33)
  li s8, -1
  li t0, MSTATUS_MIE
  csrs mstatus, t0
1: nop
  CHECK(s8, INT(3))
  TEST(34); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(35)
  csrr a0, mip
  andi a0, a0, MIP_MSIP
  CHECK(a0, 0)
  /* mie gates it too. */
  TEST(36)
  csrw mie, x0
  li t0, CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)
  nop
  CHECK(s7, 1)
  TEST(37)
  li s8, -1
  li t0, MIP_MSIP
  csrs mie, t0
1: nop
  CHECK(s8, INT(3))
  TEST(38); la t0, 1b; CHECK_EQ(s9, t0)
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  /* MSIP, MTIP and MEIP are read-only in mip. */
  TEST(39)
  li t0, MIP_MSIP | MIP_MTIP | MIP_MEIP
  csrs mip, t0
  csrr a0, mip
  and a0, a0, t0
  CHECK(a0, 0)
  csrw mie, x0

  /* ---- machine external interrupt: UART THR-empty through the PLIC ---- */
  TEST(40)
  li s7, 0
  li t0, PLIC_PRIO10
  li t1, 1
  sw t1, 0(t0)
  li t0, PLIC_ENABLE0
  li t1, (1 << 10)
  sw t1, 0(t0)
  li t0, PLIC_THRESH0
  sw x0, 0(t0)
  li t0, UART_IER
  li t1, 2                                     /* ETBEI: THR is empty, so pending */
  sb t1, 0(t0)
  li t3, 1000000
1: csrr a0, mip
  li t0, MIP_MEIP
  and a0, a0, t0
  bnez a0, 2f
  addi t3, t3, -1
  bnez t3, 1b
  j fail
2: CHECK(s7, 0)
  TEST(41)
  li s8, -1
  li a4, -1
  li t0, MIP_MEIP
  csrw mie, t0
  li t0, MSTATUS_MIE
  csrs mstatus, t0
1: nop
  CHECK(s8, INT(11))
  TEST(42); CHECK(a4, 10)                      /* claimed the UART's source */
  TEST(43); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(44)
  csrr a0, mip
  li t0, MIP_MEIP
  and a0, a0, t0
  CHECK(a0, 0)
  TEST(45); CHECK(s7, 1)
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  csrw mie, x0

  /* ---- supervisor timer interrupt, delegated ---- */
  TEST(50)
  li s7, 0
  li a6, 0
  li t0, MIP_STIP
  csrw mideleg, t0
  csrw mie, t0                                 /* STIE */
  csrs mip, t0                                 /* STIP set by M */
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  nop
  csrc mstatus, t0
  CHECK(s7, 0)                                 /* never taken in M */
  TEST(51)
  CHECK(a6, 0)
  li t0, MSTATUS_SIE
  csrs mstatus, t0
  li s2, -1
  ENTER_MODE(1)
  CHECK(s2, INT(5))
  TEST(52); la t0, 1b; CHECK_EQ(s3, t0)
  TEST(53); CHECK(a6, 1)
  TEST(54); csrr a0, sip; andi a0, a0, MIP_STIP; CHECK(a0, MIP_STIP)  /* still pending, STIE now 0 */
  BACK_TO_M
  TEST(55); CHECK(s7, 1)                       /* only the BACK_TO_M ecall */
  li t0, MIP_STIP
  csrc mip, t0
  csrw mideleg, x0
  li t0, MSTATUS_SIE
  csrc mstatus, t0

  /* ---- S-level interrupts not delegated go to M ---- */
  li t0, MIP_STIP | MIP_SEIP | MIP_SSIP
  csrw mie, t0
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  TEST(56)
  li s8, -1
  li t0, MIP_STIP
  csrs mip, t0
1: nop
  CHECK(s8, INT(5))
  TEST(57); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(58)
  li s8, -1
  li t0, MIP_SEIP
  csrs mip, t0
1: nop
  CHECK(s8, INT(9))
  TEST(59); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(60)
  li s8, -1
  csrsi mip, MIP_SSIP
1: nop
  CHECK(s8, INT(1))
  TEST(61); la t0, 1b; CHECK_EQ(s9, t0)
  TEST(62)
  csrr a0, mip
  andi a0, a0, MIP_STIP | MIP_SEIP | MIP_SSIP
  CHECK(a0, 0)
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  csrw mie, x0

  /* ---- vectored mtvec: interrupt n goes to base + 4n ---- */
  la t0, m_vec
  ori t0, t0, 1
  csrw mtvec, t0
  TEST(70)
  li a3, 0
  li t0, MIP_MSIP | MIP_MTIP
  csrw mie, t0
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  li t0, CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)
  li t3, 1000000                               /* an MMIO write need not take effect at once */
1: bnez a3, 2f
  addi t3, t3, -1
  bnez t3, 1b
2: CHECK(a3, 3)
  TEST(71)
  li a3, 0
  li t0, CLINT_MTIMECMP
  sd x0, 0(t0)
  li t3, 1000000
1: bnez a3, 2f
  addi t3, t3, -1
  bnez t3, 1b
2: CHECK(a3, 7)
  TEST(72)
  li a3, 0
  li a7, 0
  ecall                                        /* exceptions use the base */
  CHECK(a3, 0x100)
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  csrw mie, x0
  la t0, m_handler
  csrw mtvec, t0

  /* ---- priority ----
   * The spec orders MEI > MSI > MTI > SEI > SSI > STI. QEMU 7.2 (without AIA)
   * instead takes the lowest-numbered pending interrupt first (SSI, MSI, STI,
   * MTI, SEI, MEI), so only sets on which both orders agree are tested:
   * MSI > MTI > SEI, and SSI > STI. */
  TEST(80)
  li s7, 0
  li t0, CLINT_MSIP
  li t1, 1
  sw t1, 0(t0)                                 /* MSIP */
  li t0, CLINT_MTIMECMP
  sd x0, 0(t0)                                 /* MTIP */
  li t0, MIP_SEIP
  csrs mip, t0
  li t3, 1000000
1: csrr a0, mip
  li t0, MIP_MSIP | MIP_MTIP | MIP_SEIP
  and a0, a0, t0
  beq a0, t0, 2f
  addi t3, t3, -1
  bnez t3, 1b
  j fail
2: CHECK(s7, 0)
  TEST(81)
  la a5, irq_log
  sd x0, 0(a5)
  li t0, MIP_MSIP | MIP_MTIP | MIP_SEIP
  csrw mie, t0
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  nop
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  li a5, 0
  CHECK(s7, 3)
  TEST(82)
  la t0, irq_log
  ld a0, 0(t0)
  CHECK(a0, 0x090703)                          /* MSI, MTI, SEI */
  TEST(83)
  csrr a0, mip
  li t0, 0xaaa
  and a0, a0, t0
  CHECK(a0, 0)
  TEST(84)
  li s7, 0
  li t0, MIP_SSIP | MIP_STIP
  csrs mip, t0
  la a5, irq_log
  sd x0, 0(a5)
  csrw mie, t0
  li t0, MSTATUS_MIE
  csrs mstatus, t0
  nop
  li t0, MSTATUS_MIE
  csrc mstatus, t0
  li a5, 0
  CHECK(s7, 2)
  TEST(85)
  la t0, irq_log
  ld a0, 0(t0)
  CHECK(a0, 0x0501)                            /* SSI, STI */
  TEST(86)
  csrr a0, mip
  li t0, 0xaaa
  and a0, a0, t0
  CHECK(a0, 0)
  csrw mie, x0

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
  bgez s8, m_exc
  beqz a5, 1f
  sb s8, 0(a5)
  addi a5, a5, 1
1: andi t5, s8, 0x3f
  li t4, 11
  beq t5, t4, m_mei
  li t4, 3
  beq t5, t4, m_msi
  li t4, 7
  beq t5, t4, m_mti
  li t4, 9
  beq t5, t4, m_sei
  li t4, 1
  beq t5, t4, m_ssi
  li t4, 5
  beq t5, t4, m_sti
  li gp, 253
  j fail
m_mei:
  li t4, PLIC_CLAIM0
  lw a4, 0(t4)
  li t5, UART_IER
  sb zero, 0(t5)
  sw a4, 0(t4)
  mret
m_msi:
  li t4, CLINT_MSIP
  sw zero, 0(t4)
  mret
m_mti:
  li t4, CLINT_MTIMECMP
  li t5, -1
  sd t5, 0(t4)
  mret
m_sei:
  li t4, MIP_SEIP
  csrc mip, t4
  mret
m_ssi:
  csrci mip, MIP_SSIP
  mret
m_sti:
  li t4, MIP_STIP
  csrc mip, t4
  mret
m_exc:
  li t5, 0x4d
  bne a7, t5, 2f
  li t5, 8
  beq s8, t5, 3f
  li t5, 9
  bne s8, t5, 2f
3: li t5, MSTATUS_MPP
  csrs mstatus, t5
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
  csrr s2, scause
  csrr s3, sepc
  addi a6, a6, 1
  bgez s2, 2f
  andi t5, s2, 0x3f
  li t4, 5
  bne t5, t4, 3f
  li t4, MIP_STIP
  csrc sie, t4
  sret
3: li t4, 9
  bne t5, t4, 4f
  li t4, MIP_SEIP
  csrc sie, t4
  sret
4: li gp, 252
  j fail
2: csrr t4, sepc
  lhu t5, 0(t4)
  andi t5, t5, 3
  addi t4, t4, 2
  addi t5, t5, -3
  bnez t5, 1f
  addi t4, t4, 2
1: csrw sepc, t4
  sret

  /* ---- vectored M table ---- */
  .align 8
m_vec:
  .option push
  .option norvc                                /* 4-byte entries */
  j m_vec0
  j m_vec_bad
  j m_vec_bad
  j m_vec3
  j m_vec_bad
  j m_vec_bad
  j m_vec_bad
  j m_vec7
  .rept 8
  j m_vec_bad
  .endr
  .option pop
m_vec0:
  li a3, 0x100
  j m_handler
m_vec3:
  li a3, 3
  j m_handler
m_vec7:
  li a3, 7
  j m_handler
m_vec_bad:
  li gp, 251
  j fail

  .data
  .align 3
irq_log:
  .dword 0
