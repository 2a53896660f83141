/* Macros for guest test programs. A test is a sequence of numbered checks; the
 * number of the check in progress lives in gp, so a failure reports which check
 * failed through the finisher's exit code. */
#ifndef TURING_GUEST_TEST_H
#define TURING_GUEST_TEST_H

#define FINISHER_BASE 0x100000
#define FINISHER_PASS 0x5555
#define FINISHER_FAIL 0x3333

#define UART_BASE 0x10000000
#define CLINT_BASE 0x2000000
#define CLINT_MSIP (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME (CLINT_BASE + 0xbff8)

/* Start a check: every check has its own number (1..65535). */
#define TEST(n) li gp, n

/* Fail unless register `reg` equals the 64-bit constant `val` (clobbers t6). */
#define CHECK(reg, val) li t6, val; bne reg, t6, fail

/* Fail unless two registers are equal. */
#define CHECK_EQ(a, b) bne a, b, fail

/* End the program with success. */
#define PASS j pass

/* Every program provides `test_main`, entered in M-mode with sp set, FS=Initial,
 * mtvec pointing at `unexpected_trap`. It returns (ret) or jumps to pass to succeed. */

#endif
