#!/bin/sh
# Rebuild the Turing demo guest: demo.S -> demo.bin (raw image for 0x80000000).
# Usage: build.sh [OUTPUT_DIR]   (default: this script's directory)
# The output is deterministic, so a test can rebuild into a temp dir and
# compare it byte for byte with the committed demo.bin.
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

# Build from the source directory with relative paths so nothing
# path-dependent can leak into the output; the C locale pins tool messages
# and behaviour.
cd "$here"
export LC_ALL=C SOURCE_DATE_EPOCH=0
"${cross}gcc" -march=rv64gc_zicsr -mabi=lp64d -nostdlib -nostartfiles -static \
    -T demo.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
    -o "$tmp/demo.elf" demo.S
"${cross}objcopy" -O binary "$tmp/demo.elf" "$tmp/demo.bin"
# Plain data, not an executable: do not inherit the ELF's mode bits.
rm -f "$out/demo.bin"
cat "$tmp/demo.bin" > "$out/demo.bin"
