/*
 * Turing SBI: reset entry, M-mode trap entry and the switch to S-mode.
 *
 * Every hart enters _start in M-mode with a0 = hart id, a1 = FDT and
 * a2 = struct fw_dynamic_info. Each gets a 4 KiB stack carved downwards from
 * __stack_end; harts with ids >= MAX_HARTS park for good.
 *
 * mscratch is 0 while a hart runs in M-mode and holds the top of its M-mode
 * stack while it runs in S/U-mode, so the trap entry can tell where it came
 * from and always has a stack.
 */
#define MAX_HARTS 8
#define STACK_SHIFT 12
#define FRAME 272 /* x1-x31 (slot 0 unused), mepc, mstatus */

    .section .text.entry, "ax"
    .globl _start
_start:
    csrw    mie, zero
    csrci   mstatus, 0x8            /* mstatus.MIE = 0 */
    csrw    mscratch, zero
    csrr    t0, mhartid
    li      t1, MAX_HARTS
    bgeu    t0, t1, .Lpark
    la      sp, __stack_end
    slli    t1, t0, STACK_SHIFT
    sub     sp, sp, t1
    la      t1, trap_entry
    csrw    mtvec, t1
    mv      a0, t0
    /* a1 (FDT) and a2 (fw_dynamic_info) pass through. */
    call    sbi_main
.Lpark:
    wfi
    j       .Lpark

    .text
    .balign 4
    .globl trap_entry
trap_entry:
    csrrw   sp, mscratch, sp
    beqz    sp, .Lfrom_m
    /* From S/U-mode: sp = top of this hart's stack, mscratch = their sp. */
    addi    sp, sp, -FRAME
    sd      t0, 5*8(sp)
    csrr    t0, mscratch
    sd      t0, 2*8(sp)
    csrw    mscratch, zero
    j       .Lsave
.Lfrom_m:
    /* From M-mode (probe or fatal): back to the current stack. */
    csrrw   sp, mscratch, sp
    addi    sp, sp, -FRAME
    sd      t0, 5*8(sp)
    addi    t0, sp, FRAME
    sd      t0, 2*8(sp)
.Lsave:
    sd      x1, 1*8(sp)
    sd      x3, 3*8(sp)
    sd      x4, 4*8(sp)
    sd      x6, 6*8(sp)
    sd      x7, 7*8(sp)
    sd      x8, 8*8(sp)
    sd      x9, 9*8(sp)
    sd      x10, 10*8(sp)
    sd      x11, 11*8(sp)
    sd      x12, 12*8(sp)
    sd      x13, 13*8(sp)
    sd      x14, 14*8(sp)
    sd      x15, 15*8(sp)
    sd      x16, 16*8(sp)
    sd      x17, 17*8(sp)
    sd      x18, 18*8(sp)
    sd      x19, 19*8(sp)
    sd      x20, 20*8(sp)
    sd      x21, 21*8(sp)
    sd      x22, 22*8(sp)
    sd      x23, 23*8(sp)
    sd      x24, 24*8(sp)
    sd      x25, 25*8(sp)
    sd      x26, 26*8(sp)
    sd      x27, 27*8(sp)
    sd      x28, 28*8(sp)
    sd      x29, 29*8(sp)
    sd      x30, 30*8(sp)
    sd      x31, 31*8(sp)
    csrr    t0, mepc
    sd      t0, 32*8(sp)
    csrr    t0, mstatus
    sd      t0, 33*8(sp)
    mv      a0, sp
    call    sbi_trap
    /*
     * mepc and mstatus.MPP/MPIE come from the frame, so a nested trap taken
     * by the handler (a guarded access) cannot change where this one returns.
     */
    ld      t0, 32*8(sp)
    csrw    mepc, t0
    li      t1, (3 << 11) | (1 << 7)
    csrc    mstatus, t1
    ld      t0, 33*8(sp)
    and     t0, t0, t1
    csrs    mstatus, t0
    /* Returning below M-mode: the whole stack is free again. */
    srli    t0, t0, 11
    li      t1, 3
    beq     t0, t1, 1f
    addi    t0, sp, FRAME
    csrw    mscratch, t0
