#!/usr/bin/env bash
# Multi-source speed-up: four seeding daemons on 127.0.0.1, each limited to the same upload rate, serve one file;
# a downloader gets it from one seeder, then from all four (a fresh downloader daemon and data directory each
# time, so both runs start equally cold). Prints MB/s of each `get` and the speed-up (target >= 3.5x).
#   tests/bench/multisource-bench.sh [SIZE_MIB] [RATE]        defaults: 128 MiB, 8M (bytes/s per seeder)
# Times are wall-clock around the whole `chiral get` (client start, metadata, transfer, whole-file check); the
# node's own transfer time from `get --json` (elapsedSeconds) is printed beside it, and so is the time of one
# client round trip (`chiral id`), the fixed cost every `get` pays on top of the node's work.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/releng/env.sh"; chiral_find_java
SIZE_MIB=${1:-128}
RATE=${2:-8M}
W=$(mktemp -d /tmp/chiral-msbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
wait_up() { for _ in $(seq 150); do "$ROOT/chiral" --data "$1" protocols 2>/dev/null | grep -q '^http' && return 0; sleep 0.2; done; echo "node $1 did not start" >&2; exit 1; }
addr() { "$ROOT/chiral" --data "$1" id | awk '$1=="http" && $2 ~ /^127\./ {print $2; exit}'; }
export CHIRAL_NO_BUILD=1

for s in 1 2 3 4; do
  "$ROOT/chiral" daemon --data "$W/s$s" --bind 127.0.0.1 --max-upload-rate "$RATE" > "$W/s$s.log" 2>&1 & PIDS+=($!)
done
f="$W/file.bin"
head -c "${SIZE_MIB}M" /dev/urandom > "$f"
ADDRS=()
for s in 1 2 3 4; do
  wait_up "$W/s$s"
  CID=$("$ROOT/chiral" --data "$W/s$s" add "$f" | tail -n1)
  ADDRS+=("$(addr "$W/s$s")")
done
echo "== ${SIZE_MIB} MiB, HTTP transport, 4 seeders at --max-upload-rate $RATE each, all on 127.0.0.1 ($(nproc) cores)"

# run NAME FROM: fresh downloader, one timed get, file compared, downloader stopped; prints "seconds elapsed"
run() {
  local d="$W/d-$1"
  "$ROOT/chiral" daemon --data "$d" --bind 127.0.0.1 > "$d.log" 2>&1 & local dp=$!
  PIDS+=($dp)
  wait_up "$d"
  local t0 t1
  t0=$(date +%s.%N)
  "$ROOT/chiral" --data "$d" --json get "$CID" --from "$2" -o "$d/out" > "$W/$1.json"
  t1=$(date +%s.%N)
  cmp -s "$f" "$d/out/file.bin" || { echo "MISMATCH: file from $1 differs" >&2; exit 1; }
  "$ROOT/chiral" --data "$d" stop > /dev/null
  wait "$dp" 2>/dev/null || true
  python3 - "$t0" "$t1" "$W/$1.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[3]))
print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f} {j['elapsedSeconds']:.3f}")
PY
}

c0=$(date +%s.%N); "$ROOT/chiral" --data "$W/s1" id > /dev/null; c1=$(date +%s.%N)
one=$(run one "${ADDRS[0]}")
all=$(run all "$(IFS=,; echo "${ADDRS[*]}")")
python3 - "$SIZE_MIB" "$one" "$all" "$W/all.json" "$c0" "$c1" <<'PY'
import json, sys
size = int(sys.argv[1]) * 1048576
client = float(sys.argv[6]) - float(sys.argv[5])
one_wall, one_node = map(float, sys.argv[2].split())
all_wall, all_node = map(float, sys.argv[3].split())
per = json.load(open(sys.argv[4]))["bytesPerSource"]
print(f"1 seeder : get {one_wall:6.2f} s = {size/1e6/one_wall:6.1f} MB/s   (node transfer {one_node:6.2f} s = {size/1e6/one_node:6.1f} MB/s)")
print(f"4 seeders: get {all_wall:6.2f} s = {size/1e6/all_wall:6.1f} MB/s   (node transfer {all_node:6.2f} s = {size/1e6/all_node:6.1f} MB/s)")
print("  bytes per source: " + ", ".join(f"{v / 1048576:.1f} MiB" for v in per.values()))
print(f"one client round trip (chiral id): {client:.2f} s")
print(f"speed-up 4 vs 1: {one_wall/all_wall:.2f}x wall-clock get, {one_node/all_node:.2f}x node transfer (target >= 3.5x)")
PY
for s in 1 2 3 4; do "$ROOT/chiral" --data "$W/s$s" stop > /dev/null || true; done
wait 2>/dev/null || true
PIDS=()
