/* Start-up code linked into every guest test program. */
#include "test.h"

  .section .text.init
  .globl _start
_start:
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
  .globl pass
pass:
  li t0, FINISHER_BASE
  li t1, FINISHER_PASS
  sw t1, 0(t0)
1: j 1b

  /* Fail with the current check number (gp) as the exit code; check 0 reports 1. */
  .globl fail
fail:
  li t0, FINISHER_BASE
  slli t1, gp, 16
  li t2, FINISHER_FAIL
  or t1, t1, t2
  sw t1, 0(t0)
1: j 1b

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
