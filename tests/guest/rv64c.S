/* RV64C compressed instructions, written with explicit c.* mnemonics so each one
 * is a 16-bit encoding: c.li, c.lui, c.addi, c.addiw, c.addi16sp, c.addi4spn,
 * c.slli, c.srli, c.srai, c.andi, c.mv, c.add, c.sub, c.xor, c.or, c.and, c.subw,
 * c.addw, c.lw, c.ld, c.sw, c.sd, c.lwsp, c.ldsp, c.swsp, c.sdsp, c.fld, c.fsd,
 * c.fldsp, c.fsdsp, c.j, c.jr, c.jalr (link = pc + 2), c.beqz, c.bnez, c.nop; and
 * that 4-byte instructions at 2-byte-aligned addresses work, as jump targets, as
 * targets of jalr, and when straddling a 4 KiB page boundary.
 * (c.ebreak is covered in traps.S; c.jal does not exist on RV64.) */
#include "test.h"

  .text
  .globl test_main
test_main:
  mv s11, sp                 /* keep the real stack pointer */
  mv s10, ra

  /* ---- c.li / c.lui ---- */
  TEST(1); li a0, 99; c.li a0, 0; CHECK(a0, 0)
  TEST(2); c.li a0, 31; CHECK(a0, 31)
  TEST(3); c.li a0, -32; CHECK(a0, -32)
  TEST(4); c.li a5, -1; CHECK(a5, -1)
  TEST(5); c.lui a0, 1; CHECK(a0, 0x1000)
  TEST(6); c.lui a0, 0x1f; CHECK(a0, 0x1f000)
  TEST(7); c.lui a0, 0xfffff; CHECK(a0, 0xfffffffffffff000)
  TEST(8); c.lui a0, 0xfffe0; CHECK(a0, 0xfffffffffffe0000)
  TEST(9); c.lui t0, 0x10; CHECK(t0, 0x10000)

  /* ---- c.addi / c.addiw ---- */
  TEST(10); li a0, 100; c.addi a0, -32; CHECK(a0, 68)
  TEST(11); li a0, 100; c.addi a0, 31; CHECK(a0, 131)
  TEST(12); li a0, -1; c.addi a0, 1; CHECK(a0, 0)
  TEST(13); li a0, 0x7fffffffffffffff; c.addi a0, 1; CHECK(a0, 0x8000000000000000)
  TEST(14); li a0, 0x7fffffff; c.addiw a0, 1; CHECK(a0, 0xffffffff80000000)
  TEST(15); li a0, 0x1234567880000000; c.addiw a0, 0; CHECK(a0, 0xffffffff80000000)
  TEST(16); li a0, 0xffffffff00000000; c.addiw a0, -1; CHECK(a0, 0xffffffffffffffff)
  TEST(17); li a0, 0x100000005; c.addiw a0, -5; CHECK(a0, 0)
  TEST(18); li t2, 0x000000017fffffff; c.addiw t2, 31; CHECK(t2, 0xffffffff8000001e)

  /* ---- sp-relative arithmetic: c.addi16sp / c.addi4spn ---- */
  la sp, cbuf_mid
  TEST(20)
  c.addi16sp sp, -512
  la a0, cbuf_mid
  addi a0, a0, -512
  CHECK_EQ(sp, a0)
  TEST(21)
  c.addi16sp sp, 496
  la a0, cbuf_mid
  addi a0, a0, -16
  CHECK_EQ(sp, a0)
  TEST(22)
  c.addi16sp sp, 16
  la a0, cbuf_mid
  CHECK_EQ(sp, a0)
  TEST(23)
  c.addi4spn a0, sp, 4
  la a1, cbuf_mid
  addi a1, a1, 4
  CHECK_EQ(a0, a1)
  TEST(24)
  c.addi4spn s1, sp, 1020
  la a1, cbuf_mid
  addi a1, a1, 1020
  CHECK_EQ(s1, a1)
  TEST(25)
  c.addi4spn a5, sp, 256
  la a1, cbuf_mid
  addi a1, a1, 256
  CHECK_EQ(a5, a1)

  /* ---- shifts and andi ---- */
  TEST(30); li a0, 1; c.slli a0, 63; CHECK(a0, 0x8000000000000000)
  TEST(31); li a0, 0x123456789; c.slli a0, 32; CHECK(a0, 0x2345678900000000)
  TEST(32); li t3, 3; c.slli t3, 1; CHECK(t3, 6)
  TEST(33); li a0, 0x8000000000000000; c.srli a0, 63; CHECK(a0, 1)
  TEST(34); li a0, 0xf000000000000000; c.srli a0, 32; CHECK(a0, 0xf0000000)
  TEST(35); li a0, 0xffffffffffffffff; c.srli a0, 1; CHECK(a0, 0x7fffffffffffffff)
  TEST(36); li a0, 0x8000000000000000; c.srai a0, 63; CHECK(a0, 0xffffffffffffffff)
  TEST(37); li a0, 0xf000000000000000; c.srai a0, 32; CHECK(a0, 0xfffffffff0000000)
  TEST(38); li a0, 0x7000000000000000; c.srai a0, 60; CHECK(a0, 7)
  TEST(39); li a0, 0x123456789abcdef0; c.andi a0, -1; CHECK(a0, 0x123456789abcdef0)
  TEST(40); li a0, 0x123456789abcdef0; c.andi a0, 31; CHECK(a0, 0x10)
  TEST(41); li a0, 0x123456789abcdeff; c.andi a0, -32; CHECK(a0, 0x123456789abcdee0)
  TEST(42); li a0, 0xff; c.andi a0, 0; CHECK(a0, 0)

  /* ---- register-register ---- */
  TEST(50); li a1, 0x123456789abcdef0; c.mv a0, a1; CHECK(a0, 0x123456789abcdef0)
  TEST(51); li t5, -7; c.mv s2, t5; CHECK(s2, -7)
  TEST(52); li a0, 5; li t4, -3; c.add a0, t4; CHECK(a0, 2)
  TEST(53); li a0, 0x7fffffffffffffff; li a1, 1; c.add a0, a1; CHECK(a0, 0x8000000000000000)
  TEST(54); li a0, 5; li a1, 7; c.sub a0, a1; CHECK(a0, -2)
  TEST(55); li s0, 0; li s1, 0x8000000000000000; c.sub s0, s1; CHECK(s0, 0x8000000000000000)
  TEST(56); li a0, 0xff00ff00ff00ff00; li a1, 0x0ff00ff00ff00ff0; c.xor a0, a1; CHECK(a0, 0xf0f0f0f0f0f0f0f0)
  TEST(57); li a0, 0xff00ff00ff00ff00; li a1, 0x0ff00ff00ff00ff0; c.or a0, a1; CHECK(a0, 0xfff0fff0fff0fff0)
  TEST(58); li a0, 0xff00ff00ff00ff00; li a1, 0x0ff00ff00ff00ff0; c.and a0, a1; CHECK(a0, 0x0f000f000f000f00)
  TEST(59); li a0, 0x7fffffff; li a1, 1; c.addw a0, a1; CHECK(a0, 0xffffffff80000000)
  TEST(60); li a0, 0x1234567800000001; li a1, 0x8765432100000002; c.addw a0, a1; CHECK(a0, 3)
  TEST(61); li a0, 0; li a1, 1; c.subw a0, a1; CHECK(a0, 0xffffffffffffffff)
  TEST(62); li a0, 0xffffffff80000000; li a1, 1; c.subw a0, a1; CHECK(a0, 0x7fffffff)
  TEST(63); li a2, 0x300000010; li a3, 0x100000001; c.subw a2, a3; CHECK(a2, 15)

  /* ---- loads and stores, register based ---- */
  la s0, cdata
  TEST(70); c.lw a0, 0(s0); CHECK(a0, 0xffffffff89abcdef)
  TEST(71); c.lw a1, 4(s0); CHECK(a1, 0x01234567)
  TEST(72); c.ld a2, 0(s0); CHECK(a2, 0x0123456789abcdef)
  TEST(73); c.ld a3, 8(s0); CHECK(a3, 0xfedcba9876543210)
  TEST(74); c.lw a4, 12(s0); CHECK(a4, 0xfffffffffedcba98)
  la s1, cstore
  TEST(75)
  li a0, 0x1111111111111111
  c.sd a0, 0(s1)
  c.sd a0, 8(s1)
  li a1, 0xaaaaaaaa22222222
  c.sw a1, 4(s1)
  ld t0, 0(s1); CHECK(t0, 0x2222222211111111)
  TEST(76)
  c.sw a1, 8(s1)
  ld t0, 8(s1); CHECK(t0, 0x1111111122222222)
  TEST(77)
  li a2, 0x0123456789abcdef
  c.sd a2, 248(s1)
  ld t0, 248(s1); CHECK(t0, 0x0123456789abcdef)
  TEST(78)
  c.lw a5, 124(s1)
  sw a2, 124(s1)
  c.lw a5, 124(s1); CHECK(a5, 0xffffffff89abcdef)
  TEST(79)
  c.ld s0, 248(s1); CHECK(s0, 0x0123456789abcdef)

  /* ---- loads and stores, sp based (sp = cbuf_mid) ---- */
  la s0, cdata
  TEST(80)
  ld t0, 0(s0)
  sd t0, 0(sp)
  ld t0, 8(s0)
  sd t0, 8(sp)
  c.lwsp a0, 0(sp); CHECK(a0, 0xffffffff89abcdef)
  TEST(81); c.lwsp t1, 4(sp); CHECK(t1, 0x01234567)
  TEST(82); c.ldsp s3, 8(sp); CHECK(s3, 0xfedcba9876543210)
  TEST(83); c.ldsp ra, 0(sp); CHECK(ra, 0x0123456789abcdef)
  TEST(84)
  li t0, 0x5555666677778888
  c.sdsp t0, 504(sp)
  ld a0, 504(sp); CHECK(a0, 0x5555666677778888)
  TEST(85)
  c.ldsp a1, 504(sp); CHECK(a1, 0x5555666677778888)
  TEST(86)
  li t0, 0x99999999eeeeeeee
  c.swsp t0, 252(sp)
  sw x0, 248(sp)
  ld a0, 248(sp); CHECK(a0, 0xeeeeeeee00000000)
  TEST(87)
  c.lwsp a2, 252(sp); CHECK(a2, 0xffffffffeeeeeeee)

  /* ---- floating-point loads and stores ---- */
  TEST(90)
  c.fld fa0, 8(s0)
  fmv.x.d a0, fa0
  CHECK(a0, 0xfedcba9876543210)
  TEST(91)
  la s1, cstore
  c.fsd fa0, 16(s1)
  ld a0, 16(s1); CHECK(a0, 0xfedcba9876543210)
  TEST(92)
  c.fld fs1, 0(s0)
  c.fsd fs1, 248(s1)
  ld a0, 248(s1); CHECK(a0, 0x0123456789abcdef)
  TEST(93)
  li t0, 0x400921fb54442d18    /* pi */
  sd t0, 496(sp)
  c.fldsp ft3, 496(sp)
  fmv.x.d a0, ft3
  CHECK(a0, 0x400921fb54442d18)
  TEST(94)
  c.fsdsp ft3, 16(sp)
  ld a0, 16(sp); CHECK(a0, 0x400921fb54442d18)
  TEST(95)
  c.fsdsp fa0, 0(sp)
  c.fldsp fa5, 0(sp)
  fmv.x.d a0, fa5
  CHECK(a0, 0xfedcba9876543210)

  /* ---- control transfer ---- */
  TEST(100)
  c.j 1f
  j fail
