/* Start-up code for the benchmark workloads as x86-64 Linux programs with no
 * C library: align the stack, call main(), exit(2) with its return value. */
  .text
  .globl _start
_start:
  and $-16, %rsp
  call main
  mov %eax, %edi
  mov $60, %eax
  syscall
  hlt
  .section .note.GNU-stack, "", @progbits
