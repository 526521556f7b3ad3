#!/usr/bin/env bash
# Long fuzzing of one target on the stable toolchain (cargo-fuzz needs nightly features;
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them). Runs at the lowest CPU priority so that it
# only takes idle time, with the target's corpus (fuzz/corpus/TARGET, not committed) and its
# committed seeds (fuzz/seeds/TARGET). Prints libFuzzer's final statistics.
#
#   scripts/fuzz-long.sh TARGET [SECONDS=3600] [LOG=/tmp/fuzz-TARGET.log]
#
# The binary is copied before it runs, so a rebuild of the fuzz crate meanwhile does not touch
# the running one. Findings land in fuzz/artifacts/TARGET; add each one, minimised
# (`cargo fuzz tmin`), to fuzz/regressions/TARGET so that it replays in scripts/test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target=${1:?target name}
seconds=${2:-3600}
log=${3:-/tmp/fuzz-$target.log}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
RUSTC_BOOTSTRAP=1 nice -n 19 cargo +stable fuzz build -O "$target"
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
cp "target/x86_64-unknown-linux-gnu/release/$target" "$bin_dir/"
mkdir -p "corpus/$target" "artifacts/$target" "seeds/$target"
seeds=("seeds/$target")
[ -d "regressions/$target" ] && seeds+=("regressions/$target")
nice -n 19 "$bin_dir/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
  -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
  "corpus/$target" "${seeds[@]}" >"$log" 2>&1 || true
grep -E '^stat::|^Done|ERROR|SUMMARY' "$log" || tail -5 "$log"
