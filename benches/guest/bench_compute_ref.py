#!/usr/bin/env python3
"""Host reference for bench_compute.c: prints the checksum it must report.
Keep BUF_SIZE, ROUNDS and SIEVE_N in step with the C source."""
import hashlib
import struct
import zlib

BUF_SIZE = 1 << 20
ROUNDS = 16
SIEVE_N = 4000000
M64 = (1 << 64) - 1

x = 0x9E3779B97F4A7C15
words = []
for _ in range(BUF_SIZE // 8):
    x ^= x >> 12
    x ^= (x << 25) & M64
    x ^= x >> 27
    words.append((x * 0x2545F4914F6CDD1D) & M64)
buf = bytearray(struct.pack('<%dQ' % len(words), *words))

digest = bytes(32)
for _ in range(ROUNDS):
    buf[0:32] = digest
    digest = hashlib.sha256(buf).digest()
crc = zlib.crc32(buf) & 0xFFFFFFFF

sieve = bytearray([1]) * (SIEVE_N + 1)
sieve[0] = sieve[1] = 0
i = 2
while i * i <= SIEVE_N:
    if sieve[i]:
        sieve[i * i::i] = bytes(len(range(i * i, SIEVE_N + 1, i)))
    i += 1
primes = sum(sieve)

d64 = int.from_bytes(digest[:8], 'big')
checksum = d64 ^ (crc << 32) ^ primes
print('sha256[0..8]=%016x crc32=%08x primes=%d' % (d64, crc, primes))
print('EXPECTED 0x%016xULL' % checksum)
