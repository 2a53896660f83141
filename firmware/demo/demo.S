/*
 * Turing built-in demo guest.
 *
 * A tiny bare-metal shell that Turing boots when `turing run` is given no
 * program.  It deliberately touches the pieces of the emulated machine a
 * user would want to see working: the UART (polled, both directions), the
 * device tree passed in a1, misa, the CLINT timer and the SiFive test
 * finisher used for poweroff/reboot.  It runs unchanged on
 * `qemu-system-riscv64 -M virt -bios none`, which makes QEMU a reference
 * for Turing's behaviour.
 *
 * Entry contract (same as QEMU's reset vector): M-mode at 0x80000000,
 * a0 = hart id, a1 = address of the flattened device tree (or 0).
 *
 * Rebuild with build.sh; the committed demo.bin must match its output.
 * Comments use C syntax only: this file goes through the C preprocessor,
 * which would take a line-leading '#' for a directive.
 */

#define UART_BASE       0x10000000
#define UART_RBR        0               /* receive buffer (read) */
#define UART_THR        0               /* transmit holding (write) */
#define UART_LSR        5
#define LSR_DR          0x01            /* a received byte is waiting */
#define LSR_THRE        0x20            /* THR can take another byte */
#define LSR_TEMT        0x40            /* everything has left the shifter */

#define TEST_BASE       0x100000        /* SiFive test finisher */
#define TEST_POWEROFF   0x5555
#define TEST_RESET      0x7777

#define CLINT_MTIME     0x200bff8

/* riscv-virt's simple-framebuffer (a8r8g8b8); on QEMU's virt board this is
 * the PCIe window, where the writes are ignored. */
#define FB_BASE         0x50000000
#define FB_WIDTH        640
#define FB_HEIGHT       480
#define FB_BAR_WIDTH    80
#define MTIME_HZ        10000000

#define LINE_MAX        120             /* characters beyond this are dropped */
#define STACK_SIZE      4096
#define CMD_ENTRY_SIZE  24              /* three .dwords, see cmd_table */

#define FDT_MAGIC       0xd00dfeed
#define FDT_BEGIN_NODE  1
#define FDT_END_NODE    2
#define FDT_PROP        3
#define FDT_NOP         4

#define CH_CTRL_C       0x03
#define CH_BS           0x08
#define CH_LF           0x0a
#define CH_CR           0x0d
#define CH_ESC          0x1b
#define CH_SPACE        0x20
#define CH_DEL          0x7f

/* Print a NUL-terminated string from .rodata. */
.macro PUTS label
    la      a0, \label
    call    puts
.endm

/*
 * Device-tree cells are big-endian and the blob's alignment is only
 * guaranteed by convention, so assemble words byte by byte: no reliance
 * on misaligned-access support and no Zbb rev8 needed.
 * rd must differ from base and tmp.
 */
.macro BE32 rd, off, base, tmp
    lbu     \rd, \off(\base)
    lbu     \tmp, \off+1(\base)
    slli    \rd, \rd, 8
    or      \rd, \rd, \tmp
    lbu     \tmp, \off+2(\base)
    slli    \rd, \rd, 8
    or      \rd, \rd, \tmp
    lbu     \tmp, \off+3(\base)
    slli    \rd, \rd, 8
    or      \rd, \rd, \tmp
.endm

/* ------------------------------------------------------------------ */

    .section .text.entry, "ax"
    .globl  _start
_start:
    /*
     * Nothing here uses interrupts; keep them masked so a stray timer or
     * software interrupt can never reach the trap handler.  The handler is
     * installed before anything else so that a fault anywhere (e.g. a bad
     * a1) produces a diagnostic instead of a silent hang.
     */
    csrw    mie, zero
    la      t0, trap_entry
    csrw    mtvec, t0

    /*
     * There is a single stack and a single UART, so only hart 0 runs the
     * shell.  Selecting by id (rather than an atomic lottery on a flag in
     * .data) keeps reboot working even if a reset does not reload the image.
     */
    bnez    a0, park

    la      sp, stack_top

    /* Zero .bss first: it holds the saved boot arguments written below. */
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    la      t0, boot_hartid
    sd      a0, 0(t0)
    la      t0, boot_fdt
    sd      a1, 0(t0)

    call    draw_bars
    PUTS    banner_msg

/*
 * Read-eval-print loop.  It never returns, so it freely keeps state in
 * s0-s2 without saving them.  The trap handler re-enters here too.
 */
repl:
    PUTS    prompt_msg
    la      a0, line_buf
    li      a1, LINE_MAX
    call    readline

    /* Split "  cmd   args" into a NUL-terminated word and its arguments. */
    la      s0, line_buf
    li      t1, CH_SPACE
1:  lbu     t0, 0(s0)
    bne     t0, t1, 2f
    addi    s0, s0, 1
    j       1b
2:  beqz    t0, repl                /* empty or blank line */
    mv      s1, s0
3:  lbu     t0, 0(s1)
    beqz    t0, 5f                  /* no arguments: s1 -> "" */
    beq     t0, t1, 4f
    addi    s1, s1, 1
    j       3b
4:  sb      zero, 0(s1)
    addi    s1, s1, 1
6:  lbu     t0, 0(s1)
    bne     t0, t1, 5f
    addi    s1, s1, 1
    j       6b
5:
    /* s0 = command name, s1 = argument string. */
    la      s2, cmd_table
7:  ld      a0, 0(s2)
    beqz    a0, 8f
    mv      a1, s0
    call    strcmp
    beqz    a0, 9f
    addi    s2, s2, CMD_ENTRY_SIZE
    j       7b
9:  ld      t0, 8(s2)
    mv      a0, s1
    jalr    t0
    j       repl
8:  PUTS    unknown_msg
    mv      a0, s0
    call    puts
    PUTS    unknown_tail
    j       repl

/*
 * Secondary harts, and the end of poweroff/reboot should the finisher be
 * missing.  wfi is only a hint, hence the loop.
 */
park:
    wfi
    j       park

/*
 * Any exception lands here.  Report it and restart the shell on a fresh
 * stack rather than hang, so a misbehaving emulator shows what went wrong.
 * mtvec direct mode needs a 4-byte aligned base.
 */
    .balign 4
trap_entry:
    csrr    t0, mhartid
    bnez    t0, park
    la      sp, stack_top
    PUTS    trap_msg
    csrr    a0, mcause
    call    put_hex
    PUTS    trap_mepc_msg
    csrr    a0, mepc
    call    put_hex
    PUTS    trap_mtval_msg
    csrr    a0, mtval
    call    put_hex
    PUTS    crlf
    j       repl

/* ------------------------------------------------------------------ */
/* Commands: called with a0 = argument string.                         */

cmd_help:
    addi    sp, sp, -16
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    PUTS    help_header
    la      s0, cmd_table
1:  ld      t0, 0(s0)
    beqz    t0, 2f
    ld      a0, 16(s0)
    call    puts
    addi    s0, s0, CMD_ENTRY_SIZE
    j       1b
2:  ld      ra, 0(sp)
    ld      s0, 8(sp)
    addi    sp, sp, 16
    ret

cmd_echo:
    addi    sp, sp, -16
    sd      ra, 0(sp)
    call    puts
    PUTS    crlf
    ld      ra, 0(sp)
    addi    sp, sp, 16
    ret

cmd_poweroff:
    PUTS    poweroff_msg
    call    uart_flush
    li      t0, TEST_BASE
    li      t1, TEST_POWEROFF
    sw      t1, 0(t0)
    j       park

cmd_reboot:
    PUTS    reboot_msg
    call    uart_flush
    li      t0, TEST_BASE
    li      t1, TEST_RESET
    sw      t1, 0(t0)
    j       park