1:
  TEST(101)
  c.j 3f
2: c.j 4f
3: c.j 2b
  j fail
4:
  TEST(102)
  li a0, 0
  c.beqz a0, 1f
  j fail
1:
  TEST(103)
  li a0, 1
  c.beqz a0, fail
  TEST(104)
  li s0, 0x100000000          /* only the low bits are zero */
  c.beqz s0, fail
  c.bnez s0, 1f
  j fail
1:
  TEST(105)
  li a5, 0
  c.bnez a5, fail
  TEST(106)
  li a0, 4
  li a1, 0
1: c.addi a1, 1
  c.addi a0, -1
  c.bnez a0, 1b
  CHECK(a1, 4)
  TEST(107)
  la t0, 1f
  c.jr t0
  j fail
1:
  /* c.jalr links to the address of the c.jalr plus 2. */
  TEST(108)
  la t0, 2f
1: c.jalr t0
  j fail
2: la a1, 1b
  addi a1, a1, 2
  CHECK_EQ(ra, a1)
  /* c.jalr with rs1 = ra: target uses the old ra. */
  TEST(109)
  la ra, 2f
1: c.jalr ra
  j fail
2: la a1, 1b
  addi a1, a1, 2
  CHECK_EQ(ra, a1)
  /* c.jr clears nothing special, but the target may be 2-byte aligned. */
  TEST(110)
  la t0, 3f
  c.jr t0
  j fail
  .balign 4
  c.nop
