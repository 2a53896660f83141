/*
 * Turing SBI: shared definitions.
 */
#ifndef TURING_SBI_H
#define TURING_SBI_H

#include <stdint.h>

#define MAX_HARTS 8
#define STACK_SHIFT 12 /* 4 KiB M-mode stack per hart */

/* Machine devices (QEMU virt layout, as on Turing's riscv-virt). */
#define UART_BASE 0x10000000UL     /* ns16550a, byte registers */
#define CLINT_BASE 0x02000000UL    /* SiFive CLINT */
#define CLINT_MSIP(h) ((volatile uint32_t *)(CLINT_BASE + 4 * (h)))
#define CLINT_MTIMECMP(h) ((volatile uint64_t *)(CLINT_BASE + 0x4000 + 8 * (h)))
#define FINISHER_BASE 0x100000UL   /* SiFive test device */
#define FINISHER_PASS 0x5555
#define FINISHER_RESET 0x7777
#define FINISHER_FAIL(code) (0x3333 | ((uint32_t)(code) << 16))

/* Implementation identity. 0x54 ('T') is not allocated in the SBI spec. */
#define SBI_SPEC_VERSION 0x02000000UL /* v2.0 */
#define SBI_IMPL_ID 0x54UL
#define SBI_IMPL_VERSION 0x00000001UL /* v0.1: major << 16 | minor */

/* SBI error codes. */
#define SBI_SUCCESS 0
#define SBI_ERR_FAILED (-1L)
#define SBI_ERR_NOT_SUPPORTED (-2L)
#define SBI_ERR_INVALID_PARAM (-3L)
#define SBI_ERR_DENIED (-4L)
#define SBI_ERR_INVALID_ADDRESS (-5L)
#define SBI_ERR_ALREADY_AVAILABLE (-6L)

/* Extension IDs. */
#define SBI_EXT_LEGACY_SET_TIMER 0x00
#define SBI_EXT_LEGACY_PUTCHAR 0x01
#define SBI_EXT_LEGACY_GETCHAR 0x02
#define SBI_EXT_LEGACY_SHUTDOWN 0x08
#define SBI_EXT_BASE 0x10
#define SBI_EXT_TIME 0x54494D45
#define SBI_EXT_IPI 0x735049
#define SBI_EXT_RFENCE 0x52464E43
#define SBI_EXT_HSM 0x48534D
#define SBI_EXT_SRST 0x53525354
#define SBI_EXT_DBCN 0x4442434E

/* CSR bits. */
#define MSTATUS_SIE (1UL << 1)
#define MSTATUS_MIE (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP (1UL << 8)
#define MSTATUS_MPP (3UL << 11)
#define MSTATUS_MPP_S (1UL << 11)
#define MSTATUS_MPRV (1UL << 17)
#define MIP_SSIP (1UL << 1)
#define MIP_MSIP (1UL << 3)
#define MIP_STIP (1UL << 5)
#define MIP_MTIP (1UL << 7)
#define MIP_SEIP (1UL << 9)
#define MENVCFG_CBIE_FLUSH (1UL << 4)
#define MENVCFG_CBCFE (1UL << 6)
#define MENVCFG_CBZE (1UL << 7)
#define MENVCFG_PBMTE (1UL << 62)
#define MENVCFG_STCE (1UL << 63)

#define CSR_MENVCFG 0x30a
#define CSR_STIMECMP 0x14d

#define STR_(x) #x
#define STR(x) STR_(x)
#define csr_read(csr)                                                    \
    ({                                                                   \
        unsigned long v_;                                                \
        __asm__ volatile("csrr %0, " STR(csr) : "=r"(v_)::"memory");     \
        v_;                                                              \
    })
#define csr_write(csr, val)                                              \
    __asm__ volatile("csrw " STR(csr) ", %0" ::"rK"((unsigned long)(val)) : "memory")
#define csr_set(csr, val)                                                \
    __asm__ volatile("csrs " STR(csr) ", %0" ::"rK"((unsigned long)(val)) : "memory")
#define csr_clear(csr, val)                                              \
    __asm__ volatile("csrc " STR(csr) ", %0" ::"rK"((unsigned long)(val)) : "memory")

#define mb() __asm__ volatile("fence rw, rw" ::: "memory")

/*
 * Saved state of a trap: regs[i] is x<i> (regs[0] unused). The trap returns
 * to mepc with mstatus.MPP/MPIE from mstatus (entry.S restores them).
 */
struct trap_frame {
    unsigned long regs[32];
    unsigned long mepc;
    unsigned long mstatus;
};
#define REG_SP 2
#define REG_A0 10
#define REG_A1 11
#define REG_A2 12
#define REG_A3 13
#define REG_A4 14
#define REG_A5 15
#define REG_A6 16
#define REG_A7 17

/* entry.S */
void enter_lower(unsigned long hartid, unsigned long arg, unsigned long addr,
                 unsigned long mstatus_mpp) __attribute__((noreturn));
void zero_range(void *start, void *end);
int guarded_load_byte(const void *p);
int guarded_store_byte(void *p, int byte);
extern char guarded_load_insn[], guarded_store_insn[], guarded_fault[];
extern char __fw_start[], __bss_start[], __bss_end[], __fw_end[];

/* console.c */
void console_lock(void);
void console_unlock(void);
void uart_putc(int c);
int uart_getc(void);
void print_str(const char *s);
void print_hex(unsigned long v);
void print_dec(unsigned long v);

/* fdt.c */
unsigned long fdt_hart_mask(const void *fdt);
int fdt_trim_memory(void *fdt, uint64_t base, uint64_t end);

#endif
