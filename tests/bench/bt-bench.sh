#!/usr/bin/env bash
# BitTorrent loopback benchmark: one seeder process and one leecher process on 127.0.0.1, direct connection.
# Per transfer: MB/s (10^6 bytes/s; wall clock measured by the leecher from the moment it is told to connect to the
# seeder until it has every piece) and CPU seconds per GiB (user+system from /proc/PID/stat, deltas over the
# transfer only) for the seeder and the leecher separately. Before each transfer the previous download is deleted
# and `sync` writes back the page cache, so that no transfer pays for the writeback of another one's data.
#
# A session starts a fresh seeder and a fresh leecher, then times 1 + RUNS transfers between them: the leecher
# forgets each finished download (and deletes it) and fetches the torrent again into a new directory. Transfer 1 of
# a session is "cold" (a process that has never transferred; for a JVM, before the JIT compiler has compiled the
# hot paths), the others are "warm" (the steady state of a long-running node). Both are reported: one human line and
# one JSON line per transfer, then per pair the median of the cold and of the warm transfers, and the ratios
# against lt-lt of the same run.
#
#   tests/bench/bt-bench.sh [--size 1G|512M|BYTES] [--pairs lt-lt,chiral-chiral,chiral-lt,lt-chiral]
#                           [--sessions 3] [--runs 3] [--piece-length BYTES] [--v1-only] [--keep]
#
# A pair is SEEDER-LEECHER.  Each side is a driver with the JSON-lines interface of tests/interop/btdriver.py:
#   seed TORRENT DATA_DIR -> {"ready":true,"port":P,"pid":PID}; leech TORRENT SAVE_DIR -> {"ready":true,...};
#   stdin {"connect":"127.0.0.1:P"} -> ... {"done":true,"seconds":S,"bytes":N}; {"again":DIR} -> {"again":true};
#   stdin EOF -> exit.
# Clients: lt (tests/interop/lt_peer.py) and chiral (tests/interop/chiral_peer.py: a `chiral daemon` per side;
# "seconds" is the node's own transfer time). aria2 and qbt drivers exist but cannot download again in one process.
# The default piece length is libtorrent's automatic choice (512 KiB for 1 GiB with libtorrent 2.0.8).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
INTEROP="$ROOT/tests/interop"
SIZE=1G
PAIRS=lt-lt
RUNS=3
SESSIONS=3
PIECE=0
V1ONLY=
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
        --size) SIZE=$2; shift 2 ;;
        --pairs) PAIRS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --sessions) SESSIONS=$2; shift 2 ;;
        --piece-length) PIECE=$2; shift 2 ;;
        --v1-only) V1ONLY=--v1-only; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
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
wait_for() {   # wait_for NAME KEY TIMEOUT [NTH] -> LINE (the NTH line with "KEY": true; default the first)
    local name=$1 key=$2 t=$3 nth=${4:-1}
    for _ in $(seq $((t * 20))); do
        LINE=$(grep -a "\"$key\": true" "$W/$name.out" | sed -n "${nth}p")
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

# ---- one session of SEEDER-LEECHER: fresh processes, then 1 + RUNS transfers of the same torrent by the same two
# processes (the leecher forgets each finished download and fetches it again into a new directory). Transfer 1 is
# the cold one (a process that has never transferred: for the JVM, before its JIT compiler has seen the hot paths);
# transfers 2..RUNS+1 are the warm ones, the steady state of a long-running node.
run_session() {   # run_session SEEDER LEECHER SESSION
    local s=$1 l=$2 session=$3 scmd lcmd sn ln port spid lpid s0 l0 s1 l1 k dl
    scmd=$(driver_"$s") || { echo "$s-$l: skipped (not implemented)"; return 3; }
    lcmd=$(driver_"$l") || { echo "$s-$l: skipped (not implemented)"; return 3; }
    sn="seed_${s}_${l}_$session"; ln="leech_${s}_${l}_$session"
    start "$sn" $scmd seed "$W/bench.torrent" "$W/data" --work "$W/$sn.work" --timeout 300
    if ! wait_for "$sn" ready 300; then echo "$s-$l session $session: seeder failed: $LINE"; stop "$sn"; return 1; fi
    port=$(field "$LINE" port); spid=$(field "$LINE" pid)
    dl="$W/dl.$ln.1"
    start "$ln" $lcmd leech "$W/bench.torrent" "$dl" --work "$W/$ln.work"
    if ! wait_for "$ln" ready 60; then echo "$s-$l session $session: leecher failed: $LINE"; stop "$ln"; stop "$sn"; return 1; fi
    lpid=$(field "$LINE" pid)
    local rc=0
    for k in $(seq $((RUNS + 1))); do
        if [ "$k" -gt 1 ]; then
            rm -rf "$dl"
            dl="$W/dl.$ln.$k"
            send "$ln" "{\"again\": \"$dl\"}"
            if ! wait_for "$ln" again 120 $((k - 1)); then echo "$s-$l session $session: leecher cannot download again: $LINE"; rc=1; break; fi
        fi
        sync   # every transfer starts without dirty pages: writeback of earlier data would slow its writes
        s0=$(cpu "$spid"); l0=$(cpu "$lpid")
        send "$ln" "{\"connect\": \"127.0.0.1:$port\"}"
        if ! wait_for "$ln" done 600 "$k"; then echo "$s-$l session $session transfer $k: leecher did not finish: $LINE"; rc=1; break; fi
        s1=$(cpu "$spid"); l1=$(cpu "$lpid")
        local done_line=$LINE ok=1 phase=warm
        [ "$k" = 1 ] && phase=cold
        cmp -s "$W/data/bench.bin" "$dl/bench.bin" || { ok=0; rc=1; }
        record "$s-$l" "$session" "$k" "$phase" "$done_line" "$s0" "$s1" "$l0" "$l1" "$ok"
        sleep 1   # let the leecher settle (a Chiral node adds the finished file to its content store)
    done
    rm -rf "$dl"
    stop "$ln"; stop "$sn"
    return $rc
}
record() {   # record PAIR SESSION TRANSFER PHASE DONE_LINE S0 S1 L0 L1 OK
    $PY - "$@" "$PIECE_LEN" "$(nproc)" "$W/results.jsonl" <<'PY'
import json, sys
pair, session, transfer, phase, done, s0, s1, l0, l1, ok, piece, cores, results = sys.argv[1:]
d = json.loads(done)
n, secs = d["bytes"], d["seconds"]
gib = n / 2**30
r = {"pair": pair, "session": int(session), "transfer": int(transfer), "phase": phase, "bytes": n, "seconds": secs,
     "mb_per_s": round(n / 1e6 / secs, 1),
     "seeder_cpu_s_per_gib": round((float(s1) - float(s0)) / gib, 3),
     "leecher_cpu_s_per_gib": round((float(l1) - float(l0)) / gib, 3),
     "piece_length": int(piece), "cores": int(cores), "verified": ok == "1"}
print(f"{pair} session {session} transfer {transfer} ({phase}): {n} bytes in {secs:.3f} s = {r['mb_per_s']:.0f} MB/s"
      f" | CPU s/GiB: seeder {r['seeder_cpu_s_per_gib']:.2f}, leecher {r['leecher_cpu_s_per_gib']:.2f}"
      f" | file {'verified' if ok == '1' else 'DIFFERS'}")
print(json.dumps(r))
with open(results, "a") as f:
    f.write(json.dumps(r) + "\n")
PY
}

# ---- data
mkdir -p "$W/data"
echo "== preparing $BYTES random bytes and a torrent in $W"
head -c "$BYTES" /dev/urandom >"$W/data/bench.bin"
TI=$($PY "$INTEROP/lt_torrent.py" create "$W/data/bench.bin" "$W/bench.torrent" --piece-length "$PIECE" $V1ONLY)
PIECE_LEN=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["piece_length"])' "$TI")
echo "== bt-bench: $BYTES bytes, piece length $PIECE_LEN ($([ -n "$V1ONLY" ] && echo v1-only || echo libtorrent v1+v2 hybrid)), $(nproc) cores, libtorrent $($PY -c 'import libtorrent; print(libtorrent.__version__)'), pairs $PAIRS, $SESSIONS sessions of 1 cold + $RUNS warm transfers"

