/* Start-up code linked into every guest test program. */
#include "test.h"

  .section .text.init
  .globl _start
_start:
  /* Every hart starts here; all but hart 0 go to `test_secondary` with their
   * hart id in a0 and no stack (programs run with one hart unless they say). */
  csrr a0, mhartid
  bnez a0, secondary
  la sp, stack_top
  li gp, 0
  la t0, unexpected_trap
  csrw mtvec, t0
  /* Enable the FPU (FS = Initial) so F and D tests can run. */
  li t0, (1 << 13)
  csrs mstatus, t0
  call test_main
  j pass

  .text
secondary:
  la t0, unexpected_trap
  csrw mtvec, t0
  j test_secondary

  /* Secondary harts sleep unless the program has work for them. */
  .weak test_secondary
test_secondary:
  wfi
  j test_secondary

  .globl pass
pass:
  li t0, FINISHER_BASE
  li t1, FINISHER_PASS
  sw t1, 0(t0)
1: j 1b

  /* Fail with the current check number (gp) as the exit code. Exit codes are
   * 8 bits wide, so a number whose low byte is 0 (check 0, 256, ...) reports
   * 255 instead of a false pass. */
  .globl fail
fail:
  andi t1, gp, 0xff
  bnez t1, 1f
  li t1, 255
1:
  li t0, FINISHER_BASE
  slli t1, t1, 16
  li t2, FINISHER_FAIL
  or t1, t1, t2
  sw t1, 0(t0)
2: j 2b

  /* A trap the program did not expect: fail with exit code 255. */
  .align 2
  .globl unexpected_trap
unexpected_trap:
  li gp, 255
  j fail

  .section .bss
  .align 4
stack_bottom:
  .skip 16384
  .globl stack_top
stack_top:
