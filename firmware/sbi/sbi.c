/*
 * Turing SBI: boot, hart state management, inter-hart requests and the SBI
 * call dispatcher.
 *
 * Sharing between harts: each hart owns a struct hart (one cache line) that
 * others update only with AMOs; the request protocol is
 *   sender: pending |= req; [waiters |= me]; msip[target] = 1; [wait for
 *           target's bit in my acks]
 *   target: clear own msip; w = swap(waiters, 0); p = swap(pending, 0);
 *           act on p; acks[s] |= me for every s in w.
 * A waiter keeps serving its own requests, so two harts fencing each other
 * cannot deadlock, and all waits are plain load loops (the emulator may run
 * every hart on one host thread and preempts them).
 */
#include "sbi.h"

/* Requests (struct hart.pending). */
#define REQ_SSIP (1UL << 0)
#define REQ_FENCE_I (1UL << 1)
#define REQ_SFENCE_VMA (1UL << 2)

/* HSM states as stored (zeroed .bss means STOPPED). */
#define H_STOPPED 0
#define H_STARTED 1
#define H_START_CLAIMED 2 /* hart_start is filling in the start address */
#define H_START_PENDING 3
#define H_STOP_PENDING 4
#define H_SUSPENDED 5

/* SBI HSM states as reported. */
#define SBI_HSM_STARTED 0
#define SBI_HSM_STOPPED 1
#define SBI_HSM_START_PENDING 2
#define SBI_HSM_STOP_PENDING 3
#define SBI_HSM_SUSPENDED 4

/* OpenSBI's struct fw_dynamic_info. */
struct fw_dynamic_info {
    unsigned long magic;
    unsigned long version;
    unsigned long next_addr;
    unsigned long next_mode;
    unsigned long options;
    unsigned long boot_hart;
};
#define FW_DYNAMIC_INFO_MAGIC 0x4942534fUL
#define DEFAULT_NEXT_ADDR 0x80200000UL
#define FW_RESERVE_ALIGN 0x200000UL

struct hart {
    unsigned long state;      /* H_* */
    unsigned long start_addr; /* hart_start arguments */
    unsigned long start_arg;
    unsigned long pending;    /* REQ_* bits for this hart */
    unsigned long waiters;    /* harts waiting for this hart's acknowledgement */
    unsigned long acks;       /* harts that acknowledged this hart's request */
    unsigned long probing;    /* an illegal instruction in M-mode is expected */
    unsigned long probe_fault;
    unsigned long has_sstc;   /* menvcfg.STCE set: S-mode timer is stimecmp */
} __attribute__((aligned(64)));

/* Decided before .bss is cleared, so they live in .data. */
static unsigned long boot_lottery __attribute__((section(".data")));
static unsigned long boot_ready __attribute__((section(".data")));

static struct hart harts[MAX_HARTS];
static unsigned long valid_mask;   /* harts in the device tree */
static unsigned long present_mask; /* harts that have entered the firmware */

#define LOAD(x) (*(volatile __typeof__(x) *)&(x))
#define STORE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static void __attribute__((noreturn)) halt(uint32_t finisher_code)
{
    *(volatile uint32_t *)FINISHER_BASE = finisher_code;
    for (;;)
        __asm__ volatile("wfi");
}

/* ---------------------------------------------------------------- timer */

static void timer_clear(unsigned long hartid)
{
    if (harts[hartid].has_sstc)
        csr_write(CSR_STIMECMP, -1UL);
    else
        *CLINT_MTIMECMP(hartid) = -1UL;
    csr_clear(mie, MIP_MTIP);
    csr_clear(mip, MIP_STIP);
}

static void set_timer(unsigned long hartid, unsigned long stime)
{
    if (harts[hartid].has_sstc) {
        csr_write(CSR_STIMECMP, stime);
        return;
    }
    *CLINT_MTIMECMP(hartid) = stime;
    csr_clear(mip, MIP_STIP);
    csr_set(mie, MIP_MTIP);
}

/* ------------------------------------------------------------- requests */

