#!/usr/bin/env bash
# A real BitTorrent download from a Chiral seeder without and during a bounded flood of idle peers (N connections on
# 127.0.0.1 that complete the handshake for the torrent and then say nothing; idle-flood.py). Prints the download
# times, the seeder's RSS and open file descriptors during the flood, and what the flood held.
#   tests/bench/idle-flood-bench.sh [SIZE_MIB=64] [N=1000]
set -euo pipefail
ROOT=${CHIRAL_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SIZE_MIB=${1:-64}; N=${2:-1000}
W=$(mktemp -d /tmp/idle-flood.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
export CHIRAL_NO_BUILD=1
start() { "$ROOT/chiral" daemon --data "$W/$1" --bind 127.0.0.1 --mainline-bootstrap none > "$W/$1.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 300); do "$ROOT/chiral" --data "$W/$1" protocols 2>/dev/null | grep -q '^bittorrent ' && return; sleep 0.2; done
  echo "daemon $1 did not come up" >&2; exit 1; }
mem() { local pid=$1; echo "RSS $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$pid/status), fds $(ls /proc/$pid/fd | wc -l)"; }
start seeder; SEEDER_PID=${PIDS[0]}
start l1; start l2
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/f.bin"
MAGNET=$("$ROOT/chiral" --data "$W/seeder" add --protocol bittorrent "$W/f.bin" | tail -1)
IH=${MAGNET:20:40}
BT=$("$ROOT/chiral" --data "$W/seeder" id | awk '$1=="bittorrent" && $2 ~ /^127\.0\.0\.1:/ {print $2}')
echo "== $SIZE_MIB MiB torrent seeded by a Chiral node at $BT ($(nproc) cores); seeder at rest: $(mem $SEEDER_PID)"
t0=$(date +%s.%N)
"$ROOT/chiral" --data "$W/l1" get "$W/f.bin.torrent" --from "$BT" -o "$W/out1" > /dev/null
echo "without flood: $(echo "$(date +%s.%N) - $t0" | bc) s"
python3 "$ROOT/tests/bench/idle-flood.py" "$BT" "$IH" "$N" 120 > "$W/flood.log" & FLOOD=$!; PIDS+=($FLOOD)
sleep 15
echo "flood of $N idle peers after 15 s: $(tail -1 "$W/flood.log"); seeder: $(mem $SEEDER_PID)," \
  "peers held by the torrent: $("$ROOT/chiral" --data "$W/seeder" --json peers "$IH" | grep -c '"address"')"
t0=$(date +%s.%N)
"$ROOT/chiral" --data "$W/l2" get "$W/f.bin.torrent" --from "$BT" -o "$W/out2" > /dev/null
echo "during the flood: $(echo "$(date +%s.%N) - $t0" | bc) s; flood: $(tail -1 "$W/flood.log"); seeder: $(mem $SEEDER_PID)"
cmp "$W/f.bin" "$W/out2/f.bin" && echo "identical"
kill $FLOOD; wait $FLOOD 2>/dev/null || true
