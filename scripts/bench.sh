#!/usr/bin/env bash
# Runs edgegate's benchmarks and writes docs/benchmarks.md with SVG plots
# in docs/bench/.
#
#   scripts/bench.sh [--quick] [--poll-idle]
#
# Builds the gateway, cmd/edgebench and the gorilla/websocket baseline
# (bench/baseline, a module of its own), then, on loopback:
#   floor   raw TCP echo round trips to `edgebench echo-server`, a separate
#           process like the servers (the floor for rtt), and, for reference
#           only, to an echo server inside edgebench ("in-process echo")
#   rtt     relay-control set/ack round trips, gateway and baseline; at each
#           client count floor, gateway, baseline and in-process echo run
#           back to back with the same client count, warm-up and duration
#   fanout  sensor-stream subscribers at 100 Hz, gateway and baseline
#   fanout  saturation: subscribers at 1 kHz, gateway and baseline
#   idle    idle connections: RSS per connection, gateway and baseline
#   soak    BENCH_SOAK (default 10m; --quick: 30s) of clients of every kind
#           coming and going while the uplink's backend (examples/backend)
#           stops and starts; goroutines, open files and RSS against the start
#   go test -bench -benchmem of the hot paths (allocs/op)
# Servers run with GODEBUG=gctrace=1; their GC pauses go into the report.
# --quick runs CI-sized loads of a few seconds each (figures indicative only).
# --poll-idle keeps idle CPUs out of sleep states for the run, as latency
# benchmarks usually do (tuned's latency-performance profile does the same):
# it holds /dev/cpu_dma_latency at 0, which needs root, and is released
# when the script ends. Without it, an idle CPU may sleep, and waking it
# adds to every round trip that finds it asleep: little on bare metal, but
# on a virtual machine whose idle vCPUs halt into the hypervisor it can be
# 50-200 us, more than a round trip itself. The report says which it was.
# Environment: BENCH_PORT (default 38080; the baseline uses BENCH_PORT+1;
# the floor's echo server takes any free port),
# BENCH_OUT (a directory to keep raw results in; default a temporary one),
# BENCH_SOAK (the soak's load time; default 10m, --quick 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=full poll_idle=0
for arg in "$@"; do
  case "$arg" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --poll-idle) poll_idle=1 ;;
    *) echo "usage: scripts/bench.sh [--quick] [--poll-idle]" >&2; exit 2 ;;
  esac
done

port=${BENCH_PORT:-38080}
bport=$((port + 1))
out=${BENCH_OUT:-$(mktemp -d /tmp/edgebench.XXXXXX)}
mkdir -p "$out/results" "$out/bin"
res=$out/results
echo "raw results in $out"

if [ "$mode" = quick ]; then
  dur=2s warm=500ms
  rtt_n=1,4
  fan_n=10,100 sat_n=10,50 sat_warm=$warm
  idle_n=100,500 idle_settle=1s
  soak=(-duration "${BENCH_SOAK:-30s}" -warmup 5s -settle 10s -backend-period 10s)
else
  dur=5s warm=1s
  rtt_n=1,10,50
  fan_n=100,500,1000,2000 sat_n=100,400,800,1600,3200,4800,6400,9600
  sat_warm=3s # the steady state under thousands of fast streams, not the ramp
  idle_n=1000,2500,5000,10000 idle_settle=3s
  soak=(-duration "${BENCH_SOAK:-10m}" -warmup 10s -settle 30s -backend-period 30s)
fi

step() { printf '\n=== %s\n' "$*"; }

# CPU idle for the run, recorded for the report (cpu-idle.txt: poll or sleep).
if [ "$poll_idle" = 1 ]; then
  # A PM QoS request lives as long as the file stays open: fd 9, until the
  # script (and the servers it started) exit. The value is a 32-bit latency
  # in microseconds, written as a 10-character hex string.
  if ! { exec 9>/dev/cpu_dma_latency; } 2>/dev/null || ! printf '0x00000000' >&9; then
    echo "--poll-idle: cannot hold /dev/cpu_dma_latency at 0 (it needs root); run without --poll-idle, or as root" >&2
    exit 1
  fi
  echo poll >"$res/cpu-idle.txt"
