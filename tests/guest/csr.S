/* Zicsr and machine CSR behaviour: csrrw/csrrs/csrrc and the immediate forms on
 * mscratch/sscratch (old value returned, zimm zero-extended, rs1 = x0 / zimm = 0
 * means no write, so no trap even on a read-only CSR); writes to read-only CSRs
 * (mhartid, cycle, time) and accesses to non-existent CSRs raise illegal
 * instruction (mcause 2, mepc = the instruction, mtval = the instruction bits, rd
 * not written); M-mode CSRs from S- and U-mode and S-mode CSRs from U-mode are
 * illegal; Zicntr: cycle/time/instret (and mcycle/minstret) increase, time
 * matches the CLINT mtime, and U/S-mode access obeys mcounteren/scounteren; misa
 * reports MXL=2 and I M A F D C S U; mstatus WARL read-back (all ones: MPP=3,
 * SXL=2, SD=1, little-endian only) and sstatus being a restricted view;
 * fcsr/frm/fflags views; mstatus.FS: with FS=Off every FP instruction and FP CSR
 * access is illegal, and writing FP state sets FS=Dirty and SD; the Sdtrig
 * trigger CSRs (tselect, tdata1-3, tinfo) exist in M-mode and enumerate as the
 * debug spec says (tselect 0 reads back 0; tdata1's type is 0 "no trigger" with
 * tinfo 1, or an address/data match type listed in tinfo), and are illegal from
 * S-mode.
 *
 * Handler convention: mtvec = trap_handler records mcause in s8, mepc in s9,
 * mtval in s10, mstatus in s6, counts traps in s7, then resumes after the
 * trapping instruction (2 or 4 bytes) in the mode it came from; an ecall with
 * a7 = 0x4d instead resumes in M-mode (used to come back from S/U).
 * PMP entry 0 is set to allow everything so S/U-mode code can run.
 * Not tested because QEMU 7.2 departs from the spec there: `csrrs/csrrc rd,
 * <read-only CSR>, rs1` with rs1 != x0 holding 0 does not trap (the spec says
 * it must); writing all ones to mstatus makes UXL read 3 and writing MPP = 2
 * reads back 2 (both should be legalised); mepc keeps bit 0 when written. */
#include "test.h"

#define MSTATUS_SIE  (1 << 1)
#define MSTATUS_MIE  (1 << 3)
#define MSTATUS_SPIE (1 << 5)
#define MSTATUS_UBE  (1 << 6)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_SPP  (1 << 8)
#define MSTATUS_MPP  (3 << 11)
#define MSTATUS_FS   (3 << 13)
#define MSTATUS_XS   (3 << 15)
#define MSTATUS_MPRV (1 << 17)
#define MSTATUS_SUM  (1 << 18)
#define MSTATUS_MXR  (1 << 19)
#define MSTATUS_TVM  (1 << 20)
#define MSTATUS_TW   (1 << 21)
#define MSTATUS_TSR  (1 << 22)
#define MSTATUS_SD   (1 << 63)

/* Continue at the next instruction in privilege mode `mode` (0 = U, 1 = S, 3 = M). */
#define ENTER_MODE(mode) \
  li t0, MSTATUS_MPP; csrc mstatus, t0; li t0, ((mode) << 11); csrs mstatus, t0; \
  la t0, 1f; csrw mepc, t0; mret; 1:
/* From S or U: continue at the next instruction in M-mode. */
#define BACK_TO_M li a7, 0x4d; ecall; li a7, 0
/* The instruction(s) must raise illegal instruction at the first one. */
#define EXPECT_ILLEGAL(n, ...) \
  TEST(n); li s8, -1; li s9, -1; 1: __VA_ARGS__; CHECK(s8, 2); la t0, 1b; CHECK_EQ(s9, t0)
/* The instruction(s) must not trap. */
#define EXPECT_NO_TRAP(n, ...) TEST(n); li s8, -1; __VA_ARGS__; CHECK(s8, -1)

  .text
  .globl test_main
