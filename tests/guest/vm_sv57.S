/* Sv57 address translation (satp.MODE = 10, five levels). Checks first that
 * satp accepts mode 10 (QEMU 7.2's default rv64 CPU does; no extra option is
 * needed), then from S-mode, U-mode and M-mode with MPRV: 4 KiB pages, 2 MiB,
 * 1 GiB, 512 GiB and 256 TiB (petapage) leaves, including the upper,
 * sign-extended half; misaligned giga/tera/petapages; invalid and read-only
 * pages; non-canonical addresses (bits 63:57 not all equal to bit 56) giving
 * page faults with mtval = the address; hardware A/D updates; a bit-48 address
 * that is non-canonical under Sv48 but valid under Sv57. All traps go to
 * M-mode (see common/vm.h).
 *
 * Virtual layout (root = pt_root):
 *   root[0] -> l3_low
 *     l3_low[0] -> l2_low
 *       l2_low[0] -> l1_low
 *         l1_low[0] -> l0_low (4 KiB pages 0x1000..0x8000, 0x100000)
 *         l1_low[1] -> megapage VA 0x200000 -> PA 0x80200000, RW
 *         l1_low[2] -> misaligned megapage (PA 0x80201000) at VA 0x400000
 *       l2_low[1] -> gigapage VA 0x40000000 -> PA 0x80000000, RW
 *       l2_low[2] -> l1_img -> l0_img: identity map of 0x80000000..0x801FFFFF
 *       l2_low[4] -> misaligned gigapage (PA 0x80200000) at VA 0x100000000
 *     l3_low[1] -> terapage VA 0x8000000000 -> PA 0, RW
 *     l3_low[2] -> misaligned terapage (PA 0x80000000) at VA 0x10000000000
 *   root[1]   -> petapage VA 0x1000000000000 -> PA 0, RW
 *   root[2]   -> misaligned petapage (PA 0x80000000) at VA 0x2000000000000
 *   root[3]   -> petapage VA 0x3000000000000 -> PA 0, RW, A=D=0
 *   root[256] -> petapage VA 0xFF00000000000000 -> PA 0, RW
 */
#include "test.h"
#include "vm.h"

#define VAL_A 0x1111222233334444
#define VAL_B 0x5555666677778888
#define VAL_C 0x0123456789abcdef
#define VAL_D 0x000000000000d00d
#define VAL_MEGA 0xfeedfacecafebeef
#define VAL_GIGA 0x0badc0de12345678

#define LOAD_OK(va, val) CLR_TRAP; li a1, va; ld a0, 0(a1); CHECK_NO_TRAP; CHECK(a0, val)
#define STORE_OK(va, val) CLR_TRAP; li a1, va; li a0, val; sd a0, 0(a1); CHECK_NO_TRAP
#define LOAD_FAULTS(va) CLR_TRAP; li a1, va; ld a0, 0(a1); CHECK_TRAP(CAUSE_LOAD_PF, va)
#define STORE_FAULTS(va) CLR_TRAP; li a1, va; sd a0, 0(a1); CHECK_TRAP(CAUSE_STORE_PF, va)
#define FETCH_FAULTS(va) CLR_TRAP; SET_RECOVER(1f); li a1, va; jalr ra, 0(a1); 1: CHECK_TRAP(CAUSE_FETCH_PF, va); ld t1, TA_EPC(t0); CHECK(t1, va)
#define CHECK_PTE_FLAGS(table, idx, mask, val) PTE_LOAD(a0, table, idx); andi a0, a0, mask; CHECK(a0, val)

#define RWAD (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

  .text
  .globl test_main
