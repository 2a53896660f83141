/* Integer hash: table-driven CRC-32 (zlib's polynomial) over a 1 MiB buffer,
 * many passes, each pass chaining the previous CRC into the buffer. */
#include "workload.h"

#define BUF_SIZE (1u << 20)
#define PASSES SCALE(96, 2)
#define EXPECTED_FULL 0x563b4acb02e75bfcULL
#define EXPECTED_SMALL 0x000000074a83599aULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

static uint8_t buf[BUF_SIZE];
static uint32_t table[256];

static uint64_t workload(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint64_t seed = 0x1234;
    for (uint32_t i = 0; i < BUF_SIZE; i += 8) {
        uint64_t r = next_random(&seed);
        for (int b = 0; b < 8; b++) buf[i + b] = (uint8_t)(r >> (8 * b));
    }
    uint64_t sum = 0;
    for (int pass = 0; pass < PASSES; pass++) {
        uint32_t crc = 0xffffffffu;
        for (uint32_t i = 0; i < BUF_SIZE; i++) crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
        crc ^= 0xffffffffu;
        buf[pass % BUF_SIZE] ^= (uint8_t)crc;
        sum = sum * 31 + crc;
    }
    return sum;
}

#define WORKLOAD_MAIN
#include "workload.h"
