#!/usr/bin/env bash
# Everything CI checks. Installs what is missing (Debian packages), then:
# gofmt, go vet, staticcheck, go mod tidy check, go test -race, the tests of
# the drivers, simulator, protocol, spool and connection layer on arm64 and
# armv6 under qemu, the allocation tests without -race, a 30-second soak,
# brief fuzzing, static ARM builds with a size budget, a smoke run of the
# armv6 binary under qemu, and the Debian packages (scripts/test-package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n=== %s\n' "$*"; }

# --- tools -------------------------------------------------------------------
need_pkgs=()
command -v qemu-arm-static >/dev/null || need_pkgs+=(qemu-user-static)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v readelf >/dev/null || need_pkgs+=(binutils)
command -v chromium >/dev/null || need_pkgs+=(chromium) # the dashboard test drives it
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto) # the MQTT tests run a broker of their own
if [ ${#need_pkgs[@]} -gt 0 ]; then
  step "installing ${need_pkgs[*]}"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_=sudo
  # Another apt run (unattended upgrades, a second shell) may hold the
  # lock: wait for it rather than fail.
  apt_() { $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  for try in 1 2 3; do
    if apt_ update -qq && apt_ install -y -qq "${need_pkgs[@]}" >/dev/null; then break; fi
    [ "$try" -lt 3 ] || { echo "could not install ${need_pkgs[*]}"; exit 1; }
    echo "apt-get failed; retrying in 20 s"; sleep 20
  done
  # Debian starts a system broker on 1883; the tests run their own, on free ports.
  if [[ " ${need_pkgs[*]} " == *" mosquitto "* ]]; then
    { $sudo_ systemctl disable --now mosquitto || $sudo_ service mosquitto stop; } >/dev/null 2>&1 || true
  fi
fi

# --- static checks -------------------------------------------------------------
step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './dist/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
# Its default checks (bugs, simplifications, unused code, deprecated API):
# a pinned release, fetched through the module proxy and built by go run,
# so that it needs no entry in go.mod.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

step "go mod tidy is clean"
cp go.mod /tmp/edgegate-go.mod.$$; cp go.sum /tmp/edgegate-go.sum.$$
go mod tidy
if ! cmp -s go.mod /tmp/edgegate-go.mod.$$ || ! cmp -s go.sum /tmp/edgegate-go.sum.$$; then
  echo "go mod tidy changed go.mod/go.sum; run it and commit the result"; diff /tmp/edgegate-go.mod.$$ go.mod || true
  cp /tmp/edgegate-go.mod.$$ go.mod; cp /tmp/edgegate-go.sum.$$ go.sum; exit 1
fi
rm -f /tmp/edgegate-go.mod.$$ /tmp/edgegate-go.sum.$$

# --- tests -------------------------------------------------------------------
step "go test -race ./..."
go test -race -count=1 -timeout 15m ./...

step "tests on ARM under qemu: arm64, and 32-bit armv6 (64-bit atomic alignment, int size) for the drivers, the simulator, the protocol, the spool and the connection layer"
arm_pkgs=(./drivers/... ./firmware-sim/... ./protocol/... ./gateway/spool/ ./gateway/wsconn/)
GOARCH=arm64 go test -count=1 -timeout 15m -exec qemu-aarch64-static "${arm_pkgs[@]}"
GOARCH=arm GOARM=6 go test -count=1 -timeout 15m -exec qemu-arm-static "${arm_pkgs[@]}"

step "allocation tests, without -race (which changes what allocates)"
go test -count=1 -run 'Allocates' -v ./gateway/... | grep -E '^(--- |ok)'

step "soak, 30 s: the real gateway and backend come and go under every kind of client (scripts/bench.sh runs it for 10 minutes)"
soak_dir=$(mktemp -d); go build -o "$soak_dir/" ./cmd/edgegate ./cmd/edgebench ./examples/backend; "$soak_dir/edgebench" soak -gateway "$soak_dir/edgegate" -backend "$soak_dir/backend" -duration 30s -warmup 5s -settle 10s -backend-period 10s -dir "$soak_dir/run" || { tail -n 40 "$soak_dir/run/gateway.log"; exit 1; }; rm -rf "$soak_dir"

step "fuzzing briefly (corpora in testdata/fuzz; run longer with -fuzztime)"
go test -run '^$' -fuzz '^FuzzReadMessage$' -fuzztime 10s -fuzzminimizetime 2s ./gateway/wsconn
go test -run '^$' -fuzz '^FuzzDecodeRequest$' -fuzztime 10s ./protocol
go test -run '^$' -fuzz '^FuzzDecodeFastMatchesJSON$' -fuzztime 10s ./protocol
go test -run '^$' -fuzz '^FuzzAckSeqMatchesJSON$' -fuzztime 5s ./protocol
go test -run '^$' -fuzz '^FuzzSubscribeOptionsMatchJSON$' -fuzztime 5s ./protocol
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 10s ./gateway/config
go test -run '^$' -fuzz '^FuzzRecover$' -fuzztime 10s -fuzzminimizetime 2s ./gateway/spool

# --- ARM builds ----------------------------------------------------------------
step "static ARM builds"
dist=$(mktemp -d)
trap 'rm -rf "$dist"; [ -n "${smoke_pid:-}" ] && kill "$smoke_pid" 2>/dev/null || true' EXIT
scripts/build-pi.sh "$dist"
for b in "$dist"/edgegate-linux-*; do
  readelf -h "$b" >/dev/null
  if readelf -l "$b" | grep -q INTERP; then echo "$b asks for a dynamic loader: not static"; exit 1; fi
done
size=$(stat -c %s "$dist/edgegate-linux-arm64")
budget=$((10 * 1024 * 1024))
echo "arm64 binary: $size bytes (budget $budget)"
[ "$size" -lt "$budget" ] || { echo "arm64 binary over its 10 MiB budget"; exit 1; }

step "smoke run: armv6 binary under qemu-arm-static, --sim"
port=$((20000 + RANDOM % 20000))
smoke_dir=$(mktemp -d)
qemu-arm-static "$dist/edgegate-linux-armv6" --sim --listen "127.0.0.1:$port" --data-dir "$smoke_dir" >"$smoke_dir/log" 2>&1 &
smoke_pid=$!
ok=""
for _ in $(seq 1 120); do
  if body=$(curl -fsS "http://127.0.0.1:$port/healthz" 2>/dev/null); then ok=1; break; fi
  kill -0 "$smoke_pid" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$ok" ]; then echo "armv6 binary did not answer /healthz"; cat "$smoke_dir/log"; exit 1; fi
echo "$body"
echo "$body" | grep -q '"status":"ok"' || { echo "unexpected /healthz body"; exit 1; }
kill -TERM "$smoke_pid"
wait "$smoke_pid" && rc=0 || rc=$?
smoke_pid=""
[ "$rc" -eq 0 ] || { echo "armv6 binary exited $rc on SIGTERM"; cat "$smoke_dir/log"; exit 1; }
rm -rf "$smoke_dir"

step "Debian packages: scripts/test-package.sh"
if [ "$(id -u)" -eq 0 ]; then scripts/test-package.sh; else echo "SKIPPED: not root (run sudo scripts/test-package.sh)"; fi

step "all checks passed"
