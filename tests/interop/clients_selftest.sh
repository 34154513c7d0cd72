#!/usr/bin/env bash
# Self-test of the BitTorrent client drivers (lt_peer.py, aria2_peer.py, qbt_peer.py, transmission_peer.py):
# real transfers between different clients on 127.0.0.1, each received file compared byte for byte (cmp).
# Prints PASS/FAIL and the time per pair, then "N passed, M failed"; exits non-zero if any pair failed.
#
#   bash tests/interop/clients_selftest.sh [PAIR...]      (default: all pairs below)
#
# Pairs (SEEDER-LEECHER): lt-aria2 (aria2 leeches from an lt seeder), aria2-lt, qbt-lt, lt-qbt, lt-aria2-magnet,
#        lt-qbt-magnet (leecher starts from the magnet link), lt-transmission-opentracker, transmission-lt.
# Needs: apt-get install python3-libtorrent aria2 qbittorrent-nox transmission-daemon opentracker
# Env: KEEP=1 keeps the work dir (driver logs, client logs) and prints its path; SIZE (bytes, default 8 MiB +
#      12345 so the last piece is partial).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
W=$(mktemp -d /tmp/clients_selftest.XXXXXX)
SIZE=${SIZE:-$((8 * 1048576 + 12345))}
PASSED=0
FAILED=0
PIDS=()
FDS=()

cleanup() {
    local fd pid
    for fd in "${FDS[@]}"; do eval "exec $fd>&-" 2>/dev/null; done      # stdin EOF: drivers quit
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill "$pid" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs a driver with stdin on a FIFO held open by this shell; its stdout in $W/NAME.out
start() {
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

# stop NAME: stdin EOF, wait for the driver to exit (max 10 s)
stop() {
    local fd pid
    eval "fd=\$FD_$1 pid=\$PID_$1"
    eval "exec $fd>&-"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill "$pid" 2>/dev/null
}

# send NAME JSON: one command line to the driver
send() { local fd; eval "fd=\$FD_$1"; echo "$2" >&"$fd"; }

# wait_for NAME KEY TIMEOUT: waits for a stdout line with "KEY": true (or an error line); sets LINE
wait_for() {
    local name=$1 key=$2 t=$3 i
    for i in $(seq $((t * 10))); do
        LINE=$(grep -a "\"$key\": true" "$W/$name.out" | head -n1)
        [ -n "$LINE" ] && return 0
        LINE=$(grep -a '"error"' "$W/$name.out" | head -n1)
        [ -n "$LINE" ] && return 1
        eval "kill -0 \$PID_$name" 2>/dev/null || { LINE="driver exited"; return 1; }
        sleep 0.1
    done
    LINE="timeout after ${t}s waiting for $key"
    return 1
}
field() { $PY -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

result() {   # result PAIR OK(0/1) T0 DETAIL
    local secs
    secs=$($PY -c "import time; print('%.1f' % (time.time() - $3))")
    if [ "$2" = 0 ]; then
        PASSED=$((PASSED + 1)); printf 'PASS  %-30s %6ss  %s\n' "$1" "$secs" "$4"
    else
        FAILED=$((FAILED + 1)); printf 'FAIL  %-30s %6ss  %s\n' "$1" "$secs" "$4"
    fi
}

# -- test data: one random file, a libtorrent v1+v2 hybrid torrent and a v1-only torrent of it
mkdir -p "$W/data"
head -c "$SIZE" /dev/urandom >"$W/data/payload.bin"
$PY "$HERE/lt_torrent.py" create "$W/data/payload.bin" "$W/hybrid.torrent" >/dev/null || exit 1
$PY "$HERE/lt_torrent.py" create "$W/data/payload.bin" "$W/v1.torrent" --v1-only >/dev/null || exit 1
IH_V1=$($PY "$HERE/lt_torrent.py" inspect "$W/v1.torrent" | $PY -c 'import json,sys; print(json.load(sys.stdin)["info_hash_v1"])')

driver() {   # driver CLIENT -> command prefix
    case $1 in
        lt) echo "$PY $HERE/lt_peer.py" ;;
        aria2) echo "$PY $HERE/aria2_peer.py" ;;
        qbt) echo "$PY $HERE/qbt_peer.py" ;;
        transmission) echo "$PY $HERE/transmission_peer.py" ;;
    esac
}

# direct SEEDER LEECHER TORRENT [magnet]: seeder on the data, leecher given the seeder's port with --peer
# (with "magnet": the leecher gets the torrent's magnet link and fetches the metadata from the seeder)
direct() {
    local s=$1 l=$2 torrent=$3 magnet=${4:-} pair="$1 -> $2" t0 port detail what
    local sn="${s}_seed_$l$magnet" ln="${l}_leech_$s$magnet"
    what="$W/$torrent"
    if [ -n "$magnet" ]; then
        pair="$pair (magnet)"
        what=$($PY "$HERE/lt_torrent.py" make_magnet "$W/$torrent" | $PY -c 'import json,sys; print(json.load(sys.stdin)["uri"])')
    fi
    t0=$($PY -c 'import time; print(time.time())')
    start "$sn" $(driver "$s") seed "$W/$torrent" "$W/data" --work "$W/$sn.work"
    if ! wait_for "$sn" ready 60; then result "$pair" 1 "$t0" "seeder: $LINE"; stop "$sn"; return; fi
    port=$(field "$LINE" port)
    mkdir -p "$W/$ln.dl"
    start "$ln" $(driver "$l") leech "$what" "$W/$ln.dl" --peer "127.0.0.1:$port" --work "$W/$ln.work"
    if wait_for "$ln" done 120; then
        detail="leecher: $(field "$LINE" seconds) s after it got the peer, $(field "$LINE" bytes) bytes ($torrent)"
        if cmp -s "$W/data/payload.bin" "$W/$ln.dl/payload.bin"; then result "$pair" 0 "$t0" "$detail"
        else result "$pair" 1 "$t0" "received file differs: $detail"; fi
    else
        result "$pair" 1 "$t0" "leecher: $LINE"
    fi
    stop "$ln"; stop "$sn"
}

