/* Shared support for the virtual-memory guest tests (vm_sv39.S, vm_sv48.S,
 * vm_sv57.S). Include it once, after test.h, from a file assembled with
 * `.option norvc` semantics (it sets norvc itself), because the trap handler
 * resumes after a faulting load/store by adding 4 to mepc.
 *
 * Trap model: every trap goes to M-mode (no delegation) and lands in `vm_trap`.
 *  - ecall from U/S/M (cause 8/9/11): return to M-mode. If `run_u`/`run_s`
 *    saved a resume address, continue there, else continue after the ecall.
 *  - page faults (12/13/15): record mcause, mepc, mtval and mstatus in
 *    `trap_area`, then resume at the recovery address if one was set with
 *    SET_RECOVER (the address is consumed), else at mepc + 4 (same mode).
 *    An instruction page fault without a recovery address fails the test.
 *  - any other trap fails the test with the current check number.
 * vm_init also opens PMP entry 0 over all memory for S and U.
 *
 * trap_area layout (dwords): 0 cause (-1 = no trap since CLR_TRAP), 8 epc,
 * 16 tval, 24 mstatus at trap, 32 recovery address, 40 resume address,
 * 48/56 scratch for t1/t2, 64 trap count.
 */
#ifndef TURING_GUEST_VM_H
#define TURING_GUEST_VM_H

  .option norvc

#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_G 0x20
#define PTE_A 0x40
#define PTE_D 0x80

#define MSTATUS_SUM (1 << 18)
#define MSTATUS_MXR (1 << 19)
#define MSTATUS_MPRV (1 << 17)
#define MSTATUS_MPP (3 << 11)
#define MPP_S (1 << 11)
#define MPP_M (3 << 11)

#define CAUSE_FETCH_PF 12
#define CAUSE_LOAD_PF 13
#define CAUSE_STORE_PF 15

#define TA_CAUSE 0
#define TA_EPC 8
#define TA_TVAL 16
#define TA_STATUS 24
#define TA_RECOVER 32
#define TA_RESUME 40
#define TA_COUNT 64

/* Forget the last trap (cause := -1). Clobbers t0, t1. */
#define CLR_TRAP la t0, trap_area; li t1, -1; sd t1, TA_CAUSE(t0); sd zero, TA_TVAL(t0); sd zero, TA_EPC(t0)
/* The next fault resumes at `lbl` instead of mepc + 4. Clobbers t0, t1. */
#define SET_RECOVER(lbl) la t0, trap_area; la t1, lbl; sd t1, TA_RECOVER(t0)
/* Fail unless the last trap had this mcause and mtval. Clobbers t0, t1, t6. */
#define CHECK_TRAP(cause, tval) la t0, trap_area; ld t1, TA_CAUSE(t0); CHECK(t1, cause); ld t1, TA_TVAL(t0); CHECK(t1, tval)
/* Fail unless the last trap's mepc was the address of label `lbl`. */
#define CHECK_TRAP_EPC(lbl) la t0, trap_area; ld t1, TA_EPC(t0); la t0, lbl; CHECK_EQ(t1, t0)
/* Fail unless the privilege mode the last trap came from (mstatus.MPP) is `mpp` (0..3). */
#define CHECK_TRAP_MPP(mpp) la t0, trap_area; ld t1, TA_STATUS(t0); srli t1, t1, 11; andi t1, t1, 3; CHECK(t1, mpp)
/* Fail if anything trapped since CLR_TRAP. */
#define CHECK_NO_TRAP la t0, trap_area; ld t1, TA_CAUSE(t0); CHECK(t1, -1)