status=0
IFS=, read -r -a PAIR_LIST <<<"$PAIRS"
for pair in "${PAIR_LIST[@]}"; do
    s=${pair%%-*}; l=${pair#*-}
    for session in $(seq "$SESSIONS"); do
        run_session "$s" "$l" "$session"
        rc=$?
        [ "$rc" = 3 ] && break
        [ "$rc" = 0 ] || status=1
    done
done
# summary: per pair and phase (cold, warm) the medians, then the ratios against lt-lt (human line and JSON line)
[ -f "$W/results.jsonl" ] && $PY - "$W/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ("mb_per_s", "seeder_cpu_s_per_gib", "leecher_cpu_s_per_gib")
meds = {}
for pair in dict.fromkeys(r["pair"] for r in rows):
    for phase in ("cold", "warm"):
        rs = [r for r in rows if r["pair"] == pair and r["phase"] == phase]
        if not rs:
            continue
        m = {k: statistics.median(r[k] for r in rs) for k in keys}
        meds[(pair, phase)] = m
        print(f"{pair} {phase}, median of {len(rs)}: {m['mb_per_s']:.0f} MB/s | CPU s/GiB: seeder"
              f" {m['seeder_cpu_s_per_gib']:.2f}, leecher {m['leecher_cpu_s_per_gib']:.2f}")
        print(json.dumps({"pair": pair, "phase": phase, "median_of": len(rs),
                          **{k: round(v, 3) for k, v in m.items()}}))
# rate: higher is better; CPU: lower is better
for (pair, phase), m in meds.items():
    base = meds.get(("lt-lt", phase))
    if base is None or pair == "lt-lt":
        continue
    ratio = m["mb_per_s"] / base["mb_per_s"]
    print(f"ratio {pair} / lt-lt ({phase}): rate {ratio:.2f}x | CPU per GiB seeder"
          f" {m['seeder_cpu_s_per_gib'] / base['seeder_cpu_s_per_gib']:.2f}x,"
          f" leecher {m['leecher_cpu_s_per_gib'] / base['leecher_cpu_s_per_gib']:.2f}x")
    print(json.dumps({"ratio": f"{pair}/lt-lt", "phase": phase, "rate": round(ratio, 3)}))
PY
exit $status