3: c.nop                      /* at an address = 2 mod 4 */
  la t1, 3b
  andi t1, t1, 3
  CHECK(t1, 2)
  TEST(111)
  li a0, 3
  c.nop
  c.addi a0, 0                /* hint, no effect */
  CHECK(a0, 3)

  /* ---- 4-byte instructions at 2-byte-aligned addresses ---- */
  TEST(120)
  li a0, 0
  .balign 4
  c.nop
  .option push
  .option norvc
  addi a0, a0, 1000           /* 4-byte, at 2 mod 4 */
  addi a0, a0, 1000           /* 4-byte, at 2 mod 4 */
  .option pop
  CHECK(a0, 2000)
  /* jal to a 4-byte instruction at 2 mod 4, which links to a 2 mod 4 address. */
  TEST(121)
  li a0, 0
  .balign 4
  c.nop
  .option push
  .option norvc
1: jal a1, 2f                 /* at 2 mod 4 */
  j fail
  .option pop
  .balign 4
  c.nop
  .option push
  .option norvc
2: addi a0, a0, 7             /* at 2 mod 4 */
  .option pop
  CHECK(a0, 7)
  la a2, 1b
  addi a2, a2, 4
  CHECK_EQ(a1, a2)
  andi a2, a2, 3
  CHECK(a2, 2)
  /* jalr to a 2 mod 4 target. */
  TEST(122)
  la t0, 2f
  jalr t0
  j fail
  .balign 4
  c.nop
  .option push
  .option norvc
2: lui a0, 0x12345
  addi a0, a0, 0x678
  .option pop
  CHECK(a0, 0x12345678)
  /* A 4-byte instruction whose halves are in different 4 KiB pages. */
  TEST(123)
  li a0, 0
  la t0, straddle
  jr t0
  .balign 4096
  .skip 4094
straddle:
  .option push
  .option norvc
  addi a0, a0, 123
  .option pop
  CHECK(a0, 123)
  la t0, straddle
  li t1, 0xfff
  and t0, t0, t1
  CHECK(t0, 0xffe)

  mv sp, s11
  mv ra, s10
  ret

  .data
  .align 4
cdata:
  .dword 0x0123456789abcdef
  .dword 0xfedcba9876543210
  .align 4
cstore:
  .skip 512
  .align 4
cbuf:
  .skip 1024
cbuf_mid:
  .skip 1024
