/*
 * S-mode test payload for the Turing SBI firmware (see build.sh).
 *
 * Runs on the boot hart, starts one more hart through HSM, prints "ok N ..."
 * lines through the legacy console and powers off through SRST. A failed
 * check N writes 0x3333 | N << 16 to the finisher itself (QEMU exit code N).
 * Needs at least two harts; the second one must be hart 1 (-smp 2).
 */
#include <stdint.h>

#define FINISHER ((volatile uint32_t *)0x100000UL)
#define TIMEBASE_HZ 10000000UL /* QEMU virt and Turing */
#define TIMEOUT (TIMEBASE_HZ / 2)

#define EXT_BASE 0x10
#define EXT_TIME 0x54494D45
#define EXT_IPI 0x735049
#define EXT_RFENCE 0x52464E43
#define EXT_HSM 0x48534D
#define EXT_SRST 0x53525354
#define EXT_DBCN 0x4442434E

#define ERR_NOT_SUPPORTED (-2)
#define ERR_INVALID_PARAM (-3)
#define ERR_ALREADY_AVAILABLE (-6)

#define HSM_STARTED 0
#define HSM_STOPPED 1

#define SIE_SSIE (1UL << 1)
#define SIE_STIE (1UL << 5)
#define SSTATUS_SIE (1UL << 1)

struct sbiret {
    long error;
    long value;
};

static struct sbiret sbi_call(unsigned long eid, unsigned long fid, unsigned long arg0,
                              unsigned long arg1, unsigned long arg2, unsigned long arg3,
                              unsigned long arg4)
{
    register unsigned long a0 __asm__("a0") = arg0;
    register unsigned long a1 __asm__("a1") = arg1;
    register unsigned long a2 __asm__("a2") = arg2;
    register unsigned long a3 __asm__("a3") = arg3;
    register unsigned long a4 __asm__("a4") = arg4;
    register unsigned long a6 __asm__("a6") = fid;
    register unsigned long a7 __asm__("a7") = eid;
    __asm__ volatile("ecall"
                     : "+r"(a0), "+r"(a1)
                     : "r"(a2), "r"(a3), "r"(a4), "r"(a6), "r"(a7)
                     : "memory");
    return (struct sbiret){(long)a0, (long)a1};
}

static long sbi_legacy(unsigned long eid, unsigned long arg0)
{
    register unsigned long a0 __asm__("a0") = arg0;
    register unsigned long a7 __asm__("a7") = eid;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "a1", "memory");
    return (long)a0;
}

#define CALL0(e, f) sbi_call(e, f, 0, 0, 0, 0, 0)
#define CALL1(e, f, x) sbi_call(e, f, x, 0, 0, 0, 0)
#define CALL2(e, f, x, y) sbi_call(e, f, x, y, 0, 0, 0)
#define CALL3(e, f, x, y, z) sbi_call(e, f, x, y, z, 0, 0)

#define csr_read(csr)                                                    \
    ({                                                                   \
        unsigned long v_;                                                \
        __asm__ volatile("csrr %0, " #csr : "=r"(v_)::"memory");         \
        v_;                                                              \
    })
#define csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" ::"r"((unsigned long)(v)) : "memory")
#define csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" ::"r"((unsigned long)(v)) : "memory")
#define csr_write(csr, v) __asm__ volatile("csrw " #csr ", %0" ::"r"((unsigned long)(v)) : "memory")

#define LOAD(x) (*(volatile __typeof__(x) *)&(x))
#define STORE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static void putc_(char c)
{
    sbi_legacy(0x01, (unsigned char)c);
}

static void puts_(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            putc_('\r');
        putc_(*s);
    }
}

static void putdec(unsigned long v)
{
    char buf[24];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        putc_(buf[--i]);
}

static void __attribute__((noreturn)) fail(unsigned n)
{
    puts_("FAIL ");
    putdec(n);
    puts_("\n");
    *FINISHER = 0x3333 | (n << 16);
    for (;;)
        ;
}

static unsigned checks;

static void check(int cond, const char *what)
{
    checks++;
    if (!cond)
        fail(checks);
    puts_("ok ");
    putdec(checks);
    puts_(" ");
    puts_(what);
    puts_("\n");
}

static unsigned long now(void)
{
    return csr_read(time);
}

/* Waits until *flag reaches want; 0 on timeout. */
static int wait_for(volatile unsigned long *flag, unsigned long want)
{
    unsigned long start = now();
    while (*flag < want) {
        if (now() - start > TIMEOUT)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------- S-mode traps */

static unsigned long timer_ticks[8], soft_ticks[8];

static void __attribute__((interrupt("supervisor"), aligned(4))) s_trap(void)
{
    unsigned long scause = csr_read(scause);
    unsigned long hart = csr_read(sscratch);
    if (scause == ((1UL << 63) | 5)) {
        sbi_call(EXT_TIME, 0, -1UL, 0, 0, 0, 0);
        timer_ticks[hart]++;
    } else if (scause == ((1UL << 63) | 1)) {
        csr_clear(sip, SIE_SSIE);
        soft_ticks[hart]++;
    } else {
        fail(100 + (unsigned)(scause & 0xff));
    }
}

static void trap_setup(unsigned long hartid)
{
    csr_write(sscratch, hartid);
    csr_write(stvec, (unsigned long)&s_trap);
    csr_set(sie, SIE_SSIE | SIE_STIE);
    csr_set(sstatus, SSTATUS_SIE);
}

/* ------------------------------------------------------ second hart */

extern char secondary_entry[];
static unsigned long sec_hartid = -1UL, sec_opaque, sec_runs, sec_stop;

void payload_secondary(unsigned long hartid, unsigned long opaque)
{
    trap_setup(hartid);
    STORE(sec_hartid, hartid);
    STORE(sec_opaque, opaque);
    __asm__ volatile("fence rw, rw" ::: "memory");
    __atomic_fetch_add(&sec_runs, 1, __ATOMIC_SEQ_CST);
    while (LOAD(sec_stop) == 0)
        ;
    STORE(sec_stop, 0);
    CALL0(EXT_HSM, 1); /* hart_stop: does not return */
    fail(99);
}

static int wait_status(unsigned long hart, long status)
{
    unsigned long start = now();
    for (;;) {
        struct sbiret r = CALL1(EXT_HSM, 2, hart);
        if (r.error == 0 && r.value == status)
            return 1;
        if (now() - start > TIMEOUT)
            return 0;
    }
}

/* ------------------------------------------------------- device tree */

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* First address of the first /memory@... node's reg (2 address cells), or 0. */
static unsigned long fdt_memory_start(const uint8_t *fdt)
{
    if (be32(fdt) != 0xd00dfeed)
        return 0;
    const uint8_t *p = fdt + be32(fdt + 8);
    const char *strings = (const char *)fdt + be32(fdt + 12);
    int depth = 0, in_memory = 0;
    for (;;) {
        uint32_t token = be32(p);
        p += 4;
        if (token == 1) {
            const char *name = (const char *)p;
            unsigned long n = 0;
            while (name[n])
                n++;
            p += (n + 4) & ~3UL;
            depth++;
            in_memory = depth == 2 && n >= 7 && name[0] == 'm' && name[1] == 'e' &&
                        name[2] == 'm' && name[3] == 'o' && name[4] == 'r' && name[5] == 'y' &&
                        name[6] == '@';
        } else if (token == 2) {
            depth--;
            in_memory = 0;
        } else if (token == 3) {
            uint32_t len = be32(p);
            const char *name = strings + be32(p + 4);
            const uint8_t *value = p + 8;
            p += 8 + ((len + 3) & ~3U);
            if (in_memory && name[0] == 'r' && name[1] == 'e' && name[2] == 'g' && !name[3] &&
                len >= 8)
                return ((unsigned long)be32(value) << 32) | be32(value + 4);
        } else if (token != 4) {
            return 0;
        }
    }
}

/* ------------------------------------------------------------- main */

void payload_main(unsigned long hartid, unsigned long fdt)
{
    struct sbiret r;
    puts_("Turing SBI test payload\n");
    trap_setup(hartid);

    check(fdt_memory_start((const uint8_t *)fdt) == 0x80200000,
          "device tree: RAM below the kernel hidden");

    /* Base */
    r = CALL0(EXT_BASE, 0);
    check(r.error == 0 && r.value == 0x2000000, "base: spec version 2.0");
    r = CALL0(EXT_BASE, 1);
    check(r.error == 0 && r.value == 0x54, "base: impl id 0x54");
    r = CALL0(EXT_BASE, 2);
    check(r.error == 0 && r.value == 1, "base: impl version 0.1");
    static const unsigned long present[] = {0x00, 0x01, 0x02, 0x08, EXT_BASE, EXT_TIME, EXT_IPI,
                                            EXT_RFENCE, EXT_HSM, EXT_SRST, EXT_DBCN};
    int all = 1;
    for (unsigned i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
        r = CALL1(EXT_BASE, 3, present[i]);
        all &= r.error == 0 && r.value == 1;
    }
    check(all, "base: probe_extension finds every extension");
    r = CALL1(EXT_BASE, 3, 0x504D55); /* PMU */
    check(r.error == 0 && r.value == 0, "base: probe_extension(PMU) = 0");
    int ids = 1;
    for (unsigned long fid = 4; fid <= 6; fid++)
        ids &= CALL0(EXT_BASE, fid).error == 0;
    check(ids, "base: mvendorid/marchid/mimpid");
    check(CALL0(0x0a000000, 0).error == ERR_NOT_SUPPORTED, "unknown EID: not supported");
    check(CALL0(EXT_BASE, 7).error == ERR_NOT_SUPPORTED, "unknown FID: not supported");

    /* TIME */
    r = CALL1(EXT_TIME, 0, now() + TIMEBASE_HZ / 1000);
    check(r.error == 0 && wait_for(&timer_ticks[hartid], 1), "time: set_timer interrupt");
    sbi_legacy(0x00, now() + TIMEBASE_HZ / 1000);
    check(wait_for(&timer_ticks[hartid], 2), "legacy set_timer interrupt");
    unsigned long t0 = now();
    r = CALL1(EXT_TIME, 0, -1UL);
    while (now() - t0 < TIMEBASE_HZ / 500)
        ;
    check(r.error == 0 && timer_ticks[hartid] == 2, "time: set_timer(-1) stays quiet");

    /* IPI */
    r = CALL2(EXT_IPI, 0, 1UL << hartid, 0);
    check(r.error == 0 && wait_for(&soft_ticks[hartid], 1), "ipi: send_ipi to self");
    r = CALL2(EXT_IPI, 0, 0, -1UL);
    check(r.error == 0 && wait_for(&soft_ticks[hartid], 2), "ipi: send_ipi to all");
    r = CALL2(EXT_IPI, 0, 1, 64);
    check(r.error == ERR_INVALID_PARAM, "ipi: bad hart mask rejected");

    /* HSM */
    unsigned long other = hartid == 0 ? 1 : 0;
    r = CALL1(EXT_HSM, 2, hartid);
    check(r.error == 0 && r.value == HSM_STARTED, "hsm: own status started");
    r = CALL1(EXT_HSM, 2, other);
    check(r.error == 0 && r.value == HSM_STOPPED, "hsm: other hart stopped");
    r = CALL1(EXT_HSM, 2, 200);
    check(r.error == ERR_INVALID_PARAM, "hsm: status of a missing hart");
    r = CALL3(EXT_HSM, 0, other, (unsigned long)secondary_entry, 0x5a5a1234);
    check(r.error == 0 && wait_for(&sec_runs, 1), "hsm: hart_start");
    check(LOAD(sec_hartid) == other && LOAD(sec_opaque) == 0x5a5a1234,
          "hsm: started hart got hartid and opaque");
    check(wait_status(other, HSM_STARTED), "hsm: other hart started");
    r = CALL3(EXT_HSM, 0, other, (unsigned long)secondary_entry, 0);
    check(r.error == ERR_ALREADY_AVAILABLE, "hsm: hart_start of a running hart");

    /* IPI and RFENCE to a running hart */
    r = CALL2(EXT_IPI, 0, 1UL << other, 0);
    check(r.error == 0 && wait_for(&soft_ticks[other], 1), "ipi: send_ipi to other hart");
    r = CALL2(EXT_RFENCE, 0, 0, -1UL);
    check(r.error == 0, "rfence: remote_fence_i to all");
    r = sbi_call(EXT_RFENCE, 1, 3, 0, 0, -1UL, 0);
    check(r.error == 0, "rfence: remote_sfence_vma to harts 0-1");
    r = sbi_call(EXT_RFENCE, 2, 1UL << other, 0, 0x80200000, 0x1000, 0);
    check(r.error == 0, "rfence: remote_sfence_vma_asid to other hart");
    r = sbi_call(EXT_RFENCE, 3, 0, -1UL, 0, 0, 0);
    check(r.error == ERR_NOT_SUPPORTED, "rfence: hfence not supported");

    /* Stop and start again */
    STORE(sec_stop, 1);
    check(wait_status(other, HSM_STOPPED), "hsm: hart_stop");
    r = CALL2(EXT_RFENCE, 0, 0, -1UL);
    check(r.error == 0, "rfence: remote_fence_i with a stopped hart");
    r = CALL3(EXT_HSM, 0, other, (unsigned long)secondary_entry, 77);
    check(r.error == 0 && wait_for(&sec_runs, 2) && LOAD(sec_opaque) == 77, "hsm: restart");
    STORE(sec_stop, 1);
    check(wait_status(other, HSM_STOPPED), "hsm: second hart_stop");

    /* Retentive suspend, woken by the timer */
    unsigned long ticks = timer_ticks[hartid];
    csr_clear(sstatus, SSTATUS_SIE);
    CALL1(EXT_TIME, 0, now() + TIMEBASE_HZ / 1000);
    r = CALL1(EXT_HSM, 3, 0);
    csr_set(sstatus, SSTATUS_SIE);
    check(r.error == 0 && wait_for(&timer_ticks[hartid], ticks + 1), "hsm: retentive suspend");

    /* DBCN */
    static const char msg[] = "dbcn: console_write\n";
    r = CALL3(EXT_DBCN, 0, sizeof(msg) - 1, (unsigned long)msg, 0);
    check(r.error == 0 && r.value == sizeof(msg) - 1, "dbcn: console_write count");
    check(CALL1(EXT_DBCN, 2, '*').error == 0, "dbcn: console_write_byte");
    static char buf[8];
    r = CALL3(EXT_DBCN, 1, sizeof(buf), (unsigned long)buf, 0);
    check(r.error == 0 && (unsigned long)r.value <= sizeof(buf), "dbcn: console_read");
    r = CALL3(EXT_DBCN, 0, 16, 0x80000000, 0);
    check(r.error == ERR_INVALID_PARAM, "dbcn: firmware memory refused");
    r = CALL3(EXT_DBCN, 0, 4, 0x10, 0); /* nothing there: access fault in M-mode */
    check(r.error == ERR_INVALID_PARAM && r.value == 0, "dbcn: unmapped memory refused");
    long c = sbi_legacy(0x02, 0);
    check(c >= -1 && c <= 255, "legacy console_getchar");

    /* SRST */
    check(CALL2(EXT_SRST, 0, 5, 0).error == ERR_INVALID_PARAM, "srst: bad type refused");
    puts_("all SBI checks passed, shutting down\n");
    CALL2(EXT_SRST, 0, 0, 0);
    fail(98);
}
