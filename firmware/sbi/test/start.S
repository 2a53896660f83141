/*
 * Entry points of the SBI test payload (S-mode, linked at 0x80200000).
 * _start: boot hart, a0 = hart id, a1 = FDT.
 * secondary_entry: harts started through SBI HSM, a0 = hart id, a1 = opaque.
 */
    .section .text.entry, "ax"
    .globl _start
_start:
    la      sp, stacks_end          /* stack of slot 0 */
    call    payload_main
1:  j       1b

    .text
    .globl secondary_entry
    .balign 4
secondary_entry:
    /* sp = stacks_end - 4 KiB * (1 + (hartid & 7)), never slot 0 */
    la      sp, stacks_end
    andi    t0, a0, 7
    addi    t0, t0, 1
    slli    t0, t0, 12
    sub     sp, sp, t0
    call    payload_secondary
2:  j       2b

    .bss
    .balign 16
stacks:
    .space  9 * 4096
    .globl stacks_end
stacks_end:
