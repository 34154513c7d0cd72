#!/usr/bin/env bash
# Times loopback transfers between two Chiral daemons over the HTTP transport: MB/s, CPU seconds per GiB of each
# daemon (user+system, from /proc), and the raw hashing speed of the same file as the bound a transfer should
# approach (the downloader verifies every chunk and the whole file: two SHA-256 passes).
#   tests/bench/transfer-bench.sh [SIZE_MIB] [RUNS]
# The same file is downloaded RUNS times (default 4) by the same two daemons: run 1 is cold (fresh JVMs, the JIT
# still compiling), the last is steady state.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/releng/env.sh"; chiral_find_java
SIZE_MIB=${1:-1024}
RUNS=${2:-4}
W=$(mktemp -d /tmp/chiral-bench.XXXXXX)
A=; Bp=
cleanup() {
  for p in $A $Bp; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)
cpu() { awk -v t="$TICK" '{printf "%.2f %.2f", $14/t, $15/t}' "/proc/$1/stat"; }
wait_up() { for _ in $(seq 150); do "$ROOT/chiral" --data "$1" protocols 2>/dev/null | grep -q '^http' && return 0; sleep 0.2; done; echo "node $1 did not start" >&2; exit 1; }
export CHIRAL_NO_BUILD=1
"$ROOT/chiral" daemon --data "$W/a" --bind 127.0.0.1 > "$W/a.log" 2>&1 & A=$!
"$ROOT/chiral" daemon --data "$W/b" --bind 127.0.0.1 > "$W/b.log" 2>&1 & Bp=$!
wait_up "$W/a"; wait_up "$W/b"
ADDR=$("$ROOT/chiral" --data "$W/a" id | awk '$1=="http" && $2 ~ /^127\./ {print $2; exit}')

f="$W/file.bin"
head -c "${SIZE_MIB}M" /dev/urandom > "$f"
t0=$(date +%s.%N); CID=$("$ROOT/chiral" --data "$W/a" add "$f" | tail -n1); t1=$(date +%s.%N)
s0=$(date +%s.%N); openssl dgst -sha256 "$f" >/dev/null; s1=$(date +%s.%N)
echo "== ${SIZE_MIB} MiB over loopback, HTTP transport, two daemons on 127.0.0.1 ($(nproc) cores)"
python3 -c "import sys; f=float; n=int(sys.argv[1])*1048576; print(f'add (CID + chunk hashes + Merkle root): {n/1e6/(f(sys.argv[3])-f(sys.argv[2])):.0f} MB/s (includes the client JVM start); openssl sha256 of the file: {n/1e6/(f(sys.argv[5])-f(sys.argv[4])):.0f} MB/s')" "$SIZE_MIB" "$t0" "$t1" "$s0" "$s1"
for i in $(seq "$RUNS"); do
  ca0=$(cpu $A); cb0=$(cpu $Bp); t2=$(date +%s.%N)
  "$ROOT/chiral" --data "$W/b" --json get "$CID" --from "$ADDR" -o "$W/out" > "$W/run$i.json"
  t3=$(date +%s.%N); ca1=$(cpu $A); cb1=$(cpu $Bp)
  cmp -s "$f" "$W/out/file.bin" || { echo "MISMATCH: downloaded file differs" >&2; exit 1; }
  rm -f "$W/out/file.bin"
  python3 - "$i" "$SIZE_MIB" "$t2" "$t3" $ca0 $ca1 $cb0 $cb1 <<'PY'
import sys
run, mib, t2, t3, au0, as0, au1, as1, bu0, bs0, bu1, bs1 = sys.argv[1:]
f = float
size = int(mib) * 1048576; gib = size / 2**30; xfer = f(t3) - f(t2)
print(f"run {run}: get {xfer:5.2f} s = {size/1e6/xfer:4.0f} MB/s | CPU s/GiB: seeder {(f(au1)-f(au0))/gib:.2f} user"
      f" + {(f(as1)-f(as0))/gib:.2f} sys, downloader {(f(bu1)-f(bu0))/gib:.2f} user + {(f(bs1)-f(bs0))/gib:.2f} sys")
PY
done
"$ROOT/chiral" --data "$W/a" stop >/dev/null; "$ROOT/chiral" --data "$W/b" stop >/dev/null
wait $A $Bp 2>/dev/null || true
A=; Bp=
