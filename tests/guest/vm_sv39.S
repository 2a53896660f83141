/* Sv39 address translation (satp.MODE = 8), run from S-mode, U-mode and from
 * M-mode with MPRV. Covers: 4 KiB pages, 2 MiB megapages, 1 GiB gigapages
 * (including an upper-half, sign-extended virtual address), load/store/fetch
 * page faults with mcause, mepc and mtval, invalid PTEs, read-only pages,
 * non-executable pages, W-without-R and other reserved encodings (non-leaf at
 * level 0, reserved PTE bit 60), misaligned super- and gigapages,
 * non-canonical virtual addresses, the U bit with SUM (and S never executing U
 * pages), U-mode denied non-U pages, MXR on execute-only pages, hardware A/D
 * bit updates (read back from M-mode), sfence.vma after a PTE change, AMOs
 * and LR on read-only and writable pages, and MPRV with MPP = S / U. All traps go to M-mode (see common/vm.h).
 *
 * Virtual layout (root = pt_root):
 *   root[0]   -> l1_low
 *     l1_low[0] -> l0_low (4 KiB pages at VA 0x1000..0xF000, 0x100000)
 *     l1_low[1] -> megapage VA 0x200000 -> PA 0x80200000, RW
 *     l1_low[2] -> misaligned megapage (PA 0x80201000) at VA 0x400000
 *     l1_low[3] -> megapage VA 0x600000 -> PA 0x80200000, RW, A=D=0
 *   root[1]   -> gigapage VA 0x40000000 -> PA 0x80000000, RW
 *   root[2]   -> l1_img -> l0_img: identity map of PA 0x80000000..0x801FFFFF
 *                (RWX; the `ucode` page also has U)
 *   root[4]   -> misaligned gigapage (PA 0x80200000) at VA 0x100000000
 *   root[258] -> gigapage VA 0xFFFFFFC080000000 -> PA 0x80000000, RW
 */
#include "test.h"
#include "vm.h"

#define VAL_A 0x1111222233334444
#define VAL_B 0x5555666677778888
#define VAL_C 0x0123456789abcdef
#define VAL_D 0x000000000000d00d
#define VAL_MEGA 0xfeedfacecafebeef
#define VAL_GIGA 0x0badc0de12345678

/* An access that must succeed / fault (clobbers a0, a1, t0, t1, t6). */
#define LOAD_OK(va, val) CLR_TRAP; li a1, va; ld a0, 0(a1); CHECK_NO_TRAP; CHECK(a0, val)
#define STORE_OK(va, val) CLR_TRAP; li a1, va; li a0, val; sd a0, 0(a1); CHECK_NO_TRAP
#define LOAD_FAULTS(va) CLR_TRAP; li a1, va; ld a0, 0(a1); CHECK_TRAP(CAUSE_LOAD_PF, va)
#define STORE_FAULTS(va) CLR_TRAP; li a1, va; sd a0, 0(a1); CHECK_TRAP(CAUSE_STORE_PF, va)
#define FETCH_FAULTS(va) CLR_TRAP; SET_RECOVER(1f); li a1, va; jalr ra, 0(a1); 1: CHECK_TRAP(CAUSE_FETCH_PF, va); ld t1, TA_EPC(t0); CHECK(t1, va)
/* Flags of PTE table[idx] masked with `mask`, compared with `val`. */
#define CHECK_PTE_FLAGS(table, idx, mask, val) PTE_LOAD(a0, table, idx); andi a0, a0, mask; CHECK(a0, val)

#define RWAD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

  .text
  .globl test_main
