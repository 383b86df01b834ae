#!/usr/bin/env bash
# Builds both firmware images and runs each on QEMU: the checks run on the emulated board and
# the exit code (over semihosting) says whether all passed; a hang fails after 60 seconds.
# Needs qemu-system-arm (Debian: apt-get install qemu-system-arm).
set -euo pipefail
cd "$(dirname "$0")"
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi >/dev/null 2>&1 || true
for board in microbit lm3s6965; do
  echo "--- $board"
  (cd "$board" && cargo build --release && timeout 60 cargo run --release)
done
