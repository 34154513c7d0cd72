#!/usr/bin/env bash
# BitTorrent loopback benchmark: one seeder process and one leecher process on 127.0.0.1, direct connection.
# Per run: MB/s (10^6 bytes/s; wall clock measured by the leecher from the moment it is told to connect to the
# seeder until it has every piece) and CPU seconds per GiB (user+system from /proc/PID/stat, deltas over the
# transfer only: after both are ready, until the leecher reports done) for the seeder and the leecher separately.
# Prints one human line and one JSON line per run, then the median per pair (human + JSON).
#
#   tests/bench/bt-bench.sh [--size 1G|512M|BYTES] [--pairs lt-lt,chiral-chiral,chiral-lt,lt-chiral] [--runs 3]
#                           [--piece-length BYTES] [--v1-only] [--keep]
#
# A pair is SEEDER-LEECHER.  Each side is a driver with the JSON-lines interface of tests/interop/btdriver.py:
#   seed TORRENT DATA_DIR -> {"ready":true,"port":P,"pid":PID}; leech TORRENT SAVE_DIR -> {"ready":true,...};
#   stdin {"connect":"127.0.0.1:P"} -> ... {"done":true,"seconds":S,"bytes":N}; stdin EOF -> exit.
# Clients: lt (tests/interop/lt_peer.py), aria2, qbt (tests/interop/*_peer.py; aria2 needs --v1-only), chiral
# (tests/interop/chiral_peer.py: a `chiral daemon` per side; "seconds" is the node's own transfer time).
# The default piece length is libtorrent's automatic choice (512 KiB for 1 GiB with libtorrent 2.0.8).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
INTEROP="$ROOT/tests/interop"
SIZE=1G
PAIRS=lt-lt
RUNS=3
PIECE=0
V1ONLY=
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --size) SIZE=$2; shift 2 ;;
        --pairs) PAIRS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --piece-length) PIECE=$2; shift 2 ;;
        --v1-only) V1ONLY=--v1-only; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BYTES=$($PY -c "import sys; s=sys.argv[1].upper(); m={'K':2**10,'M':2**20,'G':2**30}; print(int(float(s[:-1])*m[s[-1]]) if s[-1] in m else int(s))" "$SIZE")
W=$(mktemp -d /tmp/bt-bench.XXXXXX)
TICK=$(getconf CLK_TCK)
PIDS=()
FDS=()
cleanup() {
    local fd pid
    for fd in "${FDS[@]}"; do eval "exec $fd>&-" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill "$pid" 2>/dev/null
    done
    if [ "$KEEP" = 1 ]; then echo "work dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- drivers: driver_NAME prints the command that runs a JSON-lines driver for client NAME (exit 1: none yet)
driver_lt() { echo "$PY $INTEROP/lt_peer.py"; }
driver_aria2() { echo "$PY $INTEROP/aria2_peer.py"; }
driver_qbt() { echo "$PY $INTEROP/qbt_peer.py"; }
driver_chiral() { echo "$PY $INTEROP/chiral_peer.py"; }

# ---- process plumbing (stdin of each driver is a FIFO held open here; EOF makes it quit)
start() {   # start NAME CMD...
    local name=$1 fd
    shift
    mkfifo "$W/$name.in"
    "$@" <"$W/$name.in" >"$W/$name.out" 2>"$W/$name.err" &
    PIDS+=($!)
    eval "PID_$name=$!"
    exec {fd}>"$W/$name.in"
    FDS+=("$fd")
    eval "FD_$name=$fd"
}
stop() {
    local fd pid
    eval "fd=\$FD_$1 pid=\$PID_$1"
    eval "exec $fd>&-"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill "$pid" 2>/dev/null
}
send() { local fd; eval "fd=\$FD_$1"; echo "$2" >&"$fd"; }
wait_for() {   # wait_for NAME KEY TIMEOUT -> LINE
    local name=$1 key=$2 t=$3
    for _ in $(seq $((t * 20))); do
        LINE=$(grep -a "\"$key\": true" "$W/$name.out" | head -n1)
        [ -n "$LINE" ] && return 0
        LINE=$(grep -a '"error"' "$W/$name.out" | head -n1)
        [ -n "$LINE" ] && return 1
        eval "kill -0 \$PID_$name" 2>/dev/null || { LINE="driver exited"; return 1; }
        sleep 0.05
    done
    LINE="timeout after ${t}s waiting for $key"
    return 1
}
field() { $PY -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }
cpu() { awk -v t="$TICK" '{printf "%.3f", ($14+$15)/t}' "/proc/$1/stat"; }   # utime+stime of all threads

# ---- one run of SEEDER-LEECHER
run_once() {   # run_once SEEDER LEECHER RUN
    local s=$1 l=$2 run=$3 scmd lcmd sn ln port spid lpid s0 l0 s1 l1
    scmd=$(driver_"$s") || { echo "$s-$l: skipped (not implemented)"; return 3; }
    lcmd=$(driver_"$l") || { echo "$s-$l: skipped (not implemented)"; return 3; }
    sn="seed_${s}_${l}_$run"; ln="leech_${s}_${l}_$run"
    rm -rf "$W/dl"; mkdir -p "$W/dl"
    start "$sn" $scmd seed "$W/bench.torrent" "$W/data" --work "$W/$sn.work" --timeout 300
    if ! wait_for "$sn" ready 300; then echo "$s-$l run $run: seeder failed: $LINE"; stop "$sn"; return 1; fi
    port=$(field "$LINE" port); spid=$(field "$LINE" pid)
    start "$ln" $lcmd leech "$W/bench.torrent" "$W/dl" --work "$W/$ln.work"
    if ! wait_for "$ln" ready 60; then echo "$s-$l run $run: leecher failed: $LINE"; stop "$ln"; stop "$sn"; return 1; fi
    lpid=$(field "$LINE" pid)
    s0=$(cpu "$spid"); l0=$(cpu "$lpid")
    send "$ln" "{\"connect\": \"127.0.0.1:$port\"}"
    if ! wait_for "$ln" done 600; then echo "$s-$l run $run: leecher did not finish: $LINE"; stop "$ln"; stop "$sn"; return 1; fi
    s1=$(cpu "$spid"); l1=$(cpu "$lpid")
    local done_line=$LINE ok=1
    cmp -s "$W/data/bench.bin" "$W/dl/bench.bin" || ok=0
    stop "$ln"; stop "$sn"
    $PY - "$s-$l" "$run" "$done_line" "$s0" "$s1" "$l0" "$l1" "$ok" "$PIECE_LEN" "$(nproc)" "$W/results.jsonl" <<'PY'
import json, sys
pair, run, done, s0, s1, l0, l1, ok, piece, cores, results = sys.argv[1:]
d = json.loads(done)
n, secs = d["bytes"], d["seconds"]
gib = n / 2**30
r = {"pair": pair, "run": int(run), "bytes": n, "seconds": secs, "mb_per_s": round(n / 1e6 / secs, 1),
     "seeder_cpu_s_per_gib": round((float(s1) - float(s0)) / gib, 3),
     "leecher_cpu_s_per_gib": round((float(l1) - float(l0)) / gib, 3),
     "piece_length": int(piece), "cores": int(cores), "verified": ok == "1"}
print(f"{pair} run {run}: {n} bytes in {secs:.3f} s = {r['mb_per_s']:.0f} MB/s | CPU s/GiB: seeder "
      f"{r['seeder_cpu_s_per_gib']:.2f}, leecher {r['leecher_cpu_s_per_gib']:.2f} | file {'verified' if ok == '1' else 'DIFFERS'}")
print(json.dumps(r))
with open(results, "a") as f:
    f.write(json.dumps(r) + "\n")
PY
    [ "$ok" = 1 ]
}

# ---- data
mkdir -p "$W/data"
echo "== preparing $BYTES random bytes and a torrent in $W"
head -c "$BYTES" /dev/urandom >"$W/data/bench.bin"
TI=$($PY "$INTEROP/lt_torrent.py" create "$W/data/bench.bin" "$W/bench.torrent" --piece-length "$PIECE" $V1ONLY)
PIECE_LEN=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["piece_length"])' "$TI")
echo "== bt-bench: $BYTES bytes, piece length $PIECE_LEN ($([ -n "$V1ONLY" ] && echo v1-only || echo libtorrent v1+v2 hybrid)), $(nproc) cores, libtorrent $($PY -c 'import libtorrent; print(libtorrent.__version__)'), pairs $PAIRS, $RUNS runs"