cmd_info:
    addi    sp, sp, -32
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    sd      s1, 16(sp)

    PUTS    info_hart_msg
    la      t0, boot_hartid
    ld      a0, 0(t0)
    call    put_dec
    PUTS    crlf

    /*
     * misa: MXL in the top two bits gives the base width, bits 0-25 are
     * the extension letters.  Print them in canonical ISA-string order
     * (imafdc...) rather than alphabetically.  misa may legally read 0.
     */
    PUTS    info_isa_msg
    csrr    s0, misa
    beqz    s0, 3f
    PUTS    rv_msg
    srli    t0, s0, 62
    li      a0, 16
    sll     a0, a0, t0              /* MXL 1/2/3 -> 32/64/128 */
    call    put_dec
    la      s1, isa_order
1:  lbu     t0, 0(s1)
    beqz    t0, 2f
    addi    t1, t0, -0x61           /* 'a' is bit 0 */
    srl     t1, s0, t1
    andi    t1, t1, 1
    beqz    t1, 4f
    mv      a0, t0
    call    putc
4:  addi    s1, s1, 1
    j       1b
2:  PUTS    misa_open_msg
    mv      a0, s0
    call    put_hex
    PUTS    close_crlf
    j       5f
3:  PUTS    misa_zero_msg
5:
    PUTS    info_mem_msg
    la      t0, boot_fdt
    ld      a0, 0(t0)
    call    fdt_find_memory
    beqz    a1, 3f
    mv      s0, a0
    mv      s1, a1
    li      t0, 0xfffff             /* whole MiB? then say so */
    and     t0, s1, t0
    bnez    t0, 1f
    srli    a0, s1, 20
    call    put_dec
    PUTS    mib_msg
    j       2f
1:  mv      a0, s1
    call    put_dec
    PUTS    bytes_msg
2:  PUTS    at_msg
    mv      a0, s0
    call    put_hex
    PUTS    crlf
    j       4f
3:  PUTS    unknown_value_msg
4:
    /* mtime counts from reset at 10 MHz: seconds . milliseconds */
    PUTS    info_uptime_msg
    li      t0, CLINT_MTIME
    ld      s0, 0(t0)
    li      t1, MTIME_HZ
    divu    a0, s0, t1
    remu    s0, s0, t1
    call    put_dec
    li      a0, 0x2e                /* '.' */
    call    putc
    li      t1, MTIME_HZ / 1000
    divu    a0, s0, t1
    call    put_dec3
    PUTS    seconds_msg

    ld      ra, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    addi    sp, sp, 32
    ret

/* ------------------------------------------------------------------ */
/*
 * fdt_find_memory(a0 = FDT address) -> a0 = base, a1 = size of the first
 * `reg` range of the first /memory node; a1 = 0 when there is no usable
 * device tree.  Only #address-cells = #size-cells = 2 is handled (what
 * riscv-virt uses).  Every read is bounded by the header's totalsize so a
 * corrupt blob ends the walk instead of running off into memory.
 * Leaf function: uses only a- and t-registers.
 */
fdt_find_memory:
    beqz    a0, .Lfdt_fail
    andi    t0, a0, 3               /* the spec demands 8-byte alignment */
    bnez    t0, .Lfdt_fail
    BE32    t0, 0, a0, t6
    li      t1, FDT_MAGIC
    bne     t0, t1, .Lfdt_fail
    BE32    a2, 4, a0, t6           /* totalsize */
    BE32    a3, 8, a0, t6           /* off_dt_struct */
    BE32    a4, 12, a0, t6          /* off_dt_strings */
    add     a5, a0, a2              /* a5 = end of blob */
    add     a3, a0, a3              /* a3 = cursor in structure block */
    add     a4, a0, a4              /* a4 = strings block */
    li      a6, 0                   /* a6 = current depth (root = 1) */
    li      a7, 0                   /* a7 = depth of the memory node, 0 = not in it */