else
  echo sleep >"$res/cpu-idle.txt"
fi

step "build"
go build -o "$out/bin/edgegate" ./cmd/edgegate
go build -o "$out/bin/edgebench" ./cmd/edgebench
(cd bench/baseline && go build -o "$out/bin/baseline" .)
go build -o "$out/bin/backend" ./examples/backend
bench=$out/bin/edgebench

# Each server gets as many open files as the hard limit allows.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 10100 ] && [ "$mode" = full ]; then
  echo "the open-file hard limit is $(ulimit -Hn); 10,000 idle connections need more (raise it, e.g. in /etc/security/limits.conf)" >&2
  exit 1
fi

# gateway_config INTERVAL: 16 GPIO relays r0..r15 and one sim-wave sensor
# (one sensor only, so that its samples' seq has no gaps but real drops).
gateway_config() {
  local f=$out/gateway-$1.yaml
  {
    echo "gateway:"
    echo "  id: edgebench"
    echo "  listen: 127.0.0.1:$port"
    echo "  compression: false"
    echo "  heartbeat: {interval: 15s, timeout: 45s}"
    echo "  limits: {max_connections: 20000, max_connections_per_ip: 20000, requests_per_second: 1000000, subscriber_queue: 1024}"
    echo "relays:"
    local i
    for i in $(seq 0 15); do
      echo "  - {name: r$i, driver: gpio, pin: GPIO$((i + 4))}"
    done
    echo "sensors:"
    echo "  - {name: wave, driver: sim-wave, interval: $1, period: 1s}"
  } >"$f"
  echo "$f"
}
relays=$(seq -s, 0 15 | sed 's/\([0-9]\+\)/r\1/g')

gw_pid="" bl_pid="" ec_pid=""
stop_servers() {
  for p in $gw_pid $bl_pid $ec_pid; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $gw_pid $bl_pid $ec_pid; do
    wait "$p" 2>/dev/null || true
  done
  gw_pid="" bl_pid="" ec_pid=""
}
trap stop_servers EXIT

wait_up() { # URL PID
  local i
  for i in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || { echo "server $2 for $1 exited; see the logs in $out" >&2; exit 1; }
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server at $1 did not come up; see the logs in $out" >&2
  exit 1
}

# start_servers PHASE INTERVAL RATE_HZ
start_servers() {
  local cfg
  cfg=$(gateway_config "$2")
  rm -rf "$out/data-$1"
  GODEBUG=gctrace=1 "$out/bin/edgegate" --sim --config "$cfg" --data-dir "$out/data-$1" --log-level warn \
    >"$out/gateway-$1.out" 2>"$res/gc-gateway-$1.log" &
  gw_pid=$!
  GODEBUG=gctrace=1 "$out/bin/baseline" -listen "127.0.0.1:$bport" -rate "$3" -relays 16 \
    >"$out/baseline-$1.out" 2>"$res/gc-gorilla-$1.log" &
  bl_pid=$!
  wait_up "http://127.0.0.1:$port/healthz" "$gw_pid"
  wait_up "http://127.0.0.1:$bport/healthz" "$bl_pid"
}

# start_echo: the floor's TCP echo server, a process of its own as the
# servers are (a round trip to it crosses the same process boundary). It
# listens on a free port and prints it: echo_addr.
echo_addr=""
start_echo() {
  "$bench" echo-server -listen 127.0.0.1:0 >"$out/echo.out" 2>&1 &
  ec_pid=$!
  local i
  for i in $(seq 1 100); do
    kill -0 "$ec_pid" 2>/dev/null || { echo "the echo server exited; see $out/echo.out" >&2; exit 1; }
    echo_addr=$(sed -n 's/^echo-server listening on //p' "$out/echo.out")
    [ -n "$echo_addr" ] && return 0
    sleep 0.1
  done
  echo "the echo server did not come up; see $out/echo.out" >&2
  exit 1
}

