#!/usr/bin/env bash
# dist.sh BINARY OUT_DIR: the binary as it is shipped. OUT_DIR/<name> is stripped of its debug
# info (a tenth of the size) and links, through its .gnu_debuglink section, to OUT_DIR/<name>.debug,
# which holds that debug info: gdb, perf and Rust's own backtraces find it there when it sits beside
# the binary. Symbols stay in the binary, so a panic's backtrace names functions without it.
set -euo pipefail
if [ $# -ne 2 ] || [ ! -f "$1" ]; then
  echo "usage: scripts/dist.sh BINARY OUT_DIR" >&2
  exit 2
fi
binary=$1
out=$2
name=$(basename "$binary")
mkdir -p "$out"
# Built in a scratch folder, then moved: a reader sees the old pair or the new one.
tmp=$(mktemp -d "$out/.dist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
objcopy --only-keep-debug --compress-debug-sections=zlib "$binary" "$tmp/$name.debug"
objcopy --strip-debug --add-gnu-debuglink="$tmp/$name.debug" "$binary" "$tmp/$name"
mv -f "$tmp/$name.debug" "$out/$name.debug"
mv -f "$tmp/$name" "$out/$name"
ls -l "$out/$name" "$out/$name.debug"