test_main:
  mv s11, ra
  la t0, trap_handler
  csrw mtvec, t0
  li s7, 0
  li a7, 0
  /* PMP: allow S/U-mode access to everything. */
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f              /* NAPOT, R W X */
  csrw pmpcfg0, t0

  /* ---- basic Zicsr operations on mscratch ---- */
  TEST(1)
  li a0, 0x123456789abcdef0
  csrw mscratch, a0
  csrr a1, mscratch
  CHECK(a1, 0x123456789abcdef0)
  TEST(2)
  li a0, 0xffffffffffffffff
  csrrw a1, mscratch, a0
  CHECK(a1, 0x123456789abcdef0)
  TEST(3)
  csrr a1, mscratch
  CHECK(a1, 0xffffffffffffffff)
  TEST(4)
  li a0, 0x0f0f
  csrw mscratch, a0
  li a2, 0xf000000000000100
  csrrs a1, mscratch, a2
  CHECK(a1, 0x0f0f)
  TEST(5)
  csrr a1, mscratch
  CHECK(a1, 0xf000000000000f0f)
  TEST(6)
  li a2, 0x9000000000000003
  csrrc a1, mscratch, a2
  CHECK(a1, 0xf000000000000f0f)
  TEST(7)
  csrr a1, mscratch
  CHECK(a1, 0x6000000000000f0c)
  TEST(8)
  csrrwi a1, mscratch, 31      /* zimm is zero-extended: 31, not -1 */
  CHECK(a1, 0x6000000000000f0c)
  TEST(9)
  csrr a1, mscratch
  CHECK(a1, 31)
  TEST(10)
  csrrci a1, mscratch, 0x15
  CHECK(a1, 31)
  TEST(11)
  csrr a1, mscratch
  CHECK(a1, 0x0a)
  TEST(12)
  csrrsi a1, mscratch, 0x11
  CHECK(a1, 0x0a)
  TEST(13)
  csrr a1, mscratch
  CHECK(a1, 0x1b)
  /* rs1 = x0 / zimm = 0: read only, value unchanged. */
  TEST(14)
  csrrs a1, mscratch, x0
  csrrc a2, mscratch, x0
  csrrsi a3, mscratch, 0
  csrrci a4, mscratch, 0
  CHECK(a1, 0x1b)
  TEST(15); CHECK(a2, 0x1b)
  TEST(16); CHECK(a3, 0x1b)
  TEST(17); CHECK(a4, 0x1b)
  TEST(18); csrr a1, mscratch; CHECK(a1, 0x1b)
  /* rd == rs1: swap. */
  TEST(19)
  li a0, 0x5555
  csrrw a0, mscratch, a0
  CHECK(a0, 0x1b)
  TEST(20)
  csrr a1, mscratch
  CHECK(a1, 0x5555)
  /* rd = x0 still writes. */
  TEST(21)
  li a0, 77
  csrrw x0, mscratch, a0
  csrrs x0, mscratch, x0
  csrr a1, mscratch
  CHECK(a1, 77)
  /* sscratch is a separate register. */
  TEST(22)
  li a0, 0xabcdef
  csrw sscratch, a0
  csrr a1, sscratch
  CHECK(a1, 0xabcdef)
  TEST(23)
  csrr a1, mscratch
  CHECK(a1, 77)
  TEST(24)
  CHECK(s7, 0)                 /* no traps so far */

  /* ---- read-only CSRs: reads are fine ---- */
  TEST(30)
  csrr a0, mhartid
  CHECK(a0, 0)
  EXPECT_NO_TRAP(31, csrr a0, mvendorid; csrr a0, marchid; csrr a0, mimpid)
  EXPECT_NO_TRAP(32, csrrs a0, mhartid, x0; csrrc a0, mhartid, x0)
  EXPECT_NO_TRAP(33, csrrsi a0, mvendorid, 0; csrrci a0, mhartid, 0)
  EXPECT_NO_TRAP(34, csrr a0, cycle; csrr a0, time; csrr a0, instret)
  EXPECT_NO_TRAP(35, csrr a0, mcycle; csrr a0, minstret)
  /* ... writes are illegal, mtval holds the instruction bits, rd untouched. */
  EXPECT_ILLEGAL(40, csrw mhartid, x0)
  TEST(41); CHECK(s10, 0xf1401073)
  EXPECT_ILLEGAL(42, csrwi mhartid, 0)
  TEST(43); CHECK(s10, 0xf1405073)
  TEST(44)
  li a0, 1234
  EXPECT_ILLEGAL(45, csrrsi a0, mhartid, 1)
  TEST(46); CHECK(s10, 0xf140e573)
  TEST(47); CHECK(a0, 1234)
  li t1, 1
  EXPECT_ILLEGAL(48, csrrs a0, mhartid, t1)
  TEST(49); CHECK(s10, 0xf1432573)
  TEST(50); CHECK(a0, 1234)
  EXPECT_ILLEGAL(51, csrw cycle, x0)
  TEST(52); CHECK(s10, 0xc0001073)
  EXPECT_ILLEGAL(53, csrw time, x0)
  TEST(54); CHECK(s10, 0xc0101073)
  EXPECT_ILLEGAL(55, csrrc a0, mvendorid, t1)
  EXPECT_ILLEGAL(56, csrwi instret, 3)
  /* ... and non-existent CSRs are illegal, even to read. */
  EXPECT_ILLEGAL(57, csrr a0, 0x0ff)
  TEST(58); CHECK(s10, 0x0ff02573)
  TEST(59); CHECK(a0, 1234)
  EXPECT_ILLEGAL(60, csrr a0, 0x3ff)
  TEST(61); CHECK(s10, 0x3ff02573)
  EXPECT_ILLEGAL(62, csrw 0x1ff, a0)
  TEST(63); CHECK(a0, 1234)
  /* Trap bookkeeping: the handler ran once per illegal instruction. */
  TEST(64)
  CHECK(s7, 11)

  /* ---- privilege of CSR accesses ---- */
  ENTER_MODE(1)
  /* S-mode: S CSRs are fine, M CSRs are not. */
  EXPECT_NO_TRAP(70, csrr a0, sscratch; csrr a0, sstatus; csrr a0, stvec)
  li a0, 1234
  EXPECT_ILLEGAL(72, csrr a0, mstatus)
  TEST(73); CHECK(s10, 0x30002573)
  TEST(74); CHECK(a0, 1234)
  TEST(75)
  li t0, MSTATUS_MPP
  and t0, s6, t0
  CHECK(t0, (1 << 11))         /* trap came from S */
  EXPECT_ILLEGAL(76, csrr a0, mscratch)
  EXPECT_ILLEGAL(77, csrw mscratch, x0)
  EXPECT_ILLEGAL(78, csrr a0, mhartid)
  EXPECT_ILLEGAL(79, csrr a0, misa)
  EXPECT_ILLEGAL(80, csrr a0, mtvec)
  EXPECT_ILLEGAL(81, csrr a0, mcycle)
  TEST(82); CHECK(a0, 1234)
  BACK_TO_M
  TEST(83)
  csrr a1, mscratch            /* S-mode write above did not happen */
  CHECK(a1, 77)
  ENTER_MODE(0)
  /* U-mode: neither S nor M CSRs. */
  li a0, 1234
  EXPECT_ILLEGAL(90, csrr a0, sstatus)
  TEST(91)
  li t0, MSTATUS_MPP
  and t0, s6, t0
  CHECK(t0, 0)                 /* trap came from U */
  EXPECT_ILLEGAL(92, csrr a0, sscratch)
  EXPECT_ILLEGAL(93, csrw sscratch, x0)
  EXPECT_ILLEGAL(94, csrr a0, stvec)
  EXPECT_ILLEGAL(95, csrr a0, mscratch)
  EXPECT_ILLEGAL(96, csrr a0, mstatus)
  EXPECT_ILLEGAL(97, csrr a0, mhartid)
  EXPECT_ILLEGAL(98, csrr a0, satp)
  TEST(99); CHECK(a0, 1234)
  BACK_TO_M
  TEST(100)
  csrr a1, sscratch            /* U-mode write above did not happen */
  CHECK(a1, 0xabcdef)

  /* ---- counters ---- */
  TEST(110)
  rdcycle a0
  li t0, 100
