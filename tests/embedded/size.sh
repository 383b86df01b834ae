#!/usr/bin/env bash
# Code size of one small firmware program per way of joining four futures (tests/embedded/size):
# `.text` bytes of each image and over the plain loop (`baseline`), for thumbv7em-none-eabihf,
# opt-level "s", LTO, one codegen unit, panic = "abort". Needs rustup's llvm-tools component.
set -euo pipefail
cd "$(dirname "$0")/size"
rustup component add llvm-tools >/dev/null 2>&1 || true
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || true
cargo build --release --bins
bin="$(dirname "$(rustc --print target-libdir)")/bin"
text() { "$bin/llvm-size" -A "target/thumbv7em-none-eabihf/release/$1" | awk '$1 == ".text" { print $2 }'; }
base=$(text baseline)
printf '%-26s %6s %9s\n' image .text 'over loop'
for image in baseline gather join_array futures_concurrency_join join4 gather_fail_fast join_array_first_error gather_deadline; do
  size=$(text "$image")
  printf '%-26s %6d %9d\n' "$image" "$size" $((size - base))
done