/* Serves this hart's pending requests; a stopped hart drops IPIs. */
static void handle_requests(unsigned long hartid, int stopped)
{
    struct hart *h = &harts[hartid];
    unsigned long w = __atomic_exchange_n(&h->waiters, 0, __ATOMIC_ACQ_REL);
    unsigned long p = __atomic_exchange_n(&h->pending, 0, __ATOMIC_ACQ_REL);

    if ((p & REQ_SSIP) && !stopped)
        csr_set(mip, MIP_SSIP);
    if (p & REQ_SFENCE_VMA)
        __asm__ volatile("sfence.vma" ::: "memory");
    if (p & REQ_FENCE_I)
        __asm__ volatile("fence.i" ::: "memory");
    mb();
    for (unsigned long s = 0; w != 0; s++, w >>= 1) {
        if (w & 1)
            __atomic_fetch_or(&harts[s].acks, 1UL << hartid, __ATOMIC_ACQ_REL);
    }
}

static void software_interrupt(unsigned long hartid)
{
    *CLINT_MSIP(hartid) = 0;
    mb();
    handle_requests(hartid, 0);
}

static void local_request(unsigned long req)
{
    if (req & REQ_SSIP)
        csr_set(mip, MIP_SSIP);
    if (req & REQ_SFENCE_VMA)
        __asm__ volatile("sfence.vma" ::: "memory");
    if (req & REQ_FENCE_I)
        __asm__ volatile("fence.i" ::: "memory");
}

/* The harts named by an SBI hart mask, or an error. */
static long hart_mask_targets(unsigned long mask, unsigned long base, unsigned long *targets)
{
    if (base == -1UL) {
        *targets = valid_mask;
        return SBI_SUCCESS;
    }
    if (mask == 0) {
        *targets = 0;
        return SBI_SUCCESS;
    }
    if (base >= MAX_HARTS || (mask << base) >> base != mask)
        return SBI_ERR_INVALID_PARAM;
    unsigned long t = mask << base;
    if ((t & ~valid_mask) != 0)
        return SBI_ERR_INVALID_PARAM;
    *targets = t;
    return SBI_SUCCESS;
}

/*
 * Delivers req to the targets (locally for this hart); with wait, returns
 * only when every other target has acted on it. Harts that never entered
 * the firmware have run nothing that needs it and are skipped.
 */
static void send_requests(unsigned long hartid, unsigned long targets, unsigned long req, int wait)
{
    struct hart *me = &harts[hartid];
    unsigned long others = targets & LOAD(present_mask) & ~(1UL << hartid);

    if (targets & (1UL << hartid))
        local_request(req);
    for (unsigned long t = 0; t < MAX_HARTS; t++) {
        if (!(others & (1UL << t)))
            continue;
        __atomic_fetch_or(&harts[t].pending, req, __ATOMIC_ACQ_REL);
        if (wait)
            __atomic_fetch_or(&harts[t].waiters, 1UL << hartid, __ATOMIC_ACQ_REL);
        mb();
        *CLINT_MSIP(t) = 1;
    }
    if (!wait || others == 0)
        return;
    while ((LOAD(me->acks) & others) != others) {
        if (LOAD(me->pending) != 0 || LOAD(me->waiters) != 0)
            handle_requests(hartid, 0);
    }
    __atomic_fetch_and(&me->acks, ~others, __ATOMIC_ACQ_REL);
}

/* ------------------------------------------------------------------ HSM */

static void __attribute__((noreturn)) hart_stopped(unsigned long hartid)
{
    struct hart *h = &harts[hartid];

    csr_write(mie, MIP_MSIP); /* wakes wfi; mstatus.MIE = 0 so no trap */
    for (;;) {
        *CLINT_MSIP(hartid) = 0;
        mb();
        handle_requests(hartid, 1);
        if (LOAD(h->state) == H_START_PENDING)
            break;
        __asm__ volatile("wfi");
    }
    mb();
    unsigned long addr = LOAD(h->start_addr);
    unsigned long arg = LOAD(h->start_arg);
    __atomic_store_n(&h->state, H_STARTED, __ATOMIC_RELEASE);
    enter_lower(hartid, arg, addr, MSTATUS_MPP_S);
}

static int in_firmware(unsigned long addr, unsigned long size)
{
    unsigned long lo = (unsigned long)__fw_start, hi = (unsigned long)__fw_end;
    return addr < hi && addr + size > lo;
}

