#!/usr/bin/env bash
# bench/compare.sh: netd beside gnet v2, evio, a goroutine-per-connection
# Go stdlib server and a minimal C epoll server, all as line-echo servers
# (64-byte lines). Each server runs alone, pinned to one CPU; the load tool
# (bench/loadgen, single-threaded C epoll) is pinned to the other. Servers
# take turns case by case (A B C … A B C …), in an order that rotates each
# round; medians over the rounds and ratios against gnet are printed at the
# end, with an SVG chart. docs/BENCHMARKS.md has the figures and how to read
# them.
#
#   bench/compare.sh                       # the full run: 5 rounds × 10 s (about 30 min)
#   bench/compare.sh -d 2 -r 1 --idle-conns 2000 --live-conns 2000   # a quick look
#
# Options:
#   -d, --duration SEC      measured seconds per run (10)
#   -w, --warmup SEC        warm-up seconds before measuring (1)
#   -r, --rounds N          rounds (5)
#   --servers "LIST"        among: netd gnet evio stdlib c (all)
#   --cases "LIST"          among: pipe pp1 pp64 pp1000 idle (all)
#   --idle-conns N          connections held for the memory case (10000)
#   --live-conns N          live connections echoing on netd at the end; 0 skips (19000)
#   --netd PATH             use this netd binary instead of building ./cmd/netd
#   --netd-alt PATH         also run this netd binary, as server "netd-alt" (A/B a
#                           loop change: build it from another work tree)
#   --out DIR               results directory (${TMPDIR:-/tmp}/netd-compare-DATE-TIME)
#   --server-cpu N          CPU for the server (1)
#   --client-cpu N          CPU for the load tool (0)
#   --no-priority           do not raise the benchmark's scheduling priority
#
# Needs: go, cc, taskset, ss, setsid, and root for the priority (see below).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=10 WARMUP=1 ROUNDS=5
SERVERS="netd gnet evio stdlib c"
CASES="pipe pp1 pp64 pp1000 idle"
IDLE_CONNS=10000 LIVE_CONNS=19000
NETD_BIN="" NETD_ALT="" OUT="" SERVER_CPU=1 CLIENT_CPU=0 PRIORITY=1
ARGS=("$@")

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	-d | --duration) DURATION=$2; shift ;;
	-w | --warmup) WARMUP=$2; shift ;;
	-r | --rounds) ROUNDS=$2; shift ;;
	--servers) SERVERS=$2; shift ;;
	--cases) CASES=$2; shift ;;
	--idle-conns) IDLE_CONNS=$2; shift ;;
	--live-conns) LIVE_CONNS=$2; shift ;;
	--netd) NETD_BIN=$2; shift ;;
	--netd-alt) NETD_ALT=$2; shift ;;
	--out) OUT=$2; shift ;;
	--server-cpu) SERVER_CPU=$2; shift ;;
	--client-cpu) CLIENT_CPU=$2; shift ;;
	--no-priority) PRIORITY=0 ;;
	-h | --help) usage 0 ;;
	*) echo "compare.sh: unknown option $1" >&2; usage 2 >&2 ;;
	esac
	shift
done

# Priority. On a machine where other work runs (other sessions' tests and
# builds), a server pinned to a shared CPU waits behind it and the figures
# show the scheduler, not the server: seen here, 64-connection ping-pong fell
# from ~90k to ~10k lines/s with a p99 of 300 ms. With autogroup scheduling
# (kernel.sched_autogroup_enabled=1) CPU time is shared between sessions,
# so the benchmark runs in a session of its own whose autogroup gets nice
# -19, and the processes are reniced too for kernels without autogroup.
# Everything the benchmark starts is in that session's process group, so
# an interrupt here stops all of it.
if [ "$PRIORITY" = 1 ] && [ -z "${NETD_COMPARE_SESSION:-}" ]; then
	export NETD_COMPARE_SESSION=1
	setsid "${BASH_SOURCE[0]}" "${ARGS[@]}" &
	child=$!
	trap 'kill -TERM -- -$child 2>/dev/null; wait $child; exit 130' INT TERM
	wait $child
	exit $?
fi
if [ "$PRIORITY" = 1 ]; then
	if [ -w /proc/$$/autogroup ]; then
		echo -19 >/proc/$$/autogroup 2>/dev/null || echo "compare.sh: cannot raise the autogroup's priority (not root?)" >&2
	fi
	renice -n -19 -p $$ >/dev/null 2>&1 || echo "compare.sh: cannot renice (not root?)" >&2
fi

OUT=${OUT:-${TMPDIR:-/tmp}/netd-compare-$(date +%Y%m%d-%H%M%S)}
BIN=$OUT/bin
mkdir -p "$BIN"
RESULTS=$OUT/results.tsv
: >"$RESULTS"
LOG=$OUT/runs.log
: >"$LOG"

log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }

# --- build -----------------------------------------------------------------
log "building into $BIN"
if [ -n "$NETD_BIN" ]; then
	cp "$NETD_BIN" "$BIN/netd"
else
	(cd "$ROOT" && go build -o "$BIN/netd" ./cmd/netd)
fi
if [ -n "$NETD_ALT" ]; then
	cp "$NETD_ALT" "$BIN/netd-alt"
	case " $SERVERS " in *" netd-alt "*) ;; *) SERVERS="$SERVERS netd-alt" ;; esac
fi
for p in gnet evio stdlib; do
	(cd "$ROOT/bench/peers/$p" && GOFLAGS=-mod=mod go build -o "$BIN/$p-echo" .)
done
cc -O2 -Wall -o "$BIN/cepoll" "$ROOT/bench/peers/cepoll/cepoll.c"
cc -O2 -Wall -o "$BIN/loadgen" "$ROOT/bench/loadgen/loadgen.c"

{
	echo "date: $(date -Is)"
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "cc: $(cc --version | head -1)"
	echo "ulimit -n: $(ulimit -n)"
	echo "autogroup: $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a) $(cat /proc/$$/autogroup 2>/dev/null || true)"
	echo "loadavg at start: $(cat /proc/loadavg)"
	echo "options: duration=$DURATION warmup=$WARMUP rounds=$ROUNDS servers='$SERVERS' cases='$CASES' idle_conns=$IDLE_CONNS live_conns=$LIVE_CONNS server_cpu=$SERVER_CPU client_cpu=$CLIENT_CPU priority=$PRIORITY"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# --- servers -----------------------------------------------------------------
NEXT_PORT=19300
SERVER_PID=""

free_port() {
	while ss -Hltn "sport = :$NEXT_PORT" | grep -q .; do NEXT_PORT=$((NEXT_PORT + 1)); done
	PORT=$NEXT_PORT
	NEXT_PORT=$((NEXT_PORT + 1))
	[ $NEXT_PORT -lt 19900 ] || NEXT_PORT=19300
}

# start_server NAME: starts NAME on a free port, pinned; sets SERVER_PID and PORT.
start_server() {
	local name=$1
	free_port
	local cmd
	case $name in
	netd | netd-alt)
		cat >"$OUT/netd.yaml" <<-EOF
			log:
			  level: warn
			loops: 1
			shutdown_timeout: 2s
			listeners:
			  - name: echo
			    address: tcp://127.0.0.1:$PORT
			    module: echo
			    max_connections: 0
			    options:
			      mode: line
		EOF
		cmd=("$BIN/$name" serve -c "$OUT/netd.yaml")
		;;
	gnet | evio) cmd=("$BIN/$name-echo" -addr "tcp://127.0.0.1:$PORT" -loops 1) ;;
	stdlib) cmd=("$BIN/stdlib-echo" -addr "tcp://127.0.0.1:$PORT") ;;
	c) cmd=("$BIN/cepoll" "127.0.0.1:$PORT") ;;
	*) echo "compare.sh: unknown server $name" >&2; exit 2 ;;
	esac
	# GOMAXPROCS=1 is what the affinity mask gives a Go program anyway;
	# set it so that the figures do not depend on that.
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "${cmd[@]}" >>"$OUT/server-$name.log" 2>&1 &
	SERVER_PID=$!
	local i
	for i in $(seq 100); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "compare.sh: $name exited at start; see $OUT/server-$name.log" >&2
			exit 1
		fi
		ss -Hltn "sport = :$PORT" | grep -q . && return 0
		sleep 0.05
	done
	echo "compare.sh: $name is not listening on $PORT after 5 s" >&2
	exit 1
}

stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	local i
	for i in $(seq 60); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}
trap stop_server EXIT

loadgen() {
	timeout --foreground $((${DURATION%.*} + ${WARMUP%.*} + 120)) taskset -c "$CLIENT_CPU" "$BIN/loadgen" -a "127.0.0.1:$PORT" -p "$SERVER_PID" "$@"
}

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

record() { # round case server line
	printf '%s\t%s\t%s\t%s load1=%s\n' "$1" "$2" "$3" "$4" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
}

case_args() {
	case $1 in
	pipe) echo "-c 64 -n 16" ;;
	pp1) echo "-c 1 -n 1" ;;
	pp64) echo "-c 64 -n 1" ;;
	pp1000) echo "-c 1000 -n 1" ;;
	esac
}

run_case() { # round case server
	local round=$1 c=$2 name=$3 out
	start_server "$name"
	if [ "$c" = idle ]; then
		# One connection first, so that what any first connection
		# touches (read buffers, code pages) is in the baseline.
		loadgen -c 1 -d 0.2 -w 0 >/dev/null
		sleep 1
		local rss0 rss1 ready
		rss0=$(rss_kb "$SERVER_PID")
		coproc IDLE { exec timeout --foreground 600 taskset -c "$CLIENT_CPU" "$BIN/loadgen" -a "127.0.0.1:$PORT" -i -c "$IDLE_CONNS" -d 300; }
		local idle_pid=$IDLE_PID
		read -r -t 120 ready <&"${IDLE[0]}" || ready="no answer"
		sleep 2
		rss1=$(rss_kb "$SERVER_PID")
		exec {IDLE[1]}>&-
		wait "$idle_pid" || true
		out="$ready rss0_kb=$rss0 rss1_kb=$rss1 bytes_per_conn=$(((rss1 - rss0) * 1024 / IDLE_CONNS))"
	else
		# shellcheck disable=SC2046
		out=$(loadgen $(case_args "$c") -d "$DURATION" -w "$WARMUP") || out="$out failed=1"
	fi
	stop_server
	record "$round" "$c" "$name" "$out"
	log "round $round $c $name: $out"
}

# --- runs --------------------------------------------------------------------
read -r -a servers <<<"$SERVERS"
read -r -a cases <<<"$CASES"
n=${#servers[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for c in "${cases[@]}"; do
		for ((k = 0; k < n; k++)); do
			run_case "$r" "$c" "${servers[$(((k + r - 1) % n))]}"
		done
	done
done

if [ "$LIVE_CONNS" -gt 0 ]; then
	start_server netd
	out=$(loadgen -c "$LIVE_CONNS" -n 1 -d "$DURATION" -w 2) || out="$out failed=1"
	stop_server
	record 1 live netd "$out"
	log "live netd: $out"
fi

echo "loadavg at end: $(cat /proc/loadavg)" >>"$OUT/machine.txt"
(cd "$ROOT/bench/report" && go run . -in "$RESULTS" -chart "$OUT/chart.svg" -cpu-chart "$OUT/cpu-chart.svg") >"$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT (results.tsv, summary.md, chart.svg, cpu-chart.svg)"
