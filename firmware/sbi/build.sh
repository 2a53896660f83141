#!/bin/sh
# Rebuild the Turing SBI firmware: *.c, entry.S -> turing-sbi.bin (raw image
# for 0x80000000).
# Usage: build.sh [OUTPUT_DIR]   (default: this script's directory)
# The output is deterministic, so a test can rebuild into a temp dir and
# compare it byte for byte with the committed turing-sbi.bin.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cross=${CROSS_COMPILE:-riscv64-unknown-elf-}

# The ELF is only an intermediate; keep it out of the source tree.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# Build from the source directory with relative paths and no debug info so
# nothing path-dependent can leak into the output; the C locale pins tool
# messages and behaviour.
cd "$here"
export LC_ALL=C SOURCE_DATE_EPOCH=0
"${cross}gcc" -march=rv64imac_zicsr_zifencei -mabi=lp64 -mcmodel=medany \
    -ffreestanding -nostdlib -nostartfiles -static -O2 \
    -fno-builtin -fno-common -fno-stack-protector -fno-pic \
    -fno-asynchronous-unwind-tables -fno-unwind-tables \
    -Wall -Wextra -Werror \
    -T sbi.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
    -o "$tmp/turing-sbi.elf" entry.S sbi.c console.c fdt.c
"${cross}objcopy" -O binary "$tmp/turing-sbi.elf" "$tmp/turing-sbi.bin"
if [ -n "${TURING_SBI_ELF:-}" ]; then
    cp "$tmp/turing-sbi.elf" "$TURING_SBI_ELF"
fi
# Plain data, not an executable: do not inherit the ELF's mode bits.
rm -f "$out/turing-sbi.bin"
cat "$tmp/turing-sbi.bin" > "$out/turing-sbi.bin"