test_main:
  call vm_init

  TEST(1)   /* the image (and so every identity-mapped page) lies below 0x80200000 */
  la t0, _end
  li t1, 0x80200000
  bgtu t0, t1, fail

  /* ---- build the page tables and the physical test data (M-mode) ---- */
  la a1, vm_pages_start
  la a0, vm_pages_end
  sub a0, a0, a1
  call vm_zero

  la t0, page_a; li t1, VAL_A; sd t1, 0x10(t0)
  la t0, page_b; li t1, VAL_B; sd t1, 0x10(t0)
  la t0, page_c; li t1, VAL_C; sd t1, 0x20(t0)
  la t0, page_d; li t1, VAL_D; sd t1, 0x8(t0)
  li t0, 0x803FFFF8; li t1, VAL_MEGA; sd t1, 0(t0)
  li t0, 0x83000010; li t1, VAL_GIGA; sd t1, 0(t0)

  /* identity map of the image, 4 KiB pages */
  la t0, l0_img
  li t1, 0x80000000
  li t2, 512
  li t4, 4096
1:
  srli t3, t1, 2
  ori t3, t3, RWAD | PTE_X
  sd t3, 0(t0)
  addi t0, t0, 8
  add t1, t1, t4
  addi t2, t2, -1
  bnez t2, 1b
  /* the ucode page is a user page */
  la t0, ucode
  li t1, 0x80000000
  sub t0, t0, t1
  srli t0, t0, 12
  slli t0, t0, 3
  la t1, l0_img
  add t1, t1, t0
  ld t0, 0(t1)
  ori t0, t0, PTE_U
  sd t0, 0(t1)

  PTE_SYM(pt_root, 0, l1_low, PTE_V)
  PTE_IMM(pt_root, 1, 0x80000000, RWAD)
  PTE_SYM(pt_root, 2, l1_img, PTE_V)
  PTE_IMM(pt_root, 4, 0x80200000, PTE_V | PTE_R | PTE_A)
  PTE_IMM(pt_root, 258, 0x80000000, RWAD)
  PTE_SYM(l1_img, 0, l0_img, PTE_V)
  PTE_SYM(l1_low, 0, l0_low, PTE_V)
  PTE_IMM(l1_low, 1, 0x80200000, RWAD)
  PTE_IMM(l1_low, 2, 0x80201000, PTE_V | PTE_R | PTE_A)
  PTE_IMM(l1_low, 3, 0x80200000, PTE_V | PTE_R | PTE_W)
  PTE_SYM(l0_low, 1, page_a, RWAD)                          /* 0x1000 */
  /* l0_low[2] stays 0: invalid                                  0x2000 */
  PTE_SYM(l0_low, 3, page_b, PTE_V | PTE_R | PTE_A | PTE_D)  /* 0x3000 read-only */
  PTE_SYM(l0_low, 4, xpage, RWAD)                           /* 0x4000 not executable */
  PTE_SYM(l0_low, 5, page_c, RWAD | PTE_U)                  /* 0x5000 user data */
  PTE_SYM(l0_low, 7, page_a, PTE_V | PTE_X | PTE_A)          /* 0x7000 execute-only */
  PTE_SYM(l0_low, 8, page_d, PTE_V | PTE_R | PTE_W)          /* 0x8000 A=D=0 */
  PTE_SYM(l0_low, 9, xpage, PTE_V | PTE_R | PTE_X | PTE_A)   /* 0x9000 S code */
  PTE_SYM(l0_low, 10, page_e, PTE_V | PTE_R | PTE_W | PTE_A) /* 0xA000 A=1 D=0 */
  PTE_SYM(l0_low, 11, page_a, PTE_V | PTE_W | PTE_A | PTE_D) /* 0xB000 W without R */
  PTE_SYM(l0_low, 12, page_a, PTE_V)                        /* 0xC000 non-leaf at level 0 */
  PTE_SYM(l0_low, 13, xpage, PTE_V | PTE_R | PTE_X | PTE_A | PTE_U) /* 0xD000 U code */
  PTE_SYM(l0_low, 14, page_a, RWAD)                         /* 0xE000 + bit 60 below */
  PTE_SYM(l0_low, 15, xpage, PTE_V | PTE_R | PTE_X)          /* 0xF000 code, A=0 */
  PTE_IMM(l0_low, 256, 0x100000, RWAD)                      /* finisher, so `fail` works in S */
  PTE_LOAD(t0, l0_low, 14)
  li t3, 1
  slli t3, t3, 60
  or t0, t0, t3
  sd t0, 0(t1)

  TEST(2)   /* satp accepts Sv39 and reads back */
  la t0, pt_root
  srli t0, t0, 12
  li t1, 8
  slli t1, t1, 60
  or s1, t0, t1
  csrw satp, s1
  sfence.vma
  csrr t0, satp
  CHECK_EQ(t0, s1)

  /* ---------------- S-mode ---------------- */
  call enter_s

  TEST(3)   /* S-mode sees the same satp */
  csrr t0, satp
  CHECK_EQ(t0, s1)
  TEST(4)   /* 4 KiB page load */
  LOAD_OK(0x1010, VAL_A)
  TEST(5)   /* 4 KiB page store (checked physically later) */
  STORE_OK(0x1018, 0x0abcdef012345678)
  TEST(6)   /* invalid PTE: load page fault, mtval = VA, mepc = the load */
  CLR_TRAP
  li a1, 0x2008