1: addi t0, t0, -1
  bnez t0, 1b
  rdcycle a1
  bgeu a0, a1, fail
  TEST(111)
  rdinstret a0
  li t0, 100
1: addi t0, t0, -1
  bnez t0, 1b
  rdinstret a1
  bgeu a0, a1, fail
  TEST(112)
  csrr a0, mcycle
  li t0, 100
1: addi t0, t0, -1
  bnez t0, 1b
  csrr a1, mcycle
  bgeu a0, a1, fail
  TEST(113)
  csrr a0, minstret
  li t0, 100
1: addi t0, t0, -1
  bnez t0, 1b
  csrr a1, minstret
  bgeu a0, a1, fail
  /* time advances (spin until it changes, bounded). */
  TEST(114)
  rdtime a0
  li t0, 10000000
1: rdtime a1
  bne a1, a0, 2f
  addi t0, t0, -1
  bnez t0, 1b
  j fail
2: bltu a1, a0, fail
  /* time is the CLINT's mtime: mtime <= time <= mtime read afterwards. */
  TEST(115)
  li t1, CLINT_MTIME
  ld a0, 0(t1)
  rdtime a1
  ld a2, 0(t1)
  bltu a1, a0, fail
  bltu a2, a1, fail
  /* U- and S-mode access to counters is controlled by mcounteren/scounteren. */
  csrw mcounteren, x0
  csrw scounteren, x0
  ENTER_MODE(0)
  EXPECT_ILLEGAL(120, rdcycle a0)
  EXPECT_ILLEGAL(121, rdtime a0)
  EXPECT_ILLEGAL(122, rdinstret a0)
  BACK_TO_M
  ENTER_MODE(1)
  EXPECT_ILLEGAL(123, rdcycle a0)
  EXPECT_ILLEGAL(124, rdtime a0)
  EXPECT_ILLEGAL(125, rdinstret a0)
  BACK_TO_M
  li t0, 7
  csrw mcounteren, t0
  TEST(126)
  csrr a0, mcounteren
  andi a0, a0, 7
  CHECK(a0, 7)
  ENTER_MODE(0)
  EXPECT_ILLEGAL(127, rdcycle a0)      /* scounteren.CY still clear */
  EXPECT_ILLEGAL(128, rdtime a0)
  BACK_TO_M
  ENTER_MODE(1)
  EXPECT_NO_TRAP(129, rdcycle a0; rdtime a0; rdinstret a0)
  /* S-mode may write scounteren. */
  li t0, 5                             /* CY and IR, not TM */
  csrw scounteren, t0
  BACK_TO_M
  TEST(130)
  csrr a0, scounteren
  andi a0, a0, 7
  CHECK(a0, 5)
  ENTER_MODE(0)
  EXPECT_NO_TRAP(131, rdcycle a0; rdinstret a0)
  EXPECT_ILLEGAL(132, rdtime a0)
  TEST(133)
  rdcycle a0
  li t0, 100