# via_opentracker SEEDER LEECHER TORRENT: both announce to a whitelisting opentracker on 127.0.0.1; the leecher
# starts (and announces) first, so the seeder's announce returns the leecher and the seeder connects to it.
# (transmission 3.00 drops 127.x peers from trackers as "martian" -- only incoming connections work on loopback.)
via_opentracker() {
    local s=$1 l=$2 torrent=$3 pair="$1 -> $2 (opentracker)" t0 otport tr ot_pid detail ok
    local sn="${s}_seed_${l}_ot" ln="${l}_leech_${s}_ot"
    t0=$($PY -c 'import time; print(time.time())')
    mkdir -p "$W/ot"
    echo "$IH_V1" >"$W/ot/whitelist"
    otport=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # opentracker chroots into -d when run as root, then loads the whitelist (on a thread of its own): relative path
    (cd "$W/ot" && exec opentracker -i 127.0.0.1 -p "$otport" -P "$otport" -w whitelist -d "$W/ot") \
        >"$W/ot/opentracker.log" 2>&1 &
    ot_pid=$!
    PIDS+=($ot_pid)
    tr="http://127.0.0.1:$otport/announce"
    ok=1
    for _ in $(seq 100); do   # up and whitelist loaded: an announce for the hash is not refused
        if $PY - "$tr" "$IH_V1" <<'EOF' 2>/dev/null; then ok=0; break; fi
import sys, urllib.request, urllib.parse
ih = bytes.fromhex(sys.argv[2])
q = urllib.parse.urlencode({"info_hash": ih, "peer_id": b"-ST0001-000000000000", "port": 9, "uploaded": 0,
                            "downloaded": 0, "left": 0, "compact": 1, "event": "stopped"})
body = urllib.request.urlopen(sys.argv[1] + "?" + q, timeout=2).read()
sys.exit(0 if b"failure" not in body else 1)
EOF
        sleep 0.1
    done
    if [ $ok != 0 ]; then result "$pair" 1 "$t0" "opentracker did not come up"; kill $ot_pid; return; fi
    mkdir -p "$W/$ln.dl"
    start "$ln" $(driver "$l") leech "$W/$torrent" "$W/$ln.dl" --tracker "$tr" --work "$W/$ln.work"
    if ! wait_for "$ln" ready 60; then result "$pair" 1 "$t0" "leecher: $LINE"; stop "$ln"; kill $ot_pid; return; fi
    sleep 2   # let the leecher announce
    start "$sn" $(driver "$s") seed "$W/$torrent" "$W/data" --tracker "$tr" --work "$W/$sn.work"
    if ! wait_for "$sn" ready 60; then result "$pair" 1 "$t0" "seeder: $LINE"
    elif wait_for "$ln" done 120; then
        detail="leecher: $(field "$LINE" seconds) s after it was added, $(field "$LINE" bytes) bytes ($torrent)"
        if cmp -s "$W/data/payload.bin" "$W/$ln.dl/payload.bin"; then result "$pair" 0 "$t0" "$detail"
        else result "$pair" 1 "$t0" "received file differs: $detail"; fi
    else
        result "$pair" 1 "$t0" "leecher: $LINE"
    fi
    stop "$ln"; stop "$sn"; kill $ot_pid 2>/dev/null
}

run_pair() {
    case $1 in
        # aria2 1.36 computes a wrong info-hash for libtorrent's v1+v2 hybrids: v1-only torrents for aria2
        lt-aria2) direct lt aria2 v1.torrent ;;
        aria2-lt) direct aria2 lt v1.torrent ;;
        qbt-lt) direct qbt lt hybrid.torrent ;;
        lt-qbt) direct lt qbt hybrid.torrent ;;
        lt-aria2-magnet) direct lt aria2 v1.torrent magnet ;;
        lt-qbt-magnet) direct lt qbt hybrid.torrent magnet ;;
        # transmission 3.00 rejects hybrid torrents ("invalid or corrupt torrent file"): v1-only
        lt-transmission-opentracker) via_opentracker lt transmission v1.torrent ;;
        transmission-lt) direct transmission lt v1.torrent ;;
        *) echo "unknown pair $1"; FAILED=$((FAILED + 1)) ;;
    esac
}

echo "== BitTorrent clients on 127.0.0.1, $SIZE bytes: $(aria2c --version | head -n1), $(qbittorrent-nox --version),"\
     "$(transmission-daemon --version 2>&1 | head -n1), libtorrent $($PY -c 'import libtorrent; print(libtorrent.__version__)')"
PAIRS=("$@")
[ ${#PAIRS[@]} -gt 0 ] || PAIRS=(lt-aria2 aria2-lt qbt-lt lt-qbt lt-aria2-magnet lt-qbt-magnet lt-transmission-opentracker
                                 transmission-lt)
for p in "${PAIRS[@]}"; do run_pair "$p"; done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