test_main:
  call vm_init

  TEST(1)   /* the image lies below 0x80200000 */
  la t0, _end
  li t1, 0x80200000
  bgtu t0, t1, fail

  TEST(2)   /* satp accepts mode 10 (Sv57): the write takes effect (unsupported
               modes would leave satp unchanged, i.e. 0 here) */
  csrw satp, zero
  li t0, 10
  slli t0, t0, 60
  csrw satp, t0
  csrr t1, satp
  csrw satp, zero
  CHECK_EQ(t1, t0)

  la a1, vm_pages_start
  la a0, vm_pages_end
  sub a0, a0, a1
  call vm_zero

  la t0, page_a; li t1, VAL_A; sd t1, 0x10(t0)
  la t0, page_b; li t1, VAL_B; sd t1, 0x10(t0)
  la t0, page_d; li t1, VAL_D; sd t1, 0x8(t0)
  li t0, 0x803FFFF8; li t1, VAL_MEGA; sd t1, 0(t0)
  li t0, 0x83000010; li t1, VAL_GIGA; sd t1, 0(t0)

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

  PTE_SYM(pt_root, 0, l3_low, PTE_V)
  PTE_IMM(pt_root, 1, 0, RWAD)
  PTE_IMM(pt_root, 2, 0x80000000, PTE_V | PTE_R | PTE_A)
  PTE_IMM(pt_root, 3, 0, PTE_V | PTE_R | PTE_W)
  PTE_IMM(pt_root, 256, 0, RWAD)
  PTE_SYM(l3_low, 0, l2_low, PTE_V)
  PTE_IMM(l3_low, 1, 0, RWAD)
  PTE_IMM(l3_low, 2, 0x80000000, PTE_V | PTE_R | PTE_A)
  PTE_SYM(l2_low, 0, l1_low, PTE_V)
  PTE_IMM(l2_low, 1, 0x80000000, RWAD)
  PTE_SYM(l2_low, 2, l1_img, PTE_V)
  PTE_IMM(l2_low, 4, 0x80200000, PTE_V | PTE_R | PTE_A)
  PTE_SYM(l1_img, 0, l0_img, PTE_V)
  PTE_SYM(l1_low, 0, l0_low, PTE_V)
  PTE_IMM(l1_low, 1, 0x80200000, RWAD)
  PTE_IMM(l1_low, 2, 0x80201000, PTE_V | PTE_R | PTE_A)
  PTE_SYM(l0_low, 1, page_a, RWAD)                          /* 0x1000 */
  PTE_SYM(l0_low, 3, page_b, PTE_V | PTE_R | PTE_A | PTE_D)  /* 0x3000 read-only */
  PTE_SYM(l0_low, 4, xpage, RWAD)                           /* 0x4000 not executable */
  PTE_SYM(l0_low, 8, page_d, PTE_V | PTE_R | PTE_W)          /* 0x8000 A=D=0 */
  PTE_SYM(l0_low, 9, xpage, PTE_V | PTE_R | PTE_X | PTE_A)   /* 0x9000 S code */
  PTE_IMM(l0_low, 256, 0x100000, RWAD)                      /* finisher */

  TEST(3)   /* satp = Sv57 | root PPN reads back */
  la t0, pt_root
  srli t0, t0, 12
  li t1, 10
  slli t1, t1, 60
  or s1, t0, t1
  csrw satp, s1
  sfence.vma
  csrr t0, satp
  CHECK_EQ(t0, s1)

  call enter_s

  TEST(4)   /* 4 KiB page, five-level walk */
  LOAD_OK(0x1010, VAL_A)
  TEST(5)   /* 4 KiB page store */
  STORE_OK(0x1018, 0x0abcdef012345678)
  TEST(6)   /* invalid PTE: load page fault, mtval = VA, mepc = the load */
  CLR_TRAP
  li a1, 0x2008