.Lfdt_token:
    addi    t0, a3, 4
    bgtu    t0, a5, .Lfdt_fail
    BE32    t1, 0, a3, t6
    mv      a3, t0
    li      t2, FDT_BEGIN_NODE
    beq     t1, t2, .Lfdt_begin
    li      t2, FDT_END_NODE
    beq     t1, t2, .Lfdt_end
    li      t2, FDT_PROP
    beq     t1, t2, .Lfdt_prop
    li      t2, FDT_NOP
    beq     t1, t2, .Lfdt_token
    j       .Lfdt_fail              /* FDT_END or garbage: not found */

.Lfdt_begin:
    addi    a6, a6, 1
    /*
     * Memory nodes are children of the root and are named "memory" or
     * "memory@<unit>"; insisting on the NUL/'@' after the prefix avoids
     * matching e.g. a "memory-controller" node.
     */
    li      t2, 2
    bne     a6, t2, .Lfdt_skip_name
    bnez    a7, .Lfdt_skip_name
    la      t3, memory_name
    mv      t4, a3
1:  lbu     t5, 0(t3)
    beqz    t5, 2f
    bgeu    t4, a5, .Lfdt_fail
    lbu     t2, 0(t4)
    bne     t2, t5, .Lfdt_skip_name
    addi    t3, t3, 1
    addi    t4, t4, 1
    j       1b
2:  bgeu    t4, a5, .Lfdt_fail
    lbu     t2, 0(t4)
    beqz    t2, 3f
    li      t5, 0x40                /* '@' */
    bne     t2, t5, .Lfdt_skip_name
3:  mv      a7, a6
.Lfdt_skip_name:
    bgeu    a3, a5, .Lfdt_fail
    lbu     t2, 0(a3)
    addi    a3, a3, 1
    bnez    t2, .Lfdt_skip_name
    addi    a3, a3, 3               /* tokens are 4-byte aligned */
    andi    a3, a3, -4
    j       .Lfdt_token

.Lfdt_end:
    bne     a6, a7, 1f
    li      a7, 0                   /* left the memory node without a reg */
1:  addi    a6, a6, -1
    j       .Lfdt_token

.Lfdt_prop:
    addi    t0, a3, 8
    bgtu    t0, a5, .Lfdt_fail
    BE32    t1, 0, a3, t6           /* value length */
    BE32    t2, 4, a3, t6           /* name offset in strings block */
    mv      t3, t0                  /* t3 = value */
    add     a3, t0, t1
    addi    a3, a3, 3
    andi    a3, a3, -4
    bgtu    a3, a5, .Lfdt_fail
    beqz    a7, .Lfdt_token
    bne     a6, a7, .Lfdt_token     /* a property of a child node */
    li      t4, 16                  /* need one (2+2)-cell range */
    bltu    t1, t4, .Lfdt_token
    add     t2, a4, t2
    addi    t4, t2, 4
    bgtu    t4, a5, .Lfdt_token
    lbu     t4, 0(t2)
    li      t5, 0x72                /* 'r' */
    bne     t4, t5, .Lfdt_token
    lbu     t4, 1(t2)
    li      t5, 0x65                /* 'e' */
    bne     t4, t5, .Lfdt_token
    lbu     t4, 2(t2)
    li      t5, 0x67                /* 'g' */
    bne     t4, t5, .Lfdt_token
    lbu     t4, 3(t2)
    bnez    t4, .Lfdt_token
    BE32    a0, 0, t3, t6
    BE32    t4, 4, t3, t6
    slli    a0, a0, 32
    or      a0, a0, t4
    BE32    a1, 8, t3, t6
    BE32    t4, 12, t3, t6
    slli    a1, a1, 32
    or      a1, a1, t4
    ret
