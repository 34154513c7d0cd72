#!/usr/bin/env bash
# Self-test of lt_dht.py: two libtorrent DHT nodes on 127.0.0.1 that only talk to each
# other through their DHTs.  Prints PASS/FAIL per check and "N passed, M failed";
# exits non-zero if any check failed.
#
#   bash tests/interop/lt_dht_selftest.sh        (needs: apt-get install python3-libtorrent)
#
# Env: LT_PYTHON (default /usr/bin/python3), LT_DHT_VERBOSE=1 to keep node logs on stderr.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${LT_PYTHON:-/usr/bin/python3}
DRIVER="$HERE/lt_dht.py"
WORK=$(mktemp -d /tmp/lt_dht_selftest.XXXXXX)
PASSED=0
FAILED=0
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    if [ "${LT_DHT_VERBOSE:-0}" = 1 ]; then
        for f in "$WORK"/*.err; do echo "---- $f" >&2; cat "$f" >&2; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! "$PY" -c 'import libtorrent' 2>/dev/null; then
    echo "FAIL: $PY cannot import libtorrent (apt-get install -y python3-libtorrent)"
    echo "0 passed, 1 failed"
    exit 1
fi

# start_node NAME: runs the driver with stdin/stdout on FIFOs; sets IN_<NAME>/OUT_<NAME> fds
start_node() {
    local name=$1 infd outfd
    mkfifo "$WORK/$name.in" "$WORK/$name.out"
    "$PY" "$DRIVER" --port 0 <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    eval "PID_$name=$!"
    exec {infd}>"$WORK/$name.in"
    exec {outfd}<"$WORK/$name.out"
    eval "IN_$name=$infd OUT_$name=$outfd"
}

# recv NAME [timeout]: one reply line from NAME into $R
recv() {
    local outfd
    eval "outfd=\$OUT_$1"
    R=""
    if ! IFS= read -r -t "${2:-60}" -u "$outfd" R; then
        R='{"ok":false,"error":"no reply from driver"}'
    fi
}

# send NAME JSON: send one command, wait for its reply in $R
send() {
    local infd
    eval "infd=\$IN_$1"
    printf '%s\n' "$2" >&"$infd"
    recv "$1" 90
}

# jpy EXPR: evaluate a python expression over r (= parsed $R), env vars via E
jpy() {
    R="$R" "$PY" -c '
import json, os, sys
r = json.loads(os.environ["R"]); E = os.environ
v = eval(sys.argv[1])
print(v if not isinstance(v, bool) else ("1" if v else ""))' "$1" 2>/dev/null
}

check() {
    local name=$1 expr=$2
    if [ -n "$(jpy "$expr")" ]; then
        echo "PASS: $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL: $name -- $R"
        FAILED=$((FAILED + 1))
    fi
}

# ---------------------------------------------------------------- start + bootstrap
start_node A
start_node B
recv A 30; check "A ready" "r.get('ready') is True and len(r['node_id']) == 40 and r['port'] > 0"
export PORT_A=$(jpy "r.get('port', 0)")
recv B 30; check "B ready" "r.get('ready') is True and len(r['node_id']) == 40 and r['port'] > 0"
export PORT_B=$(jpy "r.get('port', 0)")

# B bootstraps from A only; A learns B from B's queries (libtorrent keeps B as a
# replacement and promotes it after its ~5 s refresh ping).
send B "{\"cmd\":\"add_node\",\"host\":\"127.0.0.1\",\"port\":$PORT_A,\"timeout\":15}"
check "B add_node A -> A in B's routing table" "r['ok'] and r['in_table']"
for _ in $(seq 1 60); do
    send A '{"cmd":"nodes"}'
    [ -n "$(jpy "r['ok'] and ('127.0.0.1:'+E['PORT_B']) in r['node_list']")" ] && break
    sleep 0.5
done
check "A learned B (no add_node on A)" "r['ok'] and r['nodes'] >= 1 and ('127.0.0.1:'+E['PORT_B']) in r['node_list']"
send B '{"cmd":"nodes"}'
check "B routing table has A" "r['ok'] and ('127.0.0.1:'+E['PORT_A']) in r['node_list']"

# ---------------------------------------------------------------- peers
export IH1=$("$PY" -c 'import os; print(os.urandom(20).hex())')
export IH2=$("$PY" -c 'import os; print(os.urandom(20).hex())')
send A "{\"cmd\":\"announce\",\"info_hash\":\"$IH1\",\"port\":6881}"
check "A announce_peer acknowledged" "r['ok'] and r['num_success'] >= 1 and ('127.0.0.1:'+E['PORT_B']) in r['nodes']"
send B "{\"cmd\":\"get_peers\",\"info_hash\":\"$IH1\",\"timeout\":15}"
check "B get_peers finds A's announce" "r['ok'] and '127.0.0.1:6881' in r['peers']"
send B "{\"cmd\":\"announce\",\"info_hash\":\"$IH2\",\"port\":51413,\"seed\":true}"
check "B announce_peer acknowledged" "r['ok'] and r['num_success'] >= 1 and ('127.0.0.1:'+E['PORT_A']) in r['nodes']"
send A "{\"cmd\":\"get_peers\",\"info_hash\":\"$IH2\",\"timeout\":15}"
check "A get_peers finds B's announce" "r['ok'] and '127.0.0.1:51413' in r['peers']"
send A "{\"cmd\":\"get_peers\",\"info_hash\":\"$("$PY" -c 'import os; print(os.urandom(20).hex())')\",\"timeout\":2}"
check "get_peers of unknown info-hash times out cleanly" "(not r['ok']) and r['peers'] == [] and 'timeout' in r['error']"

# ---------------------------------------------------------------- immutable
send A '{"cmd":"put_immutable","value":{"msg":"hello from A","n":42,"l":[1,"two"]}}'
check "A put_immutable (num_success>=1)" "r['ok'] and r['num_success'] >= 1 and len(r['target']) == 40"
export TGT=$(jpy "r.get('target','')")
send B "{\"cmd\":\"get_immutable\",\"target\":\"$TGT\"}"
check "B get_immutable returns A's value" "r['ok'] and r['value'] == {'msg':'hello from A','n':42,'l':[1,'two']}"
send B '{"cmd":"put_immutable","value":"plain string"}'
check "B put_immutable string (target = sha1 of bencoding)" "r['ok'] and r['target'] == __import__('hashlib').sha1(b'12:plain string').hexdigest()"
export TGT2=$(jpy "r.get('target','')")
send A "{\"cmd\":\"get_immutable\",\"target\":\"$TGT2\"}"
check "A get_immutable returns B's string" "r['ok'] and r['value'] == 'plain string' and not r['value_is_hex']"
send A '{"cmd":"get_immutable","target":"0123456789abcdef0123456789abcdef01234567","timeout":5}'
check "get_immutable of unknown target fails cleanly" "(not r['ok']) and r['found'] is False"

# ---------------------------------------------------------------- mutable
send A '{"cmd":"keypair","seed":"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"}'
check "keypair (RFC 8032 vector 1 public key)" "r['ok'] and r['public_key'] == 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' and len(r['secret_key']) == 128"
export PK=$(jpy "r.get('public_key','')") SK=$(jpy "r.get('secret_key','')")
export SALT="salt-$RANDOM"
send A "{\"cmd\":\"put_mutable\",\"public_key\":\"$PK\",\"secret_key\":\"$SK\",\"salt\":\"$SALT\",\"value\":\"v1 from A\"}"
check "A put_mutable seq 1 (num_success>=1)" "r['ok'] and r['seq'] == 1 and r['num_success'] >= 1"
send B "{\"cmd\":\"get_mutable\",\"public_key\":\"$PK\",\"salt\":\"$SALT\"}"
check "B get_mutable returns A's value" "r['ok'] and r['value'] == 'v1 from A' and r['seq'] == 1 and r['authoritative'] and len(r['signature']) == 128"
send B "{\"cmd\":\"put_mutable\",\"public_key\":\"$PK\",\"secret_key\":\"$SK\",\"salt\":\"$SALT\",\"value\":\"v2 from B\"}"
check "B put_mutable update -> seq 2" "r['ok'] and r['seq'] == 2 and r['num_success'] >= 1"
send A "{\"cmd\":\"get_mutable\",\"public_key\":\"$PK\",\"salt\":\"$SALT\"}"
check "A get_mutable sees B's update" "r['ok'] and r['value'] == 'v2 from B' and r['seq'] == 2"
send A "{\"cmd\":\"put_mutable\",\"public_key\":\"$PK\",\"secret_key\":\"$SK\",\"value\":\"no salt\"}"
check "A put_mutable without salt" "r['ok'] and r['seq'] == 1 and r['target'] == __import__('hashlib').sha1(bytes.fromhex(E['PK'])).hexdigest()"
send B "{\"cmd\":\"get_mutable\",\"public_key\":\"$PK\"}"
check "B get_mutable without salt" "r['ok'] and r['value'] == 'no salt'"

# ---------------------------------------------------------------- errors + shutdown
send A 'not json'
check "bad JSON -> ok:false" "(not r['ok']) and 'error' in r"
send A '{"cmd":"quit"}'
check "A quit" "r['ok']"
exec {IN_B}>&-                       # EOF on B's stdin must stop it too
for name in A B; do
    eval "pid=\$PID_$name"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        R="{\"ok\":false,\"error\":\"$name still running\"}"
    else
        wait "$pid"; R="{\"ok\":true,\"rc\":$?}"
    fi
    check "$name exited (rc 0)" "r['ok'] and r['rc'] == 0"
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
