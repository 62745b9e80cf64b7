#!/usr/bin/env bash
# Installs edgegate as a systemd service on a Raspberry Pi (or any Linux box).
# Run it as root on the Pi, from a copy of the repository or next to the
# binaries that scripts/build-pi.sh made:
#
#   sudo scripts/install.sh                     # picks ./edgegate-linux-<arch> by uname -m
#   sudo scripts/install.sh dist/edgegate-linux-arm64
#
# What it does (every step is skipped when already done, so running it again
# is safe, e.g. to upgrade the binary):
#   - installs the binary to /usr/local/bin/edgegate
#   - creates the groups gpio, i2c and dialout if absent (with a warning) and
#     a system user edgegate in them
#   - creates /etc/edgegate/secret.key (the token secret) and
#     /etc/edgegate/edgegate.yaml from an example config; an existing file is
#     never overwritten
#   - creates the data dir /var/lib/edgegate
#   - writes the hardened unit /etc/systemd/system/edgegate.service
#   - runs 'edgegate check-config' and only then enables and (re)starts it
#
# Options:
#   --example FILE   example config for a new /etc/edgegate/edgegate.yaml
#                    (default: configs/relay-hat-4ch.yaml beside this script)
#   --dry-run        print what would be done; change nothing
#   --prefix DIR     install under DIR instead of / (a test or packaging
#                    root): no users, groups, ownership or systemctl
#   --no-systemd     write the unit file but do not run systemctl
#   --no-start       enable the service but do not (re)start it
#   -h, --help       this text
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
say() { printf '%s\n' "$*"; }

prefix=""
dry_run=0
systemd=1
start=1
binary=""
example="$script_dir/../configs/relay-hat-4ch.yaml"

while [ $# -gt 0 ]; do
  case "$1" in
    --example) [ $# -ge 2 ] || die "--example needs a file"; example=$2; shift 2 ;;
    --example=*) example=${1#*=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    --no-systemd) systemd=0; shift ;;
    --no-start) start=0; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      [ -z "$binary" ] || die "more than one binary given: $binary and $1"
      binary=$1; shift ;;
  esac
done

if [ -n "$prefix" ]; then
  if [ "$dry_run" -eq 0 ]; then
    mkdir -p "$prefix" || die "cannot create --prefix $prefix"
  fi
  case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
  prefix=${prefix%/}
  systemd=0
fi
manage_users=1
[ -z "$prefix" ] || manage_users=0

# Paths (as the service sees them) and where this run writes them.
bin_path=/usr/local/bin/edgegate
etc_dir=/etc/edgegate
config_path=$etc_dir/edgegate.yaml
secret_path=$etc_dir/secret.key
data_dir=/var/lib/edgegate
unit_path=/etc/systemd/system/edgegate.service
user=edgegate
groups=(gpio i2c dialout)

# run executes a command, or only prints it with --dry-run.
run() {
  if [ "$dry_run" -eq 1 ]; then
    printf 'would run:'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# --- preconditions -----------------------------------------------------------
if [ "$dry_run" -eq 0 ] && [ "$manage_users" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
  die "run me as root (sudo $0 ...), or try --dry-run to see what I would do"
fi

if [ -z "$binary" ]; then
  case "$(uname -m)" in
    aarch64 | arm64) arch=arm64 ;;
    armv7l | armv8l) arch=armv7 ;;
    armv6l) arch=armv6 ;;
    x86_64) arch=amd64 ;;
    *) die "unknown machine $(uname -m); pass the edgegate binary to install as an argument" ;;
  esac
  for candidate in "./edgegate-linux-$arch" "$script_dir/../dist/edgegate-linux-$arch"; do
    if [ -f "$candidate" ]; then binary=$candidate; break; fi
  done
  [ -n "$binary" ] || die "no ./edgegate-linux-$arch here (nor in dist/): build it with scripts/build-pi.sh and copy it to the Pi, or pass the binary's path as an argument"
fi
[ -f "$binary" ] || die "$binary: no such file"
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
if ! "$binary" version >/dev/null 2>&1; then
  die "$binary does not run on this machine ($(uname -m)): pick the build for this board (arm64 for a 64-bit OS, armv7 for a 32-bit OS on Pi 2/3/4, armv6 for Pi 1/Zero)"
fi
[ -f "$example" ] || die "example config $example not found; pass one with --example FILE"

say "installing $("$binary" version) from $binary${prefix:+ under $prefix}"
[ "$dry_run" -eq 0 ] || say "(dry run: nothing is changed)"

# --- binary ------------------------------------------------------------------
if [ -f "$prefix$bin_path" ] && cmp -s "$binary" "$prefix$bin_path"; then
  say "ok: $bin_path is already this binary"
else
  run install -D -m 0755 "$binary" "$prefix$bin_path"
fi