.Lfdt_fail:
    li      a0, 0
    li      a1, 0
    ret

/* ------------------------------------------------------------------ */
/*
 * readline(a0 = buffer, a1 = max chars) -> a0 = length.
 * Echoes as it goes and NUL-terminates the buffer.  CR and LF both end a
 * line, but an LF right after a CR is swallowed (the flag lives in memory
 * because that LF arrives during the *next* call), so CRLF input -- e.g.
 * from a piped file or a Windows terminal -- yields one command, not two.
 * ANSI escape sequences (arrow keys...) are dropped so they do not leave
 * "[A" litter in the line.
 */
/*
 * draw_bars(): fill the framebuffer with eight vertical colour bars, the
 * picture `turing run --screenshot` tests compare with a golden PNG.
 */
draw_bars:
    li      t0, FB_BASE
    la      a2, bar_colors
    li      a3, FB_BAR_WIDTH
    li      t5, FB_HEIGHT
    li      t1, 0                   /* y */
1:  li      t6, FB_WIDTH
    li      t2, 0                   /* x */
2:  divu    t3, t2, a3
    slli    t3, t3, 2
    add     t3, a2, t3
    lwu     t4, 0(t3)
    sw      t4, 0(t0)
    addi    t0, t0, 4
    addi    t2, t2, 1
    blt     t2, t6, 2b
    addi    t1, t1, 1
    blt     t1, t5, 1b
    ret

readline:
    addi    sp, sp, -48
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    sd      s1, 16(sp)
    sd      s2, 24(sp)
    sd      s3, 32(sp)
    mv      s0, a0                  /* buffer */
    mv      s1, a1                  /* capacity */
    li      s2, 0                   /* length */
    li      s3, 0                   /* escape state: 0 none, 1 after ESC, 2 in sequence */

.Lrl_next:
    call    getc
    la      t0, after_cr
    lbu     t1, 0(t0)
    sb      zero, 0(t0)
    li      t2, CH_LF
    bne     a0, t2, 1f
    bnez    t1, .Lrl_next           /* second half of CRLF */
    j       .Lrl_done
1:  li      t2, CH_CR
    bne     a0, t2, 2f
    li      t1, 1
    sb      t1, 0(t0)
    j       .Lrl_done

2:  beqz    s3, 3f
    li      t2, 1
    bne     s3, t2, 4f
    /* After ESC: '[' (CSI) or 'O' (SS3) opens a sequence; else drop one byte. */
    li      s3, 0
    li      t2, 0x5b                /* '[' */
    beq     a0, t2, 5f
    li      t2, 0x4f                /* 'O' */
    bne     a0, t2, .Lrl_next
5:  li      s3, 2
    j       .Lrl_next
4:  /* Inside a sequence: parameters until a final byte in 0x40..0x7e. */
    li      t2, 0x40
    bltu    a0, t2, .Lrl_next
    li      s3, 0
    j       .Lrl_next

3:  li      t2, CH_ESC
    bne     a0, t2, 6f
    li      s3, 1
    j       .Lrl_next
6:  li      t2, CH_BS
    beq     a0, t2, .Lrl_erase
    li      t2, CH_DEL              /* what most terminals send for Backspace */
    beq     a0, t2, .Lrl_erase
    li      t2, CH_CTRL_C           /* abandon the line, like a shell */
    bne     a0, t2, 7f
    PUTS    ctrl_c_msg
    li      s2, 0
    j       .Lrl_done
7:  li      t2, CH_SPACE            /* other control characters and non-ASCII: ignore */
    bltu    a0, t2, .Lrl_next
    li      t2, CH_DEL
    bgeu    a0, t2, .Lrl_next
    bgeu    s2, s1, .Lrl_next       /* full: drop silently, do not echo */
    add     t0, s0, s2
    sb      a0, 0(t0)
    addi    s2, s2, 1
    call    putc
    j       .Lrl_next