static long hsm_hart_start(unsigned long target, unsigned long addr, unsigned long arg)
{
    if (target >= MAX_HARTS || !(valid_mask & (1UL << target)))
        return SBI_ERR_INVALID_PARAM;
    if (in_firmware(addr, 4))
        return SBI_ERR_INVALID_ADDRESS;
    struct hart *t = &harts[target];
    unsigned long expected = H_STOPPED;
    if (!__atomic_compare_exchange_n(&t->state, &expected, H_START_CLAIMED, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return SBI_ERR_ALREADY_AVAILABLE;
    STORE(t->start_addr, addr);
    STORE(t->start_arg, arg);
    __atomic_store_n(&t->state, H_START_PENDING, __ATOMIC_RELEASE);
    mb();
    *CLINT_MSIP(target) = 1;
    return SBI_SUCCESS;
}

static void __attribute__((noreturn)) hsm_hart_stop(unsigned long hartid)
{
    struct hart *h = &harts[hartid];
    __atomic_store_n(&h->state, H_STOP_PENDING, __ATOMIC_RELEASE);
    timer_clear(hartid);
    csr_clear(mip, MIP_SSIP);
    __atomic_store_n(&h->state, H_STOPPED, __ATOMIC_RELEASE);
    hart_stopped(hartid);
}

static long hsm_hart_status(unsigned long target, unsigned long *value)
{
    if (target >= MAX_HARTS || !(valid_mask & (1UL << target)))
        return SBI_ERR_INVALID_PARAM;
    switch (LOAD(harts[target].state)) {
    case H_STARTED:
        *value = SBI_HSM_STARTED;
        break;
    case H_START_CLAIMED:
    case H_START_PENDING:
        *value = SBI_HSM_START_PENDING;
        break;
    case H_STOP_PENDING:
        *value = SBI_HSM_STOP_PENDING;
        break;
    case H_SUSPENDED:
        *value = SBI_HSM_SUSPENDED;
        break;
    default:
        *value = SBI_HSM_STOPPED;
        break;
    }
    return SBI_SUCCESS;
}

static long hsm_hart_suspend(unsigned long hartid, unsigned long type)
{
    if (type == 0) {
        /* Default retentive suspend: wait for any enabled interrupt. */
        struct hart *h = &harts[hartid];
        __atomic_store_n(&h->state, H_SUSPENDED, __ATOMIC_RELEASE);
        while ((csr_read(mip) & csr_read(mie)) == 0)
            __asm__ volatile("wfi");
        __atomic_store_n(&h->state, H_STARTED, __ATOMIC_RELEASE);
        return SBI_SUCCESS;
    }
    if (type == 0x80000000UL || (type >= 0x10000000UL && type <= 0x7fffffffUL) ||
        (type >= 0x90000000UL && type <= 0xffffffffUL))
        return SBI_ERR_NOT_SUPPORTED;
    return SBI_ERR_INVALID_PARAM;
}

/* ----------------------------------------------------------------- SRST */

static long system_reset(unsigned long type, unsigned long reason)
{
    if (type > 0xffffffffUL || reason > 0xffffffffUL)
        return SBI_ERR_INVALID_PARAM;
    if (reason >= 2 && reason <= 0xdfffffffUL)
        return SBI_ERR_INVALID_PARAM;
    if (type >= 3 && type <= 0xefffffffUL)
        return SBI_ERR_INVALID_PARAM;
    if (type > 2)
        return SBI_ERR_NOT_SUPPORTED;
    uint32_t code;
    if (type == 0)
        code = reason == 1 ? FINISHER_FAIL(1) : FINISHER_PASS;
    else
        code = FINISHER_RESET;
    *(volatile uint32_t *)FINISHER_BASE = code;
    /* The write stops the machine; give it time before reporting failure. */
    for (volatile unsigned long i = 0; i < 1000000; i++)
        ;
    return SBI_ERR_FAILED;
}

/* ----------------------------------------------------------------- DBCN */

static long dbcn_range(unsigned long n, unsigned long lo, unsigned long hi)
{
    if (hi != 0 || lo + n < lo || in_firmware(lo, n))
        return SBI_ERR_INVALID_PARAM;
    return SBI_SUCCESS;
}

static long dbcn_call(unsigned long fid, unsigned long *a, unsigned long *value)
{
    long err;
    switch (fid) {
    case 0: /* console_write(num_bytes, base_lo, base_hi) */
        if ((err = dbcn_range(a[0], a[1], a[2])) != SBI_SUCCESS)
            return err;
        console_lock();
        unsigned long n = 0;
        for (; n < a[0]; n++) {
            int c = guarded_load_byte((const void *)(a[1] + n));
            if (c < 0)
                break;
            uart_putc(c);
        }
        console_unlock();
        *value = n;
        return n == a[0] ? SBI_SUCCESS : SBI_ERR_INVALID_PARAM;
    case 1: { /* console_read(num_bytes, base_lo, base_hi) */
        if ((err = dbcn_range(a[0], a[1], a[2])) != SBI_SUCCESS)
            return err;
        unsigned long i = 0;
        for (; i < a[0]; i++) {
            int c = uart_getc();
            if (c < 0)
                break;
            if (guarded_store_byte((void *)(a[1] + i), c) < 0) {
                *value = i;
                return SBI_ERR_INVALID_PARAM;
            }
        }
        *value = i;
        return SBI_SUCCESS;
    }
    case 2: /* console_write_byte(byte) */
        console_lock();
        uart_putc((int)(a[0] & 0xff));
        console_unlock();
        return SBI_SUCCESS;
    default:
        return SBI_ERR_NOT_SUPPORTED;
    }
}

/* ------------------------------------------------------------- dispatch */

static int extension_present(unsigned long eid)
{
    switch (eid) {
    case SBI_EXT_LEGACY_SET_TIMER:
    case SBI_EXT_LEGACY_PUTCHAR:
    case SBI_EXT_LEGACY_GETCHAR:
    case SBI_EXT_LEGACY_SHUTDOWN:
    case SBI_EXT_BASE:
    case SBI_EXT_TIME:
    case SBI_EXT_IPI:
    case SBI_EXT_RFENCE:
    case SBI_EXT_HSM:
    case SBI_EXT_SRST:
    case SBI_EXT_DBCN:
        return 1;
    default:
        return 0;
    }
}

static long base_call(unsigned long fid, unsigned long *a, unsigned long *value)
{
    switch (fid) {
    case 0:
        *value = SBI_SPEC_VERSION;
        break;
    case 1:
        *value = SBI_IMPL_ID;
        break;
    case 2:
        *value = SBI_IMPL_VERSION;
        break;
    case 3:
        *value = (unsigned long)extension_present(a[0]);
        break;
    case 4:
        *value = csr_read(mvendorid);
        break;
    case 5:
        *value = csr_read(marchid);
        break;
    case 6:
        *value = csr_read(mimpid);
        break;
    default:
        return SBI_ERR_NOT_SUPPORTED;
    }
    return SBI_SUCCESS;
}

static void sbi_ecall(unsigned long hartid, struct trap_frame *f)
{
    unsigned long eid = f->regs[REG_A7], fid = f->regs[REG_A6];
    unsigned long *a = &f->regs[REG_A0];
    unsigned long value = 0, targets;
    long err = SBI_ERR_NOT_SUPPORTED;

    switch (eid) {
    /* Legacy calls return their result in a0 only. */
    case SBI_EXT_LEGACY_SET_TIMER:
        set_timer(hartid, a[0]);
        a[0] = 0;
        return;
    case SBI_EXT_LEGACY_PUTCHAR:
        console_lock();
        uart_putc((int)(a[0] & 0xff));
        console_unlock();
        a[0] = 0;
        return;
    case SBI_EXT_LEGACY_GETCHAR:
        a[0] = (unsigned long)(long)uart_getc();
        return;
    case SBI_EXT_LEGACY_SHUTDOWN:
        halt(FINISHER_PASS);

    case SBI_EXT_BASE:
        err = base_call(fid, a, &value);
        break;
    case SBI_EXT_TIME:
        if (fid == 0) {
            set_timer(hartid, a[0]);
            err = SBI_SUCCESS;
        }
        break;
    case SBI_EXT_IPI:
        if (fid == 0) {
            err = hart_mask_targets(a[0], a[1], &targets);
            if (err == SBI_SUCCESS)
                send_requests(hartid, targets, REQ_SSIP, 0);
        }
        break;
    case SBI_EXT_RFENCE:
        if (fid <= 2) {
            /* Ranges and ASIDs are not tracked: flush everything. */
            err = hart_mask_targets(a[0], a[1], &targets);
            if (err == SBI_SUCCESS)
                send_requests(hartid, targets, fid == 0 ? REQ_FENCE_I : REQ_SFENCE_VMA, 1);
        }
        break;
    case SBI_EXT_HSM:
        switch (fid) {
        case 0:
            err = hsm_hart_start(a[0], a[1], a[2]);
            break;
        case 1:
            hsm_hart_stop(hartid);
        case 2:
            err = hsm_hart_status(a[0], &value);
            break;
        case 3:
            err = hsm_hart_suspend(hartid, a[0]);
            break;
        }
        break;
    case SBI_EXT_SRST:
        if (fid == 0)
            err = system_reset(a[0], a[1]);
        break;
    case SBI_EXT_DBCN:
        err = dbcn_call(fid, a, &value);
        break;
    }
    a[0] = (unsigned long)err;
    a[1] = value;
}

static void __attribute__((noreturn)) fatal_trap(unsigned long hartid, unsigned long mcause,
                                                 const struct trap_frame *f)
{
    unsigned long mtval = csr_read(mtval);
    print_str("\nTuring SBI: unexpected trap on hart ");
    print_dec(hartid);
    print_str(" from mode ");
    print_dec((f->mstatus & MSTATUS_MPP) >> 11);
    print_str(": mcause=");
    print_hex(mcause);
    print_str(" mepc=");
    print_hex(f->mepc);
    print_str(" mtval=");
    print_hex(mtval);
    print_str("\n");
    halt(FINISHER_FAIL(1));
}

void sbi_trap(struct trap_frame *f)
{
    unsigned long hartid = csr_read(mhartid);
    unsigned long mcause = csr_read(mcause);
    int from_m = (f->mstatus & MSTATUS_MPP) == MSTATUS_MPP;

    if ((long)mcause < 0) {
        switch (mcause & 0xff) {
        case 3: /* machine software interrupt */
            software_interrupt(hartid);
            return;
        case 7: /* machine timer: hand it to S-mode */
            csr_set(mip, MIP_STIP);
            csr_clear(mie, MIP_MTIP);
            return;
        }
    } else if (mcause == 9) { /* ecall from S-mode */
        sbi_ecall(hartid, f);
        f->mepc += 4;
        return;
    } else if (from_m && (mcause == 5 || mcause == 7) &&
               (f->mepc == (unsigned long)guarded_load_insn ||
                f->mepc == (unsigned long)guarded_store_insn)) {
        /* A guarded access to memory named by S-mode faulted: return -1. */
        f->mepc = (unsigned long)guarded_fault;
        return;
    } else if (from_m && mcause == 2 && harts[hartid].probing) {
        /* A CSR probe (always a 4-byte instruction) faulted: skip it. */
        harts[hartid].probe_fault = 1;
        f->mepc += 4;
        return;
    }
    fatal_trap(hartid, mcause, f);
}

/* ----------------------------------------------------------------- boot */

static void hart_init(unsigned long hartid)
{
    struct hart *h = &harts[hartid];

    /* Faulting CSR accesses are skipped from here on (see sbi_trap). */
    STORE(h->probe_fault, 0);
    STORE(h->probing, 1);

    /* PMP entry 0: everything, RWX, for S/U-mode. */
    csr_write(pmpaddr0, -1UL);
    csr_write(pmpcfg0, 0x1f);
    csr_write(mcounteren, 7);
    csr_write(medeleg, (1UL << 0) | (1UL << 1) | (1UL << 2) | (1UL << 3) | (1UL << 4) |
                           (1UL << 5) | (1UL << 6) | (1UL << 7) | (1UL << 8) | (1UL << 12) |
                           (1UL << 13) | (1UL << 15));
    /* With the hypervisor extension, HS-mode handles its guests' traps. */
    if (csr_read(misa) & (1UL << ('H' - 'A')))
        csr_set(medeleg, (1UL << 10) | (1UL << 20) | (1UL << 21) | (1UL << 22) | (1UL << 23));
    csr_write(mideleg, MIP_SSIP | MIP_STIP | MIP_SEIP);
    csr_write(mie, 0);
    csr_clear(mip, MIP_SSIP | MIP_STIP);

    /*
     * menvcfg (privileged spec 1.12) may not exist. Where it does, enable what
     * the extensions present need (WARL: absent ones read back 0), and use
     * Sstc's stimecmp for the S-mode timer if STCE sticks and stimecmp exists
     * (QEMU does not let M-mode drive mip.STIP once STCE is set).
     */
    h->has_sstc = 0;
    STORE(h->probe_fault, 0);
    csr_set(CSR_MENVCFG, MENVCFG_STCE | MENVCFG_PBMTE | MENVCFG_CBZE | MENVCFG_CBCFE |
                             MENVCFG_CBIE_FLUSH);
    if (!LOAD(h->probe_fault) && (csr_read(CSR_MENVCFG) & MENVCFG_STCE)) {
        (void)csr_read(CSR_STIMECMP);
        if (LOAD(h->probe_fault))
            csr_clear(CSR_MENVCFG, MENVCFG_STCE);
        else
            h->has_sstc = 1;
    }
    STORE(h->probing, 0);
    timer_clear(hartid);
}

static unsigned long popcount(unsigned long v)
{
    unsigned long n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

void __attribute__((noreturn)) sbi_main(unsigned long hartid, const void *fdt,
                                        const struct fw_dynamic_info *info)
{
    unsigned long next_addr = DEFAULT_NEXT_ADDR, next_mode = 1, boot_hart = -1UL;
    if (info != 0 && ((uintptr_t)info & 7) == 0 && info->magic == FW_DYNAMIC_INFO_MAGIC) {
        next_addr = info->next_addr;
        next_mode = info->next_mode;
        if (info->version >= 2)
            boot_hart = info->boot_hart;
    }
    if (boot_hart >= MAX_HARTS)
        boot_hart = -1UL;

    int is_boot;
    if (boot_hart != -1UL)
        is_boot = hartid == boot_hart;
    else
        is_boot = __atomic_fetch_add(&boot_lottery, 1, __ATOMIC_ACQ_REL) == 0;

    if (!is_boot) {
        while (LOAD(boot_ready) == 0)
            ;
        mb();
        if (!(valid_mask & (1UL << hartid))) {
            for (;;)
                __asm__ volatile("wfi");
        }
        hart_init(hartid);
        __atomic_fetch_or(&present_mask, 1UL << hartid, __ATOMIC_ACQ_REL);
        hart_stopped(hartid);
    }

    zero_range(__bss_start, __bss_end);
    unsigned long mask = fdt_hart_mask(fdt);
    if (mask == 0)
        mask = (1UL << MAX_HARTS) - 1;
    valid_mask = mask | (1UL << hartid);
    harts[hartid].state = H_STARTED;
    hart_init(hartid);
    present_mask = 1UL << hartid;
    mb();
    __atomic_store_n(&boot_ready, 1, __ATOMIC_RELEASE);

    /*
     * The OS must keep off the firmware: trim the RAM the device tree
     * describes so that it starts at the next 2 MiB boundary (the kernel's
     * load address), editing the tree in place without changing its size.
     */
    unsigned long fw_base = (unsigned long)__fw_start;
    unsigned long fw_top = ((unsigned long)__fw_end + FW_RESERVE_ALIGN - 1) & ~(FW_RESERVE_ALIGN - 1);
    if (next_addr >= (unsigned long)__fw_end && next_addr < fw_top)
        fw_top = next_addr;
    int trimmed = fdt_trim_memory((void *)fdt, fw_base, fw_top);

    console_lock();
    if (!trimmed)
        print_str("Turing SBI: warning: firmware memory not removed from the device tree\n");
    print_str("Turing SBI v0.1: hart ");
    print_dec(hartid);
    print_str(" of ");
    print_dec(popcount(valid_mask));
    print_str(" boots ");
    print_hex(next_addr);
    print_str(next_mode == 0 ? " in U-mode\n" : " in S-mode\n");
    console_unlock();

    enter_lower(hartid, (unsigned long)fdt, next_addr, next_mode == 0 ? 0 : MSTATUS_MPP_S);
}