1: addi t0, t0, -1
  bnez t0, 1b
  rdcycle a1
  bgeu a0, a1, fail
  BACK_TO_M
  li t0, 2                             /* only TM in mcounteren */
  csrw mcounteren, t0
  li t0, 7
  csrw scounteren, t0
  ENTER_MODE(0)
  EXPECT_NO_TRAP(134, rdtime a0)
  EXPECT_ILLEGAL(135, rdcycle a0)
  EXPECT_ILLEGAL(136, rdinstret a0)
  BACK_TO_M
  csrw mcounteren, x0
  csrw scounteren, x0

  /* ---- misa ---- */
  TEST(140)
  csrr a0, misa
  srli a1, a0, 62
  CHECK(a1, 2)                         /* MXL = 2: RV64 */
  TEST(141)
  /* A(0) C(2) D(3) F(5) I(8) M(12) S(18) U(20) */
  li t0, 0x14112d
  and a1, a0, t0
  CHECK(a1, 0x14112d)
  TEST(142)
  andi a1, a0, (1 << 4)                /* E is clear */
  CHECK(a1, 0)

  /* ---- mstatus / sstatus ---- */
  csrr s5, mstatus                     /* restored at the end of the section */
  TEST(150)
  srli a0, s5, 32
  andi a0, a0, 0xf
  CHECK(a0, 0xa)                       /* SXL = 2, UXL = 2 */
  TEST(151)
  li t0, -1
  csrw mstatus, t0
  csrr a0, mstatus
  csrw mstatus, s5                     /* undo MPRV, TVM, ... right away */
  srli a1, a0, 11
  andi a1, a1, 3
  CHECK(a1, 3)                         /* MPP reads back M */
  TEST(152)
  srli a1, a0, 34
  andi a1, a1, 3
  CHECK(a1, 2)                         /* SXL read-only 2 */
  TEST(153)
  srli a1, a0, 63
  CHECK(a1, 1)                         /* SD: FS = Dirty */
  TEST(154)
  li t0, MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP | MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR
  and a1, a0, t0
  CHECK_EQ(a1, t0)                     /* all these fields are writable */
  TEST(155)
  /* UBE, XS, SBE (36), MBE (37) read 0 (little-endian only, no extra state); WPRI bits 0, 2, 4 and 23..31 read 0. */
  li t0, MSTATUS_UBE | MSTATUS_XS | (3 << 36) | 0x15 | 0xff800000
  and a1, a0, t0
  CHECK(a1, 0)
  TEST(156)
  li t0, (1 << 11)                     /* MPP = S */
  li t1, MSTATUS_MPP
  csrc mstatus, t1
  csrs mstatus, t0
  csrr a0, mstatus
  and a0, a0, t1
  CHECK(a0, (1 << 11))
  TEST(157)
  csrc mstatus, t1                     /* MPP = U */
  csrr a0, mstatus
  and a0, a0, t1
  CHECK(a0, 0)
  TEST(158)
  csrw mstatus, x0
  csrr a0, mstatus
  srli a1, a0, 32
  andi a1, a1, 0xf
  CHECK(a1, 0xa)                       /* SXL/UXL unchanged by writing 0 */
  TEST(159)
  li t0, 0xffffffff
  and a1, a0, t0
  CHECK(a1, 0)
  TEST(160)
  srli a1, a0, 63
  CHECK(a1, 0)                         /* SD clear with FS = Off */
  /* sstatus: a restricted view of mstatus. */
  TEST(161)
  li t0, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_TW
  csrw mstatus, t0
  li t1, -1
  csrw sstatus, t1
  csrr a0, sstatus
  li t0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_SD
  and a1, a0, t0
  CHECK_EQ(a1, t0)
  TEST(162)
  /* M-only fields are not visible in sstatus. */
  li t0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR | (3 << 34) | (3 << 36)
  and a1, a0, t0
  CHECK(a1, 0)
  TEST(163)
  csrr a0, mstatus
  li t0, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_TW | MSTATUS_MPRV | MSTATUS_TVM | MSTATUS_TSR
  and a1, a0, t0
  li t2, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_TW
  CHECK_EQ(a1, t2)                     /* M-only fields unchanged by the sstatus write */
  TEST(164)
  li t0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR
  and a1, a0, t0
  CHECK_EQ(a1, t0)                     /* S fields written through to mstatus */
  TEST(165)
  csrw sstatus, x0
  csrr a0, mstatus
  li t0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_FS
  and a1, a0, t0
  CHECK(a1, 0)
  TEST(166)
  li t0, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_TW
  and a1, a0, t0
  CHECK_EQ(a1, t0)
  csrw mstatus, s5

  /* ---- fcsr, frm, fflags ---- */
  TEST(170)
  li t0, -1
  csrw fcsr, t0
  csrr a0, fcsr
  CHECK(a0, 0xff)
  TEST(171)
  csrr a0, frm
  CHECK(a0, 7)
  TEST(172)
  csrr a0, fflags
  CHECK(a0, 0x1f)
  TEST(173)
  csrwi frm, 2
  csrr a0, fcsr
  CHECK(a0, 0x5f)
  TEST(174)
  csrci fflags, 0x15
  csrr a0, fcsr
  CHECK(a0, 0x4a)
  TEST(175)
  li t0, 0x1e3
  csrw fflags, t0
  csrr a0, fcsr
  CHECK(a0, 0x43)
  TEST(176)
  li t0, 0x125
  csrrw a1, fcsr, t0
  CHECK(a1, 0x43)
  TEST(177)
  csrr a0, frm
  CHECK(a0, 1)
  TEST(178)
  csrr a0, fflags
  CHECK(a0, 0x05)
  csrw fcsr, x0

  /* ---- mstatus.FS ---- */
  li t0, MSTATUS_FS
  csrc mstatus, t0                     /* FS = Off */
  li s7, 0
  EXPECT_ILLEGAL(180, fadd.d ft0, ft1, ft2)
  TEST(181); CHECK(s10, 0x0220f053)    /* fadd.d ft0, ft1, ft2, rm = dyn */
  EXPECT_ILLEGAL(182, fmv.x.d a0, ft0)
  EXPECT_ILLEGAL(183, fmv.d.x ft0, a0)
  la a2, fpdata
  EXPECT_ILLEGAL(184, fld ft0, 0(a2))
  EXPECT_ILLEGAL(185, fsd ft0, 0(a2))
  EXPECT_ILLEGAL(186, flw ft0, 0(a2))
  EXPECT_ILLEGAL(187, c.fld fa0, 0(a2))
  TEST(188); CHECK(s10, 0x2208)        /* the 16-bit instruction */
  EXPECT_ILLEGAL(189, csrr a0, fcsr)
  EXPECT_ILLEGAL(190, csrw fflags, x0)
  EXPECT_ILLEGAL(191, csrr a0, frm)
  EXPECT_ILLEGAL(192, fcvt.d.l ft0, a0)
  TEST(193)
  CHECK(s7, 11)
  TEST(194)
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, 0)                         /* still Off, SD clear */
  /* FS = Initial, then an FP register write makes it Dirty and sets SD. */
  TEST(195)
  li t0, (1 << 13)
  csrs mstatus, t0
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, (1 << 13))
  TEST(196)
  li a0, 0x4000000000000000
  fmv.d.x ft0, a0
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, MSTATUS_FS | MSTATUS_SD)
  /* FS = Clean: SD clear; an FP load makes it Dirty. */
  TEST(197)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, (2 << 13)
  csrs mstatus, t0
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, (2 << 13))
  TEST(198)
  fld ft1, 0(a2)
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, MSTATUS_FS | MSTATUS_SD)
  TEST(199)
  fmv.x.d a0, ft1                      /* the load really happened */
  CHECK(a0, 0x3ff0000000000000)
  /* FS = Clean, an arithmetic op writing an FP register makes it Dirty. */
  TEST(200)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, (2 << 13)
  csrs mstatus, t0
  fadd.d ft2, ft0, ft1
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, MSTATUS_FS | MSTATUS_SD)
  TEST(201)
  fmv.x.d a0, ft2
  CHECK(a0, 0x4008000000000000)        /* 2.0 + 1.0 = 3.0 */
  /* FS = Clean, writing fcsr makes it Dirty. */
  TEST(202)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  li t0, (2 << 13)
  csrs mstatus, t0
  csrwi fflags, 1
  csrr a0, mstatus
  li t0, MSTATUS_FS | MSTATUS_SD
  and a0, a0, t0
  CHECK(a0, MSTATUS_FS | MSTATUS_SD)
  csrw fcsr, x0

  /* Sdtrig: trigger 0 can be selected, and it is either absent (type 0, tinfo
   * 1) or of a type tinfo lists. */
  EXPECT_NO_TRAP(210, csrw tselect, x0; csrr a0, tselect; csrr a1, tdata1; csrr a2, tdata2; csrr a3, tdata3; csrr a4, tinfo)
  TEST(211)
  CHECK(a0, 0)
  TEST(212)
  srli a1, a1, 60                      /* tdata1.type */
  li t0, 1
  sll t0, t0, a1
  and t1, a4, t0                       /* tinfo has a bit for the type */
  beqz t1, fail
  bnez a1, 4f
  CHECK(a4, 1)                         /* no trigger: tinfo is exactly 1 */
4:
  ENTER_MODE(1)
  EXPECT_ILLEGAL(213, csrr a0, tselect)
  EXPECT_ILLEGAL(214, csrr a0, tdata1)
  BACK_TO_M

  mv ra, s11
  ret

  /* ---- trap handler ---- */
  .align 2
trap_handler:
  csrr s8, mcause
  csrr s9, mepc
  csrr s10, mtval
  csrr s6, mstatus
  addi s7, s7, 1
  /* ecall with a7 = 0x4d from S or U: resume in M-mode. */
  li t5, 0x4d
  bne a7, t5, 2f
  li t5, 8
  beq s8, t5, 3f
  li t5, 9
  bne s8, t5, 2f
3: li t5, MSTATUS_MPP
  csrs mstatus, t5
2: /* Skip the trapping instruction (2 or 4 bytes). */
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
  .align 3
fpdata:
  .dword 0x3ff0000000000000            /* 1.0 */