# --- groups and user -----------------------------------------------------------
if [ "$manage_users" -eq 1 ]; then
  for g in "${groups[@]}"; do
    if ! getent group "$g" >/dev/null; then
      warn "group $g does not exist (Raspberry Pi OS has it); creating it. Make sure udev gives the devices to it, see docs/raspberry-pi.md"
      run groupadd --system "$g"
    fi
  done
  if ! id "$user" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$data_dir" --no-create-home \
      --shell /usr/sbin/nologin --comment "edgegate gateway" "$user"
  fi
  missing=()
  for g in "${groups[@]}"; do
    id -nG "$user" 2>/dev/null | tr ' ' '\n' | grep -qx "$g" || missing+=("$g")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    run usermod --append --groups "$(IFS=,; echo "${missing[*]}")" "$user"
  else
    say "ok: user $user is in ${groups[*]}"
  fi
else
  say "skipping users, groups and ownership under --prefix"
fi

# chown_ sets ownership when users are managed.
chown_() { [ "$manage_users" -eq 0 ] || run chown "$@"; }

# --- /etc/edgegate -------------------------------------------------------------
run install -d -m 0750 "$prefix$etc_dir"
chown_ "root:$user" "$prefix$etc_dir"

if [ -e "$prefix$secret_path" ]; then
  say "ok: keeping the existing $secret_path"
else
  if [ "$dry_run" -eq 1 ]; then
    say "would create $secret_path (32 random bytes, base64; mode 0640)"
  else
    (umask 077 && head -c 32 /dev/urandom | base64 >"$prefix$secret_path")
    chmod 0640 "$prefix$secret_path"
  fi
  chown_ "root:$user" "$prefix$secret_path"
fi

if [ -e "$prefix$config_path" ]; then
  say "ok: keeping the existing $config_path (never overwritten; compare with $example)"
else
  if [ "$dry_run" -eq 1 ]; then
    say "would create $config_path from $example, with fresh random API keys"
  else
    # Every "key: CHANGE-ME-..." placeholder becomes its own random key.
    tmp=$(mktemp "$prefix$etc_dir/.edgegate.yaml.XXXXXX")
    while IFS= read -r line || [ -n "$line" ]; do
      while [[ $line =~ key:[[:space:]]*(CHANGE-ME-[A-Za-z0-9_-]*) ]]; do
        key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        line=${line/"${BASH_REMATCH[1]}"/$key}
      done
      printf '%s\n' "$line"
    done <"$example" >"$tmp"
    chmod 0640 "$tmp"
    mv "$tmp" "$prefix$config_path"
  fi
  chown_ "root:$user" "$prefix$config_path"
fi

# --- data dir ------------------------------------------------------------------
run install -d -m 0750 "$prefix$data_dir"
chown_ "$user:$user" "$prefix$data_dir"

# --- systemd unit ----------------------------------------------------------------
unit_template="$script_dir/deb/edgegate.service.in" # the Debian package's unit too
[ -f "$unit_template" ] || die "$unit_template not found: copy scripts/ whole (see docs/raspberry-pi.md)"
unit=$(
  printf '%s\n' "# Written by scripts/install.sh; running it again rewrites this file." \
    "# Local changes belong in: systemctl edit edgegate"
  sed -e '1,3d' -e "s|@BIN@|$bin_path|g" "$unit_template"
)
if [ -f "$prefix$unit_path" ] && [ "$(cat "$prefix$unit_path")" = "$unit" ]; then
  say "ok: $unit_path is up to date"
  unit_changed=0
else
  unit_changed=1
  if [ "$dry_run" -eq 1 ]; then
    say "would write $unit_path:"
    printf '%s\n' "$unit" | sed 's/^/    /'
  else
    mkdir -p "$(dirname "$prefix$unit_path")"
    printf '%s\n' "$unit" >"$prefix$unit_path.tmp"
    chmod 0644 "$prefix$unit_path.tmp"
    mv "$prefix$unit_path.tmp" "$prefix$unit_path"
  fi
fi

# --- check the config, then enable -----------------------------------------------
if [ "$dry_run" -eq 1 ]; then
  run "$bin_path" check-config "$config_path"
elif ! "$prefix$bin_path" check-config "$prefix$config_path"; then
  die "the configuration has the problems above; edit $config_path and run install.sh again (the service was not enabled or restarted)"
fi

if [ "$systemd" -eq 1 ]; then
  if ! command -v systemctl >/dev/null; then
    warn "no systemctl: the unit is written but not enabled; start edgegate yourself"
  else
    [ "$unit_changed" -eq 0 ] || run systemctl daemon-reload
    run systemctl enable edgegate.service
    if [ "$start" -eq 1 ]; then
      run systemctl restart edgegate.service
    fi
  fi
else
  say "not touching systemd (--no-systemd or --prefix)"
fi

say "done. Next:"
say "  systemctl status edgegate; journalctl -u edgegate -f"
say "  curl -s http://127.0.0.1:8080/healthz   (the port is gateway.listen in $config_path)"
say "  edgegate token --role operator --ttl 1h --config $config_path   (as root or group $user)"
