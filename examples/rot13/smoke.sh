#!/usr/bin/env bash
# Smoke test of the out-of-tree module: build netd-rot13, start it on a free
# port of 127.0.0.1, send a line over TCP, check the answer, stop it by its
# PID with SIGTERM and check that it exits 0. Every step is bounded in time;
# any failure exits non-zero. Needs bash, Go and coreutils' timeout.
set -euo pipefail
cd "$(dirname "$0")"

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "smoke: FAIL: $*" >&2; [ -f "$tmp/netd.log" ] && sed 's/^/  netd: /' "$tmp/netd.log" >&2; exit 1; }

echo "== build"
# -mod=mod: netd's own dependencies may have moved since go.sum was made.
timeout 300 go build -mod=mod -o "$tmp/netd-rot13" ./cmd/netd-rot13
modules=$(timeout 30 "$tmp/netd-rot13" modules) || fail "netd-rot13 modules"
grep -q '^rot13 ' <<< "$modules" || fail "rot13 is not among the modules: $modules"

echo "== validate"
cat > "$tmp/rot13.yaml" <<YAML
log:
  level: info
  format: text
shutdown_timeout: 5s
listeners:
  - name: rot13
    address: tcp://127.0.0.1:0
    module: rot13
    options:
      max_line_bytes: 1024
YAML
timeout 30 "$tmp/netd-rot13" validate -c "$tmp/rot13.yaml" || fail "validate"

echo "== run"
"$tmp/netd-rot13" serve -c "$tmp/rot13.yaml" 2> "$tmp/netd.log" &
pid=$!
port=""
for _ in $(seq 1 300); do # up to 30 s
  port=$(grep -o 'rot13=tcp://127\.0\.0\.1:[0-9]*' "$tmp/netd.log" | head -n1 | sed 's/.*://' || true)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "netd-rot13 exited before listening"
  sleep 0.1
done
[ -n "$port" ] || fail "no listening line within 30 s"
echo "listening on 127.0.0.1:$port (pid $pid)"

echo "== talk"
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "connect to 127.0.0.1:$port"
printf 'Hello, World!\n' >&3
IFS= read -r -t 10 answer <&3 || fail "no answer within 10 s"
exec 3>&-
[ "$answer" = "Uryyb, Jbeyq!" ] || fail "answer '$answer', want 'Uryyb, Jbeyq!'"
echo "sent 'Hello, World!', got '$answer'"

echo "== stop"
kill -TERM "$pid"
for _ in $(seq 1 150); do # up to 15 s
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then fail "still running 15 s after SIGTERM"; fi
code=0
wait "$pid" || code=$?
pid=""
[ "$code" -eq 0 ] || fail "exit code $code after SIGTERM, want 0"
echo "smoke: ok"