.Lc6:
  ld a0, 0(a1)
  CHECK_TRAP(CAUSE_LOAD_PF, 0x2008)
  CHECK_TRAP_EPC(.Lc6)
  CHECK_TRAP_MPP(1)
  TEST(7)   /* invalid PTE: store page fault */
  STORE_FAULTS(0x2010)
  TEST(8)   /* invalid PTE: instruction page fault */
  FETCH_FAULTS(0x2000)
  TEST(9)   /* read-only page: load works */
  LOAD_OK(0x3010, VAL_B)
  TEST(10)  /* read-only page: store page fault */
  li a0, 0x99
  STORE_FAULTS(0x3010)
  TEST(11)  /* ... and memory is unchanged */
  LOAD_OK(0x3010, VAL_B)
  TEST(66)  /* an AMO on the read-only page (just loaded from) faults as a store */
  CLR_TRAP; li a1, 0x3010; li a0, 1; amoadd.d a0, a0, (a1); CHECK_TRAP(CAUSE_STORE_PF, 0x3010)
  TEST(67)  /* ... leaving memory unchanged, and LR reads it */
  CLR_TRAP; li a1, 0x3010; lr.d a0, (a1); CHECK_NO_TRAP; CHECK(a0, VAL_B)
  TEST(68)  /* an AMO on a writable page after a store there: no fault, old value back */
  STORE_OK(0x1030, 40)
  CLR_TRAP; li a1, 0x1030; li a0, 2; amoadd.d a0, a0, (a1); CHECK_NO_TRAP; CHECK(a0, 40)
  LOAD_OK(0x1030, 42)
  TEST(12)  /* non-executable page: instruction page fault, mtval = mepc = target */
  FETCH_FAULTS(0x4000)
  TEST(13)  /* the same code through an executable mapping runs */
  CLR_TRAP
  li a0, 0
  li a1, 0x9000
  jalr ra, 0(a1)
  CHECK_NO_TRAP
  CHECK(a0, 0x5a5)
  TEST(14)  /* U page, SUM=0: S load faults */
  LOAD_FAULTS(0x5020)
  TEST(15)  /* U page, SUM=0: S store faults */
  STORE_FAULTS(0x5028)
  TEST(16)  /* SUM=1 (set through sstatus): S load from a U page works */
  li t0, MSTATUS_SUM
  csrs sstatus, t0
  csrr t0, sstatus
  srli t0, t0, 18
  andi t0, t0, 1
  CHECK(t0, 1)
  LOAD_OK(0x5020, VAL_C)
  TEST(17)  /* SUM=1: S store to a U page works */
  STORE_OK(0x5028, 0x2828)
  LOAD_OK(0x5028, 0x2828)
  TEST(18)  /* SUM=1: S still cannot execute a U page */
  FETCH_FAULTS(0xD000)
  TEST(19)  /* ... nor the identity-mapped U code page */
  CLR_TRAP
  la a1, u_li
  SET_RECOVER(1f)
  jalr ra, 0(a1)