.Lc6:
  ld a0, 0(a1)
  CHECK_TRAP(CAUSE_LOAD_PF, 0x2008)
  CHECK_TRAP_EPC(.Lc6)
  CHECK_TRAP_MPP(1)
  TEST(7)   /* read-only page: load works, store faults */
  LOAD_OK(0x3010, VAL_B)
  STORE_FAULTS(0x3010)
  TEST(8)   /* non-executable page: instruction page fault */
  FETCH_FAULTS(0x4000)
  TEST(9)   /* executable mapping runs */
  CLR_TRAP
  li a0, 0
  li a1, 0x9000
  jalr ra, 0(a1)
  CHECK_NO_TRAP
  CHECK(a0, 0x5a5)
  TEST(10)  /* megapage */
  LOAD_OK(0x3FFFF8, VAL_MEGA)
  TEST(11)  /* misaligned megapage faults */
  LOAD_FAULTS(0x400120)
  TEST(12)  /* gigapage */
  LOAD_OK(0x43000010, VAL_GIGA)
  TEST(13)  /* misaligned gigapage faults */
  LOAD_FAULTS(0x100000040)
  TEST(14)  /* terapage */
  LOAD_OK(0x8083000010, VAL_GIGA)
  TEST(15)  /* misaligned terapage faults */
  LOAD_FAULTS(0x10000000040)
  TEST(16)  /* petapage (bit 48 set: non-canonical under Sv48, fine under Sv57) */
  LOAD_OK(0x1000083000010, VAL_GIGA)
  TEST(17)  /* petapage store */
  STORE_OK(0x1000083000018, 0x1818181818181818)
  TEST(18)  /* petapage: a variable of this program */
  CLR_TRAP
  la a1, gig_var
  li t0, 0x1000000000000
  add a1, a1, t0
  ld a0, 0(a1)
  CHECK_NO_TRAP
  CHECK(a0, 0x6767676767676767)
  TEST(19)  /* misaligned petapage (PPN[3] != 0) faults */
  LOAD_FAULTS(0x2000000000040)
  TEST(20)  /* upper half: VA 0xFF00000000000000 + PA through root[256] */
  LOAD_OK(0xFF00000083000010, VAL_GIGA)
  TEST(21)  /* non-canonical: bit 56 set, bits 63:57 clear */
  LOAD_FAULTS(0x0100000000001010)
  TEST(22)  /* non-canonical: bit 57 set */
  STORE_FAULTS(0x0200000000001010)
  TEST(23)  /* non-canonical: bits 63:57 set, bit 56 clear */
  LOAD_FAULTS(0xFE00000000001010)
  TEST(24)  /* non-canonical instruction fetch */
  FETCH_FAULTS(0x8000000080000000)
  TEST(25)  /* canonical under Sv57 but unmapped (root[511]) */
  LOAD_FAULTS(0xFFFF800083000010)

  TEST(26)  /* 4 KiB A=D=0: load sets A only */
  LOAD_OK(0x8008, VAL_D)
  ecall
  CHECK_PTE_FLAGS(l0_low, 8, PTE_A | PTE_D, PTE_A)
  call enter_s
  TEST(27)  /* ... store sets D */
  STORE_OK(0x8010, 0x77)
  ecall
  CHECK_PTE_FLAGS(l0_low, 8, PTE_A | PTE_D, PTE_A | PTE_D)
  call enter_s
  TEST(28)  /* petapage A=D=0: load sets A only */
  LOAD_OK(0x3000083000010, VAL_GIGA)
  ecall
  CHECK_PTE_FLAGS(pt_root, 3, PTE_A | PTE_D, PTE_A)
  call enter_s
  TEST(29)  /* ... store sets D */
  STORE_OK(0x3000083000020, 0x20)
  ecall
  CHECK_PTE_FLAGS(pt_root, 3, PTE_A | PTE_D, PTE_A | PTE_D)
  TEST(30)  /* non-leaf PTEs untouched */
  CHECK_PTE_FLAGS(pt_root, 0, PTE_A | PTE_D, 0)
  CHECK_PTE_FLAGS(l3_low, 0, PTE_A | PTE_D, 0)
  CHECK_PTE_FLAGS(l2_low, 0, PTE_A | PTE_D, 0)
  CHECK_PTE_FLAGS(l1_low, 0, PTE_A | PTE_D, 0)
  TEST(31)  /* stores reached physical memory */
  la t0, page_a
  ld t1, 0x18(t0)
  CHECK(t1, 0x0abcdef012345678)
  la t0, page_d
  ld t1, 0x10(t0)
  CHECK(t1, 0x77)
  li t0, 0x83000018
  ld t1, 0(t0)
  CHECK(t1, 0x1818181818181818)
  ld t1, 8(t0)
  CHECK(t1, 0x20)

  TEST(32)  /* U-mode load from a non-U page faults */
  CLR_TRAP
  li a1, 0x1010
  la a0, u_load
  call run_u
  CHECK_TRAP(CAUSE_LOAD_PF, 0x1010)
  CHECK_TRAP_MPP(0)
  TEST(33)  /* MPRV=1, MPP=S: M-mode load through the petapage */
  CLR_TRAP
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S | MSTATUS_MPRV
  li a1, 0x1000083000010
  csrs mstatus, t0
  ld a0, 0(a1)
  csrc mstatus, t0
  CHECK_NO_TRAP
  CHECK(a0, VAL_GIGA)

  TEST(34)
  csrw satp, zero
  sfence.vma
  csrr t0, satp
  CHECK(t0, 0)
  j pass

  .balign 4096
xpage:
  li a0, 0x5a5
  ret
  .balign 4096
ucode:
u_load:
  ld a0, 0(a1)
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
l3_low:  .skip 4096
l2_low:  .skip 4096
l1_low:  .skip 4096
l0_low:  .skip 4096
l1_img:  .skip 4096
l0_img:  .skip 4096
page_a:  .skip 4096
page_b:  .skip 4096
page_d:  .skip 4096
vm_pages_end:
