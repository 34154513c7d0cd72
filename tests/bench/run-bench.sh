#!/usr/bin/env bash
# Runs the benchmarks after `./build bench` built them: JMH hashing (chunk+hash vs raw SHA-256), then the 1 GiB
# loopback transfer between two daemons. Figures go to stdout; copy them into docs/benchmarks.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/releng/env.sh"; chiral_find_java
B="$ROOT/tests/io.chiral.bench/target"
CP="$B/classes:$(cat "$B/classpath.txt")"
echo "== JMH: chunking + hashing vs raw SHA-256 (256 MiB file in page cache, $(nproc) cores, $("$CHIRAL_JAVA_HOME/bin/java" -version 2>&1 | head -1))"
"$CHIRAL_JAVA_HOME/bin/java" -cp "$CP" org.openjdk.jmh.Main HashingBenchmark -rf json -rff "$B/jmh.json" "$@" | tee "$B/jmh.txt" | grep -E "^Benchmark|HashingBenchmark\."
python3 - "$B/jmh.json" <<'PY'
import json, sys
r = {x["benchmark"].split(".")[-1]: x for x in json.load(open(sys.argv[1]))}
size = int(r["rawSha256"]["params"]["size"])
mbs = {k: size / 1e6 / (v["primaryMetric"]["score"] / 1000) for k, v in r.items()}
for k, v in mbs.items():
    print(f"{k:14s} {v:8.0f} MB/s")
print(f"chunkAndHash / rawSha256 = {mbs['chunkAndHash'] / mbs['rawSha256']:.2f}")
PY
echo
"$ROOT/tests/bench/transfer-bench.sh"
