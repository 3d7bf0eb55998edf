#!/usr/bin/env bash
# bench/tls-compare.sh: TLS line echo through netd (one loop, echo module,
# a tls block) beside bench/peers/stdlib with -cert (crypto/tls, a goroutine per
# connection), both driven by `netd bench --tls`. Servers alternate within
# each round (the order flips every round); the report gives, per case, the
# median over rounds of the server's CPU per echoed line (or per handshake)
# and the median of the paired netd/stdlib ratios. docs/BENCHMARKS.md, TLS.
#
#   bench/tls-compare.sh [-d SEC] [-r ROUNDS] [--out DIR]
#
# Cases: pipe (50 connections, 16 lines in flight), pp (50, ping-pong),
# hs (16 connections, a new connection and full handshake per line).
# Idle memory per connection is TestTLSIdleMemory in pkg/modules/echo.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=5 ROUNDS=3 OUT=""
while [ $# -gt 0 ]; do
	case $1 in
	-d) DURATION=$2; shift ;;
	-r) ROUNDS=$2; shift ;;
	--out) OUT=$2; shift ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
	shift
done
OUT=${OUT:-${TMPDIR:-/tmp}/netd-tls-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
(cd "$ROOT" && go build -o "$OUT/netd" ./cmd/netd)
(cd "$ROOT/bench/peers/stdlib" && go build -o "$OUT/stdlib-echo" .)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
cat >"$OUT/netd.yaml" <<YAML
loops: 1
log: {level: warn}
listeners:
  - name: tls
    address: tcp://127.0.0.1:9543
    module: echo
    options: {mode: line}
    tls: {cert_file: cert.pem, key_file: key.pem}
YAML

PID=""
start() {
	case $1 in
	netd) taskset -c 1 "$OUT/netd" serve -c "$OUT/netd.yaml" 2>>"$OUT/netd.log" & PID=$! ; ADDR=127.0.0.1:9543 ;;
	stdlib) GOMAXPROCS=1 taskset -c 1 "$OUT/stdlib-echo" -addr tcp://127.0.0.1:9544 -cert "$OUT/cert.pem" -key "$OUT/key.pem" & PID=$! ; ADDR=127.0.0.1:9544 ;;
	esac
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
trap stop EXIT

args() {
	case $1 in
	pipe) echo "-c 50 -n 16" ;;
	pp) echo "-c 50 -n 1" ;;
	hs) echo "-c 16 -n 1 --reconnect --cycle-lines 1" ;;
	esac
}

for r in $(seq 1 "$ROUNDS"); do
	order="netd stdlib"
	[ $((r % 2)) -eq 0 ] && order="stdlib netd"
	for s in $order; do
		start "$s"
		for c in pipe pp hs; do
			# shellcheck disable=SC2046
			taskset -c 0 "$OUT/netd" bench -q --json --tls --tls-ca "$OUT/cert.pem" -d "${DURATION}s" \
				--server-pid "$PID" $(args $c) "tcp://$ADDR" >"$OUT/$s-$c-$r.json"
		done
		stop
	done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(s, c, r):
    j = json.load(open(f"{out}/{s}-{c}-{r}.json"))
    per = j["server_cpu_ns"] / (j["connects"] if c == "hs" else j["lines"])
    rate = (j["connects"] if c == "hs" else j["lines"]) / (j["elapsed_ns"] / 1e9)
    return per, rate, j
print(f"{'case':6} {'netd µs/op':>11} {'stdlib µs/op':>13} {'ratio (paired median)':>22} {'netd op/s':>10} {'stdlib op/s':>12}")
for c, what in (("pipe", "line"), ("pp", "line"), ("hs", "handshake")):
    n = [load("netd", c, r) for r in range(1, rounds + 1)]
    s = [load("stdlib", c, r) for r in range(1, rounds + 1)]
    ratios = [a[0] / b[0] for a, b in zip(n, s)]
    for x in n + s:
        if x[2]["mismatches"] or x[2]["errors"]:
            print("  errors or mismatches in", c, x[2]["first_error"], x[2]["first_mismatch"])
    print(f"{c:6} {statistics.median(x[0] for x in n)/1e3:11.2f} {statistics.median(x[0] for x in s)/1e3:13.2f} "
          f"{statistics.median(ratios):22.2f} {statistics.median(x[1] for x in n):10.0f} {statistics.median(x[1] for x in s):12.0f}   (per {what}; ratios {', '.join(f'{x:.2f}' for x in ratios)})")
PY
