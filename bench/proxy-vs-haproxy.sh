#!/usr/bin/env bash
# bench/proxy-vs-haproxy.sh: netd's proxy module beside HAProxy (mode tcp),
# side by side in one run, in front of the same redis-server and the same
# netd line echo. Each proxy runs with one thread (netd `loops: 1`, HAProxy
# `nbthread 1`), pinned to one CPU; redis, the echo server and the load
# tools share the other. The proxies take turns case by case, in an order
# that alternates each round. For every run it reads the proxy's utime+stime
# from /proc/PID/stat before and after, and prints requests/s and proxy CPU
# per request, with medians over the rounds. docs/BENCHMARKS.md ("Proxy
# against HAProxy") has the figures.
#
#   bench/proxy-vs-haproxy.sh                 # 5 rounds, 6 to 10 min
#   bench/proxy-vs-haproxy.sh -r 1 -d 2       # a quick look
#
# Options:
#   -r, --rounds N       rounds (5)
#   -d, --duration SEC   seconds per netd bench run (5); redis-benchmark runs
#                        a fixed number of requests sized to take about as long
#   -n, --requests N     redis-benchmark requests per test at -P 1 (50000; 10x at -P 16)
#   --cases "LIST"       among: redis-p1 redis-p16 echo-pp echo-pipe (all)
#   --netd PATH          use this netd binary instead of building ./cmd/netd
#   --out DIR            results directory (${TMPDIR:-/tmp}/netd-proxy-DATE-TIME)
#   --proxy-cpu N        CPU for the proxy under test (1)
#   --load-cpu N         CPU for redis, the echo server and the load tools (0)
#
# Needs: go, haproxy, redis-server, redis-benchmark, taskset, ss.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=5 DURATION=5 REQUESTS=50000
CASES="redis-p1 redis-p16 echo-pp echo-pipe"
NETD_BIN="" OUT="" PROXY_CPU=1 LOAD_CPU=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	-r | --rounds) ROUNDS=$2; shift ;;
	-d | --duration) DURATION=$2; shift ;;
	-n | --requests) REQUESTS=$2; shift ;;
	--cases) CASES=$2; shift ;;
	--netd) NETD_BIN=$2; shift ;;
	--out) OUT=$2; shift ;;
	--proxy-cpu) PROXY_CPU=$2; shift ;;
	--load-cpu) LOAD_CPU=$2; shift ;;
	-h | --help) usage 0 ;;
	*) echo "proxy-vs-haproxy.sh: unknown option $1" >&2; usage 2 >&2 ;;
	esac
	shift
done

for p in go haproxy redis-server redis-benchmark taskset ss; do
	command -v "$p" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
	command -v "$p" >/dev/null || { echo "proxy-vs-haproxy.sh: $p is not installed" >&2; exit 1; }
done

OUT=${OUT:-${TMPDIR:-/tmp}/netd-proxy-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
if [ -z "$NETD_BIN" ]; then
	NETD_BIN=$OUT/netd
	(cd "$ROOT" && go build -o "$NETD_BIN" ./cmd/netd)
fi
TCK=$(getconf CLK_TCK)

# free_port VAR sets VAR to a TCP port that nothing listens on, above the
# last one it gave.
LAST_PORT=$((20000 + RANDOM % 8000)) # below the ephemeral range (32768-)
free_port() {
	local p=$((LAST_PORT + 1))
	while ss -Htan "sport = :$p" | grep -q .; do p=$((p + 1)); done
	LAST_PORT=$p
	printf -v "$1" %d "$p"
}
for v in REDIS_PORT ECHO_PORT NETD_REDIS NETD_ECHO HAP_REDIS HAP_ECHO; do free_port "$v"; done

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# wait_port waits until 127.0.0.1:PORT accepts connections.
wait_port() {
	local i
	for i in $(seq 100); do
		ss -Htln "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	echo "proxy-vs-haproxy.sh: nothing listens on port $1" >&2
	exit 1
}

taskset -c "$LOAD_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--logfile "$OUT/redis.log" &
PIDS+=($!)

cat >"$OUT/echo.yaml" <<EOF
loops: 1
listeners:
  - name: echo
    address: tcp://127.0.0.1:$ECHO_PORT
    module: echo
EOF
taskset -c "$LOAD_CPU" "$NETD_BIN" serve -c "$OUT/echo.yaml" 2>"$OUT/echo.log" &
PIDS+=($!)

cat >"$OUT/proxy.yaml" <<EOF
loops: 1
listeners:
  - name: redis
    address: tcp://127.0.0.1:$NETD_REDIS
    module: proxy
    options:
      upstreams: [tcp://127.0.0.1:$REDIS_PORT]
  - name: echo
    address: tcp://127.0.0.1:$NETD_ECHO
    module: proxy
    options:
      upstreams: [tcp://127.0.0.1:$ECHO_PORT]
EOF
taskset -c "$PROXY_CPU" "$NETD_BIN" serve -c "$OUT/proxy.yaml" 2>"$OUT/netd-proxy.log" &
NETD_PID=$!
PIDS+=($NETD_PID)

# HAProxy as a plain TCP forwarder: one thread, no health checks (netd's
# proxy has none either), no logging.
cat >"$OUT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m

listen redis
    bind 127.0.0.1:$HAP_REDIS
    server redis 127.0.0.1:$REDIS_PORT

listen echo
    bind 127.0.0.1:$HAP_ECHO
    server echo 127.0.0.1:$ECHO_PORT
EOF
taskset -c "$PROXY_CPU" haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
HAP_PID=$!
PIDS+=($HAP_PID)

for p in "$REDIS_PORT" "$ECHO_PORT" "$NETD_REDIS" "$NETD_ECHO" "$HAP_REDIS" "$HAP_ECHO"; do wait_port "$p"; done
for p in "${PIDS[@]}"; do
	kill -0 "$p" 2>/dev/null || { echo "proxy-vs-haproxy.sh: a server exited at start; logs in $OUT" >&2; exit 1; }
done

# cpu_ticks prints a process's utime+stime, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now() { date +%s.%N; }

# run_case CASE PROXY PORT PID: one measured run; appends a line to results.tsv.
run_case() {
	local case=$1 proxy=$2 port=$3 pid=$4 c0 c1 t0 t1 reqs out
	c0=$(cpu_ticks "$pid")
	t0=$(now)
	case $case in
	redis-p1 | redis-p16)
		local p=${case#redis-p} n=$REQUESTS
		[ "$p" = 1 ] || n=$((REQUESTS * 10))
		out=$(taskset -c "$LOAD_CPU" redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$n" -P "$p" -t set,get --csv)
		echo "$out" | grep -q '"GET"' || { echo "redis-benchmark through $proxy failed: $out" >&2; exit 1; }
		reqs=$((2 * n))
		;;
	echo-pp | echo-pipe)
		local k=1
		[ "$case" = echo-pp ] || k=16
		out=$(taskset -c "$LOAD_CPU" "$NETD_BIN" bench -q --json -c 50 -n "$k" -d "${DURATION}s" "tcp://127.0.0.1:$port")
		reqs=$(echo "$out" | sed -n 's/.*"lines":\([0-9]*\).*/\1/p')
		local bad
		bad=$(echo "$out" | sed -n 's/.*"mismatches":\([0-9]*\).*"errors":\([0-9]*\).*"connect_errors":\([0-9]*\).*/\1 \2 \3/p')
		[ "$bad" = "0 0 0" ] || { echo "netd bench through $proxy: mismatches errors connect_errors = $bad" >&2; exit 1; }
		;;
	esac
	t1=$(now)
	c1=$(cpu_ticks "$pid")
	awk -v r="$ROUND" -v c="$case" -v p="$proxy" -v n="$reqs" -v t0="$t0" -v t1="$t1" \
		-v c0="$c0" -v c1="$c1" -v tck="$TCK" 'BEGIN {
		s = t1 - t0; cpu = (c1 - c0) / tck
		printf "%s\t%s\t%s\t%d\t%.3f\t%.0f\t%.3f\t%.3f\n", r, c, p, n, s, n / s, cpu, cpu / n * 1e6
	}' >>"$OUT/results.tsv"
	tail -1 "$OUT/results.tsv"
}

printf 'round\tcase\tproxy\trequests\tseconds\treq_per_s\tproxy_cpu_s\tproxy_cpu_us_per_req\n' >"$OUT/results.tsv"
echo "results in $OUT; netd proxy pid $NETD_PID, haproxy pid $HAP_PID ($(haproxy -v | head -1))"
# A warm-up through each, unmeasured: connections, buffers, redis's keys.
taskset -c "$LOAD_CPU" redis-benchmark -p "$NETD_REDIS" -n 20000 -c 50 -t set,get -q >/dev/null
taskset -c "$LOAD_CPU" redis-benchmark -p "$HAP_REDIS" -n 20000 -c 50 -t set,get -q >/dev/null
for ROUND in $(seq "$ROUNDS"); do
	for case in $CASES; do
		if [ $((ROUND % 2)) = 1 ]; then order="netd haproxy"; else order="haproxy netd"; fi
		for proxy in $order; do
			case $case in redis-*) kind=REDIS ;; *) kind=ECHO ;; esac
			if [ "$proxy" = netd ]; then
				port_var=NETD_$kind pid=$NETD_PID
			else
				port_var=HAP_$kind pid=$HAP_PID
			fi
			run_case "$case" "$proxy" "${!port_var}" "$pid"
		done
	done
done

# Medians per case and proxy, and the median of the per-round ratios of
# CPU per request (netd / HAProxy).
{
	echo "| case | proxy | requests/s | proxy CPU per request | proxy CPU busy |"
	echo "|---|---|---:|---:|---:|"
	median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	for case in $CASES; do
		for proxy in netd haproxy; do
			awk -F'\t' -v c="$case" -v p="$proxy" '$2 == c && $3 == p { print $6 "\t" $8 "\t" 100 * $7 / $5 }' "$OUT/results.tsv" >"$OUT/.col"
			rps=$(cut -f1 "$OUT/.col" | median)
			cpu=$(cut -f2 "$OUT/.col" | median)
			busy=$(cut -f3 "$OUT/.col" | median)
			printf '| %s | %s | %.0f | %.2f µs | %.0f%% |\n' "$case" "$proxy" "$rps" "$cpu" "$busy"
		done
	done
	echo
	echo "| case | netd ÷ HAProxy, CPU per request (median of per-round ratios) | range |"
	echo "|---|---:|---|"
	for case in $CASES; do
		awk -F'\t' -v c="$case" '$2 == c { cpu[$1 "/" $3] = $8; rounds[$1] = 1 }
			END { for (r in rounds) if (cpu[r "/haproxy"] > 0) print cpu[r "/netd"] / cpu[r "/haproxy"] }' "$OUT/results.tsv" |
			sort -g | awk -v c="$case" '{ v[NR] = $1 } END {
				m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				printf "| %s | %.2f× | %.2f–%.2f |\n", c, m, v[1], v[NR] }'
	done
} | tee "$OUT/summary.md"
rm -f "$OUT/.col"