.Lrl_erase:
    beqz    s2, .Lrl_next
    addi    s2, s2, -1
    PUTS    erase_msg
    j       .Lrl_next

.Lrl_done:
    add     t0, s0, s2
    sb      zero, 0(t0)
    PUTS    crlf
    mv      a0, s2
    ld      ra, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    ld      s2, 24(sp)
    ld      s3, 32(sp)
    addi    sp, sp, 48
    ret

/* ------------------------------------------------------------------ */
/* UART and formatting helpers.  putc/puts/getc/strcmp are leaves that */
/* touch only t0-t2 and their arguments, so callers can rely on that.  */

/* putc(a0 = byte) */
putc:
    li      t0, UART_BASE
1:  lbu     t1, UART_LSR(t0)
    andi    t1, t1, LSR_THRE
    beqz    t1, 1b
    sb      a0, UART_THR(t0)
    ret

/* puts(a0 = NUL-terminated string) */
puts:
    li      t0, UART_BASE
1:  lbu     t2, 0(a0)
    beqz    t2, 3f
2:  lbu     t1, UART_LSR(t0)
    andi    t1, t1, LSR_THRE
    beqz    t1, 2b
    sb      t2, UART_THR(t0)
    addi    a0, a0, 1
    j       1b
3:  ret

/* getc() -> a0: blocks by polling; there is no interrupt to wait for. */
getc:
    li      t0, UART_BASE
1:  lbu     t1, UART_LSR(t0)
    andi    t1, t1, LSR_DR
    beqz    t1, 1b
    lbu     a0, UART_RBR(t0)
    ret

/*
 * Wait until the last byte has physically left the UART, so a message
 * printed right before poweroff/reset is not cut off.
 */
uart_flush:
    li      t0, UART_BASE
1:  lbu     t1, UART_LSR(t0)
    andi    t1, t1, LSR_TEMT
    beqz    t1, 1b
    ret

/* strcmp(a0, a1) -> a0 = 0 if equal, nonzero otherwise */
strcmp:
1:  lbu     t0, 0(a0)
    lbu     t1, 0(a1)
    bne     t0, t1, 2f
    beqz    t0, 3f
    addi    a0, a0, 1
    addi    a1, a1, 1
    j       1b
2:  li      a0, 1
    ret
3:  li      a0, 0
    ret

/* put_dec(a0 = unsigned 64-bit) */
put_dec:
    addi    sp, sp, -48
    sd      ra, 40(sp)
    addi    t0, sp, 32              /* digits grow down from here; 20 max */
    sb      zero, 0(t0)
    li      t1, 10
1:  remu    t2, a0, t1
    divu    a0, a0, t1
    addi    t2, t2, 0x30
    addi    t0, t0, -1
    sb      t2, 0(t0)
    bnez    a0, 1b
    mv      a0, t0
    call    puts
    ld      ra, 40(sp)
    addi    sp, sp, 48
    ret

/* put_dec3(a0 = 0..999), zero-padded to three digits (the fraction part) */
put_dec3:
    addi    sp, sp, -16
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    mv      s0, a0
    li      t2, 100
    divu    a0, s0, t2
    remu    s0, s0, t2
    addi    a0, a0, 0x30
    call    putc
    li      t2, 10
    divu    a0, s0, t2
    remu    s0, s0, t2
    addi    a0, a0, 0x30
    call    putc
    addi    a0, s0, 0x30
    call    putc
    ld      ra, 0(sp)
    ld      s0, 8(sp)
    addi    sp, sp, 16
    ret

/* put_hex(a0 = unsigned 64-bit): "0x" and no leading zeros */
put_hex:
    addi    sp, sp, -32
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    sd      s1, 16(sp)
    mv      s0, a0
    PUTS    hex_prefix
    li      s1, 60                  /* shift of the current nibble */