# Refuse to start beside another server on our ports: its /healthz would
# answer for ours and the run would measure the wrong process.
for p in "$port" "$bport"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is in use; set BENCH_PORT to a free port (the baseline uses BENCH_PORT+1)" >&2
    exit 1
  fi
done

gw=ws://127.0.0.1:$port/ws
bl=ws://127.0.0.1:$bport/ws
common=(-duration "$dur" -warmup "$warm")

step "floor and rtt"
start_servers rtt 10ms 100
start_echo
# One client count at a time, back to back: the floor right before the
# gateway; the report merges the per-count files.
for n in ${rtt_n//,/ }; do
  "$bench" floor -echo "$echo_addr" -n "$n" "${common[@]}" -out "$res/floor-process-n$n.json"
  "$bench" rtt -url "$gw" -server gateway -n "$n" -relays "$relays" "${common[@]}" -out "$res/rtt-gateway-n$n.json"
  "$bench" rtt -url "$bl" -server gorilla -n "$n" -relays "$relays" "${common[@]}" -out "$res/rtt-gorilla-n$n.json"
  "$bench" floor -inproc -n "$n" "${common[@]}" -out "$res/floor-inproc-n$n.json"
done
stop_servers

step "fanout at 100 Hz"
start_servers fanout 10ms 100
"$bench" fanout -url "$gw" -server gateway -label 100hz -rate 100 -n "$fan_n" "${common[@]}" -out "$res/fanout-gateway.json"
"$bench" fanout -url "$bl" -server gorilla -label 100hz -rate 100 -n "$fan_n" "${common[@]}" -out "$res/fanout-gorilla.json"
stop_servers

step "fanout saturation at 1 kHz"
start_servers saturation 1ms 1000
sat=(-duration "$dur" -warmup "$sat_warm")
"$bench" fanout -url "$gw" -server gateway -label saturation -rate 1000 -n "$sat_n" "${sat[@]}" -out "$res/saturation-gateway.json"
"$bench" fanout -url "$bl" -server gorilla -label saturation -rate 1000 -n "$sat_n" "${sat[@]}" -out "$res/saturation-gorilla.json"
stop_servers

step "idle connections"
start_servers idle 10ms 100
"$bench" idle -url "$gw" -server gateway -pid "$gw_pid" -n "$idle_n" -settle "$idle_settle" \
  -metrics "http://127.0.0.1:$port/metrics" -out "$res/idle-gateway.json"
"$bench" idle -url "$bl" -server gorilla -pid "$bl_pid" -n "$idle_n" -settle "$idle_settle" -out "$res/idle-gorilla.json"
stop_servers

step "soak"
# It starts its own gateway and backend on free ports. A FAIL is a figure
# of the report, not the end of the run; its logs stay in $out/soak.
"$bench" soak -gateway "$out/bin/edgegate" -backend "$out/bin/backend" "${soak[@]}" -dir "$out/soak" -out "$res/soak.json" ||
  echo "soak: FAIL or error (the report says which; logs in $out/soak)"

step "hot-path allocations (go test -bench -benchmem)"
{
  go test -run XXX -bench . -benchmem ./gateway/wsconn ./protocol
  go test -run XXX -bench 'BenchmarkHubFanOut100$' -benchmem ./gateway/sensor
  go test -run XXX -bench 'BenchmarkRelayRequest$' -benchmem ./gateway/relay
} 2>&1 | tee "$res/benchmem.txt"

step "report"
"$bench" report -results "$res" -mode "$mode" -out docs/benchmarks.md -svg docs/bench
echo "wrote docs/benchmarks.md and docs/bench/*.svg (raw results in $out)"
