/* Stores to the reset-vector ROM at 0x1000 raise a store access fault (cause 7,
 * mtval = the address) and leave the ROM unchanged. QEMU silently drops writes
 * to its ROM instead, so this program runs on Turing only. */
#include "test.h"

  .text
  .globl test_main
test_main:
  la t0, handler
  csrw mtvec, t0

  TEST(1)
  li s0, 0x1000
  lw s1, 0(s0)            /* ROM is readable */
  li s2, 0
  sw zero, 0(s0)          /* must trap */
  CHECK(s2, 1)            /* the handler ran once */
  csrr t0, mcause
  CHECK(t0, 7)
  csrr t0, mtval
  CHECK(t0, 0x1000)

  TEST(2)
  lw t1, 0(s0)
  CHECK_EQ(t1, s1)        /* contents unchanged */

  TEST(3)
  li s2, 0
  sb zero, 0x20(s0)       /* byte stores trap too */
  CHECK(s2, 1)
  csrr t0, mcause
  CHECK(t0, 7)
  ret

  /* Count the trap and skip the 4-byte faulting store. */
  .align 2
handler:
  addi s2, s2, 1
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  mret
