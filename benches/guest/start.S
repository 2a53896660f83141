/* Start-up code for the benchmark guest programs: set up a stack, call
 * main(), and report its return value through the SiFive test finisher at
 * 0x100000 (0 = PASS, anything else = FAIL with that exit code). Any trap
 * fails with exit code 255. Nothing relies on .bss being zeroed. */
  .section .text.init
  .globl _start
_start:
  la sp, bench_stack_top
  la t0, trap
  csrw mtvec, t0
  /* FS = Initial so compiled code may use the FPU. */
  li t0, (1 << 13)
  csrs mstatus, t0
  call main
  li t0, 0x100000
  bnez a0, 1f
  li t1, 0x5555
  sw t1, 0(t0)
2:
  j 2b
1:
  slli t1, a0, 16
  li t2, 0x3333
  or t1, t1, t2
  sw t1, 0(t0)
3:
  j 3b

  .align 2
trap:
  li a0, 255
  li t0, 0x100000
  j 1b

  .section .bss
  .align 4
  .skip 65536
bench_stack_top:
