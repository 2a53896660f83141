/*
 * Turing SBI: the one thing taken from the device tree, the set of harts.
 */
#include "sbi.h"

#define FDT_MAGIC 0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int str_prefix(const char *s, const char *prefix)
{
    while (*prefix) {
        if (*s++ != *prefix++)
            return 0;
    }
    return 1;
}

static unsigned long str_len(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    return n;
}

/*
 * Hart ids (below MAX_HARTS) of the /cpus/cpu@* nodes whose status is not
 * "disabled"; 0 if the tree cannot be read.
 */
unsigned long fdt_hart_mask(const void *fdt)
{
    const uint8_t *base = fdt;
    if (base == 0 || ((uintptr_t)base & 3) != 0 || be32(base) != FDT_MAGIC)
        return 0;
    uint32_t total = be32(base + 4);
    uint32_t off_struct = be32(base + 8);
    uint32_t off_strings = be32(base + 12);
    uint32_t size_struct = be32(base + 36);
    if (off_struct >= total || size_struct > total - off_struct || off_strings >= total)
        return 0;

    const uint8_t *p = base + off_struct;
    const uint8_t *end = p + size_struct;
    const char *strings = (const char *)base + off_strings;
    unsigned long mask = 0;
    int depth = 0, in_cpus = 0, in_cpu = 0, disabled = 0;
    long reg = -1;

    while (p + 4 <= end) {
        uint32_t token = be32(p);
        p += 4;
        switch (token) {
        case FDT_BEGIN_NODE: {
            const char *name = (const char *)p;
            p += (str_len(name) + 1 + 3) & ~3UL;
            depth++;
            if (depth == 2 && str_eq(name, "cpus")) {
                in_cpus = 1;
            } else if (depth == 3 && in_cpus && str_prefix(name, "cpu@")) {
                in_cpu = 1;
                reg = -1;
                disabled = 0;
            }
            break;
        }
        case FDT_END_NODE:
            if (depth == 3 && in_cpu) {
                if (reg >= 0 && reg < MAX_HARTS && !disabled)
                    mask |= 1UL << reg;
                in_cpu = 0;
            } else if (depth == 2) {
                in_cpus = 0;
            }
            if (--depth <= 0)
                return mask;
            break;
        case FDT_PROP: {
            uint32_t len = be32(p);
            const char *name = strings + be32(p + 4);
            const uint8_t *value = p + 8;
            p += 8 + ((len + 3) & ~3U);
            if (depth == 3 && in_cpu) {
                if (str_eq(name, "reg") && len >= 4)
                    reg = be32(value + len - 4);
                else if (str_eq(name, "status") && len >= 4 && str_prefix((const char *)value, "disabled"))
                    disabled = 1;
            }
            break;
        }
        case FDT_NOP:
            break;
        default: /* FDT_END or garbage */
            return mask;
        }
    }
    return mask;
}

static uint64_t read_cells(const uint8_t *p, uint32_t cells)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < cells; i++)
        v = (v << 32) | be32(p + 4 * i);
    return v;
}

static void write_cells(uint8_t *p, uint32_t cells, uint64_t v)
{
    for (uint32_t i = cells; i-- > 0;) {
        uint32_t w = (uint32_t)v;
        p[4 * i] = (uint8_t)(w >> 24);
        p[4 * i + 1] = (uint8_t)(w >> 16);
        p[4 * i + 2] = (uint8_t)(w >> 8);
        p[4 * i + 3] = (uint8_t)w;
        v >>= 32;
    }
}

/*
 * Hides [base, end) from the OS by trimming the RAM ranges of the /memory
 * nodes that start inside it, in place: the tree keeps its size and layout,
 * only numbers in `reg` change. Returns 1 if no RAM range still overlaps
 * [base, end), 0 if one does (a range starting below base) or the tree
 * cannot be read.
 */
int fdt_trim_memory(void *fdt, uint64_t base, uint64_t end)
{
    uint8_t *b = fdt;
    if (b == 0 || ((uintptr_t)b & 3) != 0 || be32(b) != FDT_MAGIC)
        return 0;
    uint32_t total = be32(b + 4);
    uint32_t off_struct = be32(b + 8);
    uint32_t off_strings = be32(b + 12);
    uint32_t size_struct = be32(b + 36);
    if (off_struct >= total || size_struct > total - off_struct || off_strings >= total)
        return 0;

    uint8_t *p = b + off_struct;
    const uint8_t *stop = p + size_struct;
    const char *strings = (const char *)b + off_strings;
    uint32_t addr_cells = 2, size_cells = 1; /* defaults of the spec */
    int depth = 0, in_memory = 0, ok = 1;

    while (p + 4 <= stop) {
        uint32_t token = be32(p);
        p += 4;
        if (token == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            p += (str_len(name) + 1 + 3) & ~3UL;
            depth++;
            in_memory = depth == 2 && (str_eq(name, "memory") || str_prefix(name, "memory@"));
        } else if (token == FDT_END_NODE) {
            in_memory = 0;
            if (--depth <= 0)
                break;
        } else if (token == FDT_PROP) {
            uint32_t len = be32(p);
            const char *name = strings + be32(p + 4);
            uint8_t *value = p + 8;
            p += 8 + ((len + 3) & ~3U);
            if (depth == 1 && len == 4 && str_eq(name, "#address-cells"))
                addr_cells = be32(value);
            else if (depth == 1 && len == 4 && str_eq(name, "#size-cells"))
                size_cells = be32(value);
            else if (in_memory && str_eq(name, "reg") && addr_cells >= 1 && addr_cells <= 2 &&
                     size_cells >= 1 && size_cells <= 2) {
                uint32_t entry = 4 * (addr_cells + size_cells);
                for (uint32_t off = 0; off + entry <= len; off += entry) {
                    uint64_t addr = read_cells(value + off, addr_cells);
                    uint64_t size = read_cells(value + off + 4 * addr_cells, size_cells);
                    uint64_t last = addr + size;
                    if (size == 0 || last <= base || addr >= end)
                        continue;
                    if (addr < base) {
                        ok = 0;
                        continue;
                    }
                    uint64_t new_addr = last > end ? end : last;
                    write_cells(value + off, addr_cells, new_addr);
                    write_cells(value + off + 4 * addr_cells, size_cells, last - new_addr);
                }
            }
        } else if (token != FDT_NOP) {
            break;
        }
    }
    return ok;
}
