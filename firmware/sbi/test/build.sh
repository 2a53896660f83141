#!/bin/sh
# Build the SBI test payload: payload.c, start.S -> turing-sbi-test.elf, an
# S-mode kernel for 0x80200000 that exercises every function of the Turing
# SBI firmware and ends with an SBI shutdown (finisher 0x5555) or, on a failed
# check n, a direct finisher write of 0x3333 | n << 16.
# Usage: build.sh [OUTPUT_DIR]   (default: this script's directory)
# Try: qemu-system-riscv64 -M virt -smp 2 -m 256M -nographic \
#        -bios ../turing-sbi.bin -kernel turing-sbi-test.elf
# The output is deterministic.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cross=${CROSS_COMPILE:-riscv64-unknown-elf-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

cd "$here"
export LC_ALL=C SOURCE_DATE_EPOCH=0
cflags="-march=rv64imac_zicsr_zifencei -mabi=lp64 -mcmodel=medany
    -ffreestanding -nostdlib -O2 -fno-builtin -fno-common -fno-stack-protector
    -fno-pic -fno-asynchronous-unwind-tables -fno-unwind-tables
    -Wall -Wextra -Werror"
# Objects under fixed names, linked from the temp dir, so that no random
# temporary name ends up in the ELF's symbol table.
# shellcheck disable=SC2086
"${cross}gcc" $cflags -c -o "$tmp/start.o" start.S
# shellcheck disable=SC2086
"${cross}gcc" $cflags -c -o "$tmp/payload.o" payload.c
cp payload.ld "$tmp/"
cd "$tmp"
"${cross}gcc" -march=rv64imac_zicsr_zifencei -mabi=lp64 -nostdlib -nostartfiles -static \
    -T payload.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
    -o turing-sbi-test.elf start.o payload.o
rm -f "$out/turing-sbi-test.elf"
cat turing-sbi-test.elf > "$out/turing-sbi-test.elf"