1:
    ld      x1, 1*8(sp)
    ld      x3, 3*8(sp)
    ld      x4, 4*8(sp)
    ld      x5, 5*8(sp)
    ld      x6, 6*8(sp)
    ld      x7, 7*8(sp)
    ld      x8, 8*8(sp)
    ld      x9, 9*8(sp)
    ld      x10, 10*8(sp)
    ld      x11, 11*8(sp)
    ld      x12, 12*8(sp)
    ld      x13, 13*8(sp)
    ld      x14, 14*8(sp)
    ld      x15, 15*8(sp)
    ld      x16, 16*8(sp)
    ld      x17, 17*8(sp)
    ld      x18, 18*8(sp)
    ld      x19, 19*8(sp)
    ld      x20, 20*8(sp)
    ld      x21, 21*8(sp)
    ld      x22, 22*8(sp)
    ld      x23, 23*8(sp)
    ld      x24, 24*8(sp)
    ld      x25, 25*8(sp)
    ld      x26, 26*8(sp)
    ld      x27, 27*8(sp)
    ld      x28, 28*8(sp)
    ld      x29, 29*8(sp)
    ld      x30, 30*8(sp)
    ld      x31, 31*8(sp)
    ld      sp, 2*8(sp)
    mret

/*
 * void enter_lower(hartid, arg, addr, mpp): leave M-mode for good (until the
 * next trap) at addr in the mode mpp (mstatus.MPP bits) with a0 = hartid,
 * a1 = arg, satp = 0, sstatus.SIE = 0 and only mie.MSIE enabled.
 */
    .globl enter_lower
enter_lower:
    la      t0, __stack_end
    slli    t1, a0, STACK_SHIFT
    sub     t0, t0, t1
    csrw    mscratch, t0
    csrw    mepc, a2
    li      t0, (3 << 11) | (1 << 17) | (1 << 8) | (1 << 7) | (1 << 5) | (1 << 3) | (1 << 1)
    csrc    mstatus, t0             /* MPP, MPRV, SPP, MPIE, SPIE, MIE, SIE */
    csrs    mstatus, a3
    li      t0, 1 << 3
    csrw    mie, t0                 /* MSIE only */
    csrw    satp, zero
    sfence.vma
    fence.i
    li      ra, 0
    li      sp, 0
    li      gp, 0
    li      tp, 0
    li      t0, 0
    li      t1, 0
    li      t2, 0
    li      s0, 0
    li      s1, 0
    li      a2, 0
    li      a3, 0
    li      a4, 0
    li      a5, 0
    li      a6, 0
    li      a7, 0
    li      s2, 0
    li      s3, 0
    li      s4, 0
    li      s5, 0
    li      s6, 0
    li      s7, 0
    li      s8, 0
    li      s9, 0
    li      s10, 0
    li      s11, 0
    li      t3, 0
    li      t4, 0
    li      t5, 0
    li      t6, 0
    mret

/* void zero_range(start, end): 8-byte aligned bounds. */
    .globl zero_range
zero_range:
    bgeu    a0, a1, 2f
1:
    sd      zero, 0(a0)
    addi    a0, a0, 8
    bltu    a0, a1, 1b
2:
    ret

/*
 * Byte accesses to memory named by S-mode (DBCN). An access fault on the
 * marked instruction resumes at the fault label (see sbi_trap), which
 * returns -1.
 * int guarded_load_byte(const void *p): the byte, or -1.
 * int guarded_store_byte(void *p, int byte): 0, or -1.
 */
    .globl guarded_load_byte, guarded_load_insn, guarded_store_byte, guarded_store_insn
    .globl guarded_fault
guarded_load_byte:
    mv      a1, a0
guarded_load_insn:
    lbu     a0, 0(a1)
    ret
guarded_store_byte:
guarded_store_insn:
    sb      a1, 0(a0)
    li      a0, 0
    ret
guarded_fault:
    li      a0, -1
    ret