1:
  la t0, trap_area
  ld t1, TA_CAUSE(t0)
  CHECK(t1, CAUSE_FETCH_PF)
  ld t1, TA_TVAL(t0)
  CHECK_EQ(t1, a1)
  li t0, MSTATUS_SUM
  csrc sstatus, t0
  TEST(20)  /* execute-only page, MXR=0: load faults */
  LOAD_FAULTS(0x7010)
  TEST(21)  /* MXR=1: execute-only page is readable */
  li t0, MSTATUS_MXR
  csrs sstatus, t0
  LOAD_OK(0x7010, VAL_A)
  TEST(22)  /* MXR does not make it writable */
  STORE_FAULTS(0x7010)
  li t0, MSTATUS_MXR
  csrc sstatus, t0
  TEST(23)  /* W without R is reserved: load faults */
  LOAD_FAULTS(0xB010)
  TEST(24)  /* ... and store faults */
  STORE_FAULTS(0xB010)
  TEST(25)  /* non-leaf PTE at level 0: fault */
  LOAD_FAULTS(0xC010)
  TEST(26)  /* reserved PTE bit 60 set: fault */
  LOAD_FAULTS(0xE010)
  TEST(27)  /* megapage: last dword */
  LOAD_OK(0x3FFFF8, VAL_MEGA)
  TEST(28)  /* megapage store (checked physically later) */
  STORE_OK(0x200100, 0x2000000000000100)
  TEST(29)  /* misaligned megapage (PPN[0] != 0): load page fault */
  LOAD_FAULTS(0x400120)
  TEST(30)  /* gigapage: offset 0x3000010 */
  LOAD_OK(0x43000010, VAL_GIGA)
  TEST(31)  /* gigapage: a variable of this program */
  CLR_TRAP
  la a1, gig_var
  li t0, 0x80000000 - 0x40000000
  sub a1, a1, t0
  ld a0, 0(a1)
  CHECK_NO_TRAP
  CHECK(a0, 0x6767676767676767)
  TEST(32)  /* misaligned gigapage (PPN[1] != 0): load page fault */
  LOAD_FAULTS(0x100000040)
  TEST(33)  /* upper-half (sign-extended) VA through root[258] */
  CLR_TRAP
  la a1, gig_var
  li t0, 0xFFFFFFC000000000
  add a1, a1, t0
  ld a0, 0(a1)
  CHECK_NO_TRAP
  CHECK(a0, 0x6767676767676767)
  TEST(34)  /* non-canonical VA (bit 38 set, bits 63:39 clear): load page fault */
  LOAD_FAULTS(0x0000004000000000)
  TEST(35)  /* non-canonical VA (bits 63:39 set, bit 38 clear): store page fault */
  STORE_FAULTS(0xFFFFFF8000001000)
  TEST(36)  /* non-canonical VA: instruction page fault */
  FETCH_FAULTS(0x0000004080000000)

  /* A/D bits. */
  TEST(37)  /* a load through an A=0 PTE succeeds */
  LOAD_OK(0x8008, VAL_D)
  ecall
  TEST(38)  /* ... and sets A but not D */
  CHECK_PTE_FLAGS(l0_low, 8, PTE_A | PTE_D, PTE_A)
  call enter_s
  TEST(39)  /* a store through the D=0 PTE succeeds */
  STORE_OK(0x8010, 0x77)
  ecall
  TEST(40)  /* ... and sets D */
  CHECK_PTE_FLAGS(l0_low, 8, PTE_A | PTE_D, PTE_A | PTE_D)
  TEST(41)  /* page_d got the store */
  la t0, page_d
  ld t1, 0x10(t0)
  CHECK(t1, 0x77)
  call enter_s
  TEST(42)  /* store through A=1 D=0 PTE works and sets D */
  STORE_OK(0xA000, 0x42)
  ecall
  CHECK_PTE_FLAGS(l0_low, 10, PTE_A | PTE_D, PTE_A | PTE_D)
  call enter_s
  TEST(43)  /* megapage with A=D=0: load sets A only */
  LOAD_OK(0x7FFFF8, VAL_MEGA)
  ecall
  CHECK_PTE_FLAGS(l1_low, 3, PTE_A | PTE_D, PTE_A)
  call enter_s
  TEST(44)  /* megapage with D=0: store sets D */
  STORE_OK(0x600108, 0x108)
  ecall
  CHECK_PTE_FLAGS(l1_low, 3, PTE_A | PTE_D, PTE_A | PTE_D)
  li t0, 0x80200108
  ld t1, 0(t0)
  CHECK(t1, 0x108)
  call enter_s
  TEST(45)  /* fetch through an A=0 executable page runs and sets A (not D) */
  CLR_TRAP
  li a0, 0
  li a1, 0xF000
  jalr ra, 0(a1)
  CHECK_NO_TRAP
  CHECK(a0, 0x5a5)
  ecall
  CHECK_PTE_FLAGS(l0_low, 15, PTE_A | PTE_D, PTE_A)

  TEST(46)  /* the S-mode stores of checks 5 and 28 reached physical memory */
  la t0, page_a
  ld t1, 0x18(t0)
  CHECK(t1, 0x0abcdef012345678)
  li t0, 0x80200100
  ld t1, 0(t0)
  CHECK(t1, 0x2000000000000100)

  /* sfence.vma: remap VA 0x1000 to page_b. */
  PTE_SYM(l0_low, 1, page_b, RWAD)
  sfence.vma
  call enter_s
  TEST(47)  /* the new mapping is used after sfence.vma */
  LOAD_OK(0x1010, VAL_B)
  ecall
  PTE_SYM(l0_low, 1, page_a, RWAD)
  call enter_s
  TEST(48)  /* S-mode sfence.vma of that one address restores the old mapping */
  li t0, 0x1000
  sfence.vma t0, zero
  LOAD_OK(0x1010, VAL_A)
  ecall

  /* ---------------- U-mode ---------------- */
  TEST(49)  /* U-mode runs code on a U page */
  CLR_TRAP
  li a0, 0
  la a0, u_li
  call run_u
  CHECK_NO_TRAP
  CHECK(a0, 77)
  TEST(50)  /* U-mode loads from a U page (SUM irrelevant) */
  CLR_TRAP
  li a1, 0x5020
  la a0, u_load
  call run_u
  CHECK_NO_TRAP
  CHECK(a0, VAL_C)
  TEST(51)  /* U-mode load from a non-U page faults, MPP = U */
  CLR_TRAP
  li a1, 0x1010
  la a0, u_load
  call run_u
  CHECK_TRAP(CAUSE_LOAD_PF, 0x1010)
  CHECK_TRAP_EPC(u_load)
  CHECK_TRAP_MPP(0)
  TEST(52)  /* U-mode store to a non-U page faults */
  CLR_TRAP
  li a1, 0x1018
  la a0, u_store
  call run_u
  CHECK_TRAP(CAUSE_STORE_PF, 0x1018)
  TEST(53)  /* U-mode fetch from a non-U executable page faults */
  CLR_TRAP
  SET_RECOVER(u_ecall)
  li a1, 0x9000
  la a0, u_jump
  call run_u
  CHECK_TRAP(CAUSE_FETCH_PF, 0x9000)
  TEST(54)  /* U-mode executes a U code page at another VA */
  CLR_TRAP
  li a0, 0
  li a1, 0xD000
  la a0, u_jump
  call run_u
  CHECK_NO_TRAP
  CHECK(a0, 0x5a5)

  /* ---------------- M-mode with MPRV ---------------- */
  TEST(55)  /* MPRV=1, MPP=S: loads are translated */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S | MSTATUS_MPRV
  li a1, 0x1010
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_NO_TRAP
  CHECK(a0, VAL_A)
  TEST(56)  /* MPRV=1, MPP=S: stores are translated */
  li t0, MPP_S | MSTATUS_MPRV
  li a0, 0x3018301830183018
  csrs mstatus, t0
  li a1, 0x1020
  sd a0, 0(a1)
  csrc mstatus, t0
  la t0, page_a
  ld t1, 0x20(t0)
  CHECK(t1, 0x3018301830183018)
  TEST(57)  /* MPRV=1, MPP=S: fault on an invalid PTE (mtval = VA, from M) */
  CLR_TRAP
  li t0, MPP_S | MSTATUS_MPRV
  li a1, 0x2000
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_TRAP(CAUSE_LOAD_PF, 0x2000)
  CHECK_TRAP_MPP(3)
  TEST(58)  /* MPRV=1, MPP=S: store to a read-only page faults */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S | MSTATUS_MPRV
  li a1, 0x3010
  csrs mstatus, t0
  sd a0, 0(a1)
  csrc mstatus, t0
  CHECK_TRAP(CAUSE_STORE_PF, 0x3010)
  TEST(59)  /* MPRV=1, MPP=U: non-U page faults */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MSTATUS_MPRV
  li a1, 0x1010
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_TRAP(CAUSE_LOAD_PF, 0x1010)
  TEST(60)  /* MPRV=1, MPP=U: U page readable */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MSTATUS_MPRV
  li a1, 0x5020
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_NO_TRAP
  CHECK(a0, VAL_C)
  TEST(61)  /* MPRV=1, MPP=S, SUM=0: U page faults */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S | MSTATUS_MPRV
  li a1, 0x5020
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_TRAP(CAUSE_LOAD_PF, 0x5020)
  TEST(62)  /* MPRV=1, MPP=S, SUM=1: U page readable */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S | MSTATUS_MPRV | MSTATUS_SUM
  li a1, 0x5020
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_NO_TRAP
  CHECK(a0, VAL_C)
  TEST(63)  /* MPRV=1, MPP=S, MXR=1: execute-only page readable */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S | MSTATUS_MPRV | MSTATUS_MXR
  li a1, 0x7010
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_NO_TRAP
  CHECK(a0, VAL_A)
  TEST(64)  /* MPRV=0: M-mode accesses are physical even with satp set */
  la a1, page_c
  ld a0, 0x20(a1)
  CHECK(a0, VAL_C)

  TEST(65)  /* satp back to Bare */
  csrw satp, zero
  sfence.vma
  csrr t0, satp
  CHECK(t0, 0)
  j pass

  /* ---- code reached at other virtual addresses ---- */
  .balign 4096
xpage:                 /* mapped at 0x4000 (no X), 0x9000, 0xD000 (U), 0xF000 */
  li a0, 0x5a5
  ret
  .balign 4096
ucode:                 /* the only U page of the image */
u_li:
  li a0, 77
  ecall
u_load:
  ld a0, 0(a1)
  ecall
u_store:
  sd a0, 0(a1)
  ecall
u_jump:
  jalr ra, 0(a1)
u_ecall:
  ecall
  .balign 4096

  .data
  .align 3
gig_var:
  .dword 0x6767676767676767

  .section .bss
  .balign 4096
vm_pages_start:
pt_root: .skip 4096
l1_low:  .skip 4096
l0_low:  .skip 4096
l1_img:  .skip 4096
l0_img:  .skip 4096
page_a:  .skip 4096
page_b:  .skip 4096
page_c:  .skip 4096
page_d:  .skip 4096
page_e:  .skip 4096
vm_pages_end:
