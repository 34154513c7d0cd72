#!/usr/bin/env bash
# Times a loopback transfer (default 1 GiB) between two Chiral daemons over the HTTP transport and prints MB/s,
# CPU seconds per GiB of each daemon, and the same file's raw hashing speed (sha256sum, and the JDK's SHA-256) as
# the bound the transfer should approach. Usage: tests/bench/transfer-bench.sh [SIZE_MIB]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/releng/env.sh"; chiral_find_java
SIZE_MIB=${1:-1024}
W=$(mktemp -d /tmp/chiral-bench.XXXXXX)
A=; Bp=
cleanup() {
  for p in $A $Bp; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)
cpu() { awk -v t="$TICK" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
wait_up() { for _ in $(seq 150); do "$ROOT/chiral" --data "$1" id >/dev/null 2>&1 && "$ROOT/chiral" --data "$1" protocols 2>/dev/null | grep -q '^http' && return 0; sleep 0.2; done; echo "node $1 did not start" >&2; exit 1; }

echo "== loopback transfer of ${SIZE_MIB} MiB, HTTP transport, two daemons on 127.0.0.1"
head -c "${SIZE_MIB}M" /dev/urandom > "$W/file.bin"
export CHIRAL_NO_BUILD=1
"$ROOT/chiral" daemon --data "$W/a" --bind 127.0.0.1 > "$W/a.log" 2>&1 & A=$!
"$ROOT/chiral" daemon --data "$W/b" --bind 127.0.0.1 > "$W/b.log" 2>&1 & Bp=$!
wait_up "$W/a"; wait_up "$W/b"
t0=$(date +%s.%N)
CID=$("$ROOT/chiral" --data "$W/a" add "$W/file.bin" | tail -n1)
t1=$(date +%s.%N)
ADDR=$("$ROOT/chiral" --data "$W/a" id | awk '$1=="http" && $2 ~ /^127\./ {print $2; exit}')
ca0=$(cpu $A); cb0=$(cpu $Bp)
t2=$(date +%s.%N)
"$ROOT/chiral" --data "$W/b" --json get "$CID" --from "$ADDR" -o "$W/out" > "$W/summary.json"
t3=$(date +%s.%N)
ca1=$(cpu $A); cb1=$(cpu $Bp)
cmp -s "$W/file.bin" "$W/out/file.bin" || { echo "MISMATCH: downloaded file differs" >&2; exit 1; }
s0=$(date +%s.%N); sha256sum "$W/file.bin" >/dev/null; s1=$(date +%s.%N)
python3 - "$SIZE_MIB" "$t0" "$t1" "$t2" "$t3" "$ca0" "$ca1" "$cb0" "$cb1" "$s0" "$s1" <<'PY'
import sys
mib, t0, t1, t2, t3, ca0, ca1, cb0, cb1, s0, s1 = sys.argv[1:]
mib = int(mib); size = mib * 1048576; gib = size / 2**30
add, xfer, sha = float(t1) - float(t0), float(t3) - float(t2), float(s1) - float(s0)
print(f"add (hash {mib} MiB):       {add:6.2f} s  {size/1e6/add:7.0f} MB/s")
print(f"get (transfer+verify):     {xfer:6.2f} s  {size/1e6/xfer:7.0f} MB/s")
print(f"sha256sum of the same file:{sha:6.2f} s  {size/1e6/sha:7.0f} MB/s")
print(f"CPU per GiB: seeder {(float(ca1)-float(ca0))/gib:.2f} s, downloader {(float(cb1)-float(cb0))/gib:.2f} s")
print(f"transfer / sha256sum speed = {sha/xfer:.2f}")
PY
"$ROOT/chiral" --data "$W/a" stop >/dev/null; "$ROOT/chiral" --data "$W/b" stop >/dev/null
A=; Bp=
