#!/usr/bin/env bash
# Code size of one small firmware program per way of joining four futures (tests/embedded/size):
# `.text` bytes of each image and over the plain loop (`baseline`), for thumbv7em-none-eabihf,
# opt-level "s", LTO, one codegen unit, panic = "abort". Needs rustup's llvm-tools component.
#
# Then checks the targets of the README's "On microcontrollers": `gather` settle-all adds no
# more than embassy `join_array` with the same counting by hand, and fail-fast no more than
# `join_array` with a hand-written first-error search. Exits 1 if either is over.
#
# One compiler, named here, so that the figures (and the checks) are the same on every
# machine: another version may move them by a few bytes either way.
set -euo pipefail
toolchain=1.95.0
cd "$(dirname "$0")/size"
rustup toolchain install "$toolchain" --profile minimal --target thumbv7em-none-eabihf \
  --component llvm-tools >/dev/null
cargo "+$toolchain" build --release --bins
bin="$(dirname "$(rustc "+$toolchain" --print target-libdir)")/bin"
text() { "$bin/llvm-size" -A "target/thumbv7em-none-eabihf/release/$1" | awk '$1 == ".text" { print $2 }'; }
base=$(text baseline)
declare -A over
printf '%-26s %6s %9s\n' image .text 'over loop'
for image in baseline gather join_array futures_concurrency_join join4 gather_fail_fast join_array_first_error gather_deadline; do
  size=$(text "$image")
  over[$image]=$((size - base))
  printf '%-26s %6d %9d\n' "$image" "$size" "${over[$image]}"
done

status=0
# at_most OURS ANCHOR: OURS adds no more code than ANCHOR.
at_most() {
  if (( over[$1] <= over[$2] )); then
    echo "target met: $1 (${over[$1]}) <= $2 (${over[$2]})"
  else
    echo "TARGET MISSED: $1 adds ${over[$1]} bytes, $2 ${over[$2]}" >&2
    status=1
  fi
}
at_most gather join_array
at_most gather_fail_fast join_array_first_error
exit $status