status=0
IFS=, read -r -a PAIR_LIST <<<"$PAIRS"
for pair in "${PAIR_LIST[@]}"; do
    s=${pair%%-*}; l=${pair#*-}
    for run in $(seq "$RUNS"); do
        run_once "$s" "$l" "$run"
        rc=$?
        [ "$rc" = 3 ] && break
        [ "$rc" = 0 ] || status=1
    done
done
# summary: median per pair (human line and JSON line)
[ -f "$W/results.jsonl" ] && $PY - "$W/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for pair in dict.fromkeys(r["pair"] for r in rows):
    rs = [r for r in rows if r["pair"] == pair]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"{pair} median of {len(rs)}: {med('mb_per_s'):.0f} MB/s | CPU s/GiB: seeder {med('seeder_cpu_s_per_gib'):.2f},"
          f" leecher {med('leecher_cpu_s_per_gib'):.2f}")
    print(json.dumps({"pair": pair, "median_of": len(rs), "mb_per_s": round(med("mb_per_s"), 1),
                      "seeder_cpu_s_per_gib": round(med("seeder_cpu_s_per_gib"), 3),
                      "leecher_cpu_s_per_gib": round(med("leecher_cpu_s_per_gib"), 3)}))
# ratios against libtorrent -> libtorrent in this same run (rate: higher is better; CPU: lower is better)
meds = {}
for pair in dict.fromkeys(r["pair"] for r in rows):
    rs = [r for r in rows if r["pair"] == pair]
    meds[pair] = {k: statistics.median(r[k] for r in rs)
                  for k in ("mb_per_s", "seeder_cpu_s_per_gib", "leecher_cpu_s_per_gib")}
if "lt-lt" in meds:
    base = meds["lt-lt"]
    for pair, m in meds.items():
        if pair == "lt-lt":
            continue
        ratio = m["mb_per_s"] / base["mb_per_s"]
        print(f"ratio {pair} / lt-lt: rate {ratio:.2f}x | CPU per GiB seeder {m['seeder_cpu_s_per_gib'] / base['seeder_cpu_s_per_gib']:.2f}x,"
              f" leecher {m['leecher_cpu_s_per_gib'] / base['leecher_cpu_s_per_gib']:.2f}x")
        print(json.dumps({"ratio": f"{pair}/lt-lt", "rate": round(ratio, 3)}))
PY
exit $status