/* Store a PTE: table[idx] = (pa >> 2) | flags, pa a constant. Clobbers t0-t2. */
#define PTE_IMM(table, idx, pa, flags) li t0, pa; srli t0, t0, 2; ori t0, t0, flags; la t1, table; li t2, (idx) * 8; add t1, t1, t2; sd t0, 0(t1)
/* The same with pa the address of a symbol (a page or a next-level table). */
#define PTE_SYM(table, idx, sym, flags) la t0, sym; srli t0, t0, 2; ori t0, t0, flags; la t1, table; li t2, (idx) * 8; add t1, t1, t2; sd t0, 0(t1)
/* Load table[idx] into reg. Clobbers t1, t2. */
#define PTE_LOAD(reg, table, idx) la t1, table; li t2, (idx) * 8; add t1, t1, t2; ld reg, 0(t1)

  .text
  .align 2
  .globl vm_trap
vm_trap:
  csrw mscratch, t0
  la t0, trap_area
  sd t1, 48(t0)
  sd t2, 56(t0)
  csrr t1, mcause
  li t2, 8
  beq t1, t2, .Lvm_ecall
  li t2, 9
  beq t1, t2, .Lvm_ecall
  li t2, 11
  beq t1, t2, .Lvm_ecall
  li t2, CAUSE_FETCH_PF
  beq t1, t2, .Lvm_fault
  li t2, CAUSE_LOAD_PF
  beq t1, t2, .Lvm_fault
  li t2, CAUSE_STORE_PF
  beq t1, t2, .Lvm_fault
  j fail
.Lvm_fault:
  sd t1, TA_CAUSE(t0)
  csrr t2, mepc
  sd t2, TA_EPC(t0)
  csrr t2, mtval
  sd t2, TA_TVAL(t0)
  csrr t2, mstatus
  sd t2, TA_STATUS(t0)
  ld t2, TA_COUNT(t0)
  addi t2, t2, 1
  sd t2, TA_COUNT(t0)
  ld t2, TA_RECOVER(t0)
  beqz t2, 1f
  sd zero, TA_RECOVER(t0)
  csrw mepc, t2
  j .Lvm_out
1:
  li t2, CAUSE_FETCH_PF
  beq t1, t2, fail
.Lvm_skip:
  csrr t2, mepc
  addi t2, t2, 4
  csrw mepc, t2
  j .Lvm_out
.Lvm_ecall:
  li t2, MSTATUS_MPP
  csrs mstatus, t2
  ld t2, TA_RESUME(t0)
  beqz t2, .Lvm_skip
  sd zero, TA_RESUME(t0)
  csrw mepc, t2
.Lvm_out:
  ld t1, 48(t0)
  ld t2, 56(t0)
  csrr t0, mscratch
  mret

  /* Continue at the return address in S-mode (the caller's code must be
   * mapped for S). An ecall later returns to M-mode after the ecall. */
  .globl enter_s
enter_s:
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MPP_S
  csrs mstatus, t0
  csrw mepc, ra
  mret

  /* Run code at a0 in U-mode; returns (in M-mode) when that code ecalls. */
  .globl run_u
run_u:
  la t0, trap_area
  sd ra, TA_RESUME(t0)
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  csrw mepc, a0
  mret

  /* Install vm_trap as the M-mode trap vector and reset the trap record. */
  .globl vm_init
vm_init:
  /* PMP entry 0 = NAPOT over the whole address space, RWX, so S and U may
   * access memory (QEMU also refuses mret to S/U while no PMP rule is set). */
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  la t0, vm_trap
  csrw mtvec, t0
  la t0, trap_area
  li t1, -1
  sd t1, TA_CAUSE(t0)
  sd zero, TA_RECOVER(t0)
  sd zero, TA_RESUME(t0)
  sd zero, TA_COUNT(t0)
  ret

  /* Zero a0 bytes (a multiple of 8) starting at a1. Clobbers a0, a1. */
  .globl vm_zero
vm_zero:
  beqz a0, 1f
  sd zero, 0(a1)
  addi a1, a1, 8
  addi a0, a0, -8
  j vm_zero
1:
  ret

  .section .bss
  .align 3
  .globl trap_area
trap_area:
  .skip 80
  .text

#endif