1:  beqz    s1, 2f                  /* always print the last digit */
    srl     t0, s0, s1
    andi    t0, t0, 15
    bnez    t0, 2f
    addi    s1, s1, -4
    j       1b
2:  srl     t0, s0, s1
    andi    t0, t0, 15
    la      t1, hex_digits
    add     t1, t1, t0
    lbu     a0, 0(t1)
    call    putc
    addi    s1, s1, -4
    bgez    s1, 2b
    ld      ra, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    addi    sp, sp, 32
    ret

/* ------------------------------------------------------------------ */

    .section .rodata

    .balign 4
bar_colors:     /* 0x00RRGGBB: white, yellow, cyan, green, magenta, red, blue, black */
    .word   0x00ffffff, 0x00ffff00, 0x0000ffff, 0x0000ff00
    .word   0x00ff00ff, 0x00ff0000, 0x000000ff, 0x00000000

/* { name, handler, help line } per command, terminated by a null name. */
    .balign 8
cmd_table:
    .dword  name_help, cmd_help, help_help
    .dword  name_info, cmd_info, help_info
    .dword  name_echo, cmd_echo, help_echo
    .dword  name_poweroff, cmd_poweroff, help_poweroff
    .dword  name_reboot, cmd_reboot, help_reboot
    .dword  0, 0, 0

name_help:      .asciz "help"
name_info:      .asciz "info"
name_echo:      .asciz "echo"
name_poweroff:  .asciz "poweroff"
name_reboot:    .asciz "reboot"

help_header:    .asciz "Commands:\r\n"
help_help:      .asciz "  help        list these commands\r\n"
help_info:      .asciz "  info        show hart id, ISA (misa), RAM size and uptime\r\n"
help_echo:      .asciz "  echo TEXT   print TEXT\r\n"
help_poweroff:  .asciz "  poweroff    power the machine off\r\n"
help_reboot:    .asciz "  reboot      reset the machine\r\n"

banner_msg:
    .ascii  "\r\nTuring demo guest -- RISC-V RV64GC on riscv-virt\r\n"
    .asciz  "Type 'help' for commands.\r\n"
prompt_msg:     .asciz "turing> "
unknown_msg:    .asciz "unknown command: "
unknown_tail:   .asciz " (try 'help')\r\n"
poweroff_msg:   .asciz "Powering off.\r\n"
reboot_msg:     .asciz "Rebooting.\r\n"
erase_msg:      .asciz "\b \b"
ctrl_c_msg:     .asciz "^C"
crlf:           .asciz "\r\n"

info_hart_msg:  .asciz "hart:    "
info_isa_msg:   .asciz "isa:     "
info_mem_msg:   .asciz "memory:  "
info_uptime_msg: .asciz "uptime:  "
rv_msg:         .asciz "rv"
misa_open_msg:  .asciz " (misa "
close_crlf:     .asciz ")\r\n"
misa_zero_msg:  .asciz "unknown (misa reads 0)\r\n"
mib_msg:        .asciz " MiB"
bytes_msg:      .asciz " bytes"
at_msg:         .asciz " at "
unknown_value_msg: .asciz "unknown\r\n"
seconds_msg:    .asciz " s\r\n"

trap_msg:       .asciz "\r\n*** unexpected trap: mcause="
trap_mepc_msg:  .asciz " mepc="
trap_mtval_msg: .asciz " mtval="

memory_name:    .asciz "memory"
hex_prefix:     .asciz "0x"
hex_digits:     .ascii "0123456789abcdef"
/* Canonical ISA-string order first, then the remaining (mostly reserved) letters. */
isa_order:      .asciz "iemafdqlcbkjtpvnhgorsuwxyz"

/* ------------------------------------------------------------------ */

    .section .bss
    .balign 16
stack:          .space STACK_SIZE
stack_top:
boot_hartid:    .space 8
boot_fdt:       .space 8
line_buf:       .space LINE_MAX + 8
after_cr:       .space 1
