#!/usr/bin/env bash
# Tests the Debian packages end to end (scripts/test.sh runs it; run it as
# root). Installs what is missing (lintian, which brings dpkg-dev;
# debootstrap; qemu-user-static), then:
#   - checks that the versions package.sh makes from git describe sort as
#     dpkg should (in a throwaway repository);
#   - builds the three packages with scripts/package.sh, twice: the two
#     builds must be byte-identical;
#   - lintian: no errors, and no override but statically-linked-binary;
#   - dpkg-deb --info and --contents: the fields and the files;
#   - the armhf binary runs on an ARMv6 core (qemu-arm-static -cpu arm1176)
#     and go version -m says GOARM=6;
#   - in a throwaway Debian root (debootstrap --variant=minbase, from the
#     mirror apt uses here; a policy-rc.d forbids starting services): installs
#     an amd64 package of a lower version, edits the conffile, upgrades to the
#     new package, then to one whose shipped conffile changed (with
#     --force-confold, then --force-confnew), removes it and purges it, checking the files, the user,
#     the conffile and the generated secrets at every step, and that purge
#     leaves nothing behind.
# The minbase root is cached in /var/cache/edgegate-test (EDGEGATE_TEST_CACHE)
# so that a second run does not fetch it again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== package: %s\n' "$*"; }
fail() { printf 'test-package.sh: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || fail "run me as root: the throwaway root needs chroot"

# --- tools -------------------------------------------------------------------
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-arm-static >/dev/null || need+=(qemu-user-static)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  for try in 1 2 3; do
    if env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null; then
      break
    fi
    [ "$try" -lt 3 ] || fail "could not install ${need[*]}"
    echo "apt-get failed; retrying in 20 s"; sleep 20
  done
fi

work=$(mktemp -d /tmp/edgegate-test-package.XXXXXX)
chroot_dir=$work/root
cleanup() {
  # A chroot's /proc is not mounted by this script; only files to remove.
  rm -rf "$work"
}
trap cleanup EXIT

# --- versions from git describe -------------------------------------------------
step "package.sh's versions from git describe, in the order dpkg sorts them"
repo=$work/versions
git init -q "$repo"
install -D scripts/package.sh "$repo/scripts/package.sh"
g() { git -C "$repo" -c user.name=t -c user.email=t@t "$@"; }
pv() { "$repo/scripts/package.sh" --print-version; }
g add -A && g commit -q -m one
[[ $(pv) =~ ^0\.0\.0\+git[0-9]{8}\.1\.g[0-9a-f]{12}$ ]] || fail "untagged: $(pv)"
untagged=$(pv)
g tag v1.2.0-rc1 && rc1=$(pv)
g commit -q --allow-empty -m two && rc1_past=$(pv)
g tag v1.2.0 && rel=$(pv)
g commit -q --allow-empty -m three && past=$(pv)
g commit -q --allow-empty -m four && past2=$(pv)
touch "$repo/new-file" && dirty=$(pv)
[ "$rc1 $rel ${past%.g*} $dirty" = "1.2.0~rc1 1.2.0 1.2.0+1 ${past2}+dirty" ] || fail "versions: $rc1 $rel $past $dirty"
prev=""
for v in "$untagged" "$rc1" "$rc1_past" "$rel" "$past" "$past2"; do
  [ -z "$prev" ] || dpkg --compare-versions "$prev" lt "$v" || fail "dpkg does not sort $prev before $v"
  prev=$v
done
ok "$untagged < $rc1 < $rc1_past < $rel < $past < $past2 (then $dirty)"

# --- build, twice --------------------------------------------------------------
step "scripts/package.sh (twice: the builds must be byte-identical)"
start=$SECONDS
OUT=$work/a scripts/package.sh >/dev/null
OUT=$work/b scripts/package.sh >/dev/null
echo "two builds in $((SECONDS - start)) s"
debs=("$work"/a/edgegate_*.deb)
[ ${#debs[@]} -eq 3 ] || fail "want 3 packages, got: ${debs[*]}"
for f in "${debs[@]}"; do
  b=$(basename "$f")
  cmp "$f" "$work/b/$b" || fail "$b differs between two builds of the same commit"
  ok "$b: both builds byte-identical ($(stat -c %s "$f") bytes, sha256 $(sha256sum <"$f" | cut -c1-16)…)"
done
version=$(dpkg-deb -f "${debs[0]}" Version)
new_amd64=$work/a/edgegate_${version}_amd64.deb
armhf=$work/a/edgegate_${version}_armhf.deb

# --- lintian -------------------------------------------------------------------
step "lintian"
grep -v -e '^#' -e '^$' scripts/deb/lintian-overrides | grep -v ': statically-linked-binary \[' &&
  fail "lintian-overrides overrides more than statically-linked-binary"
for f in "${debs[@]}"; do
  out=$(lintian --fail-on error "$f" 2>&1 | grep -v 'running with root privileges' || true)
  lintian --fail-on error "$f" >/dev/null 2>&1 || fail "lintian finds errors in $(basename "$f"):"$'\n'"$out"
  [ -z "$out" ] || printf '%s\n' "$out"
  ok "lintian $(basename "$f"): no errors ($(printf '%s' "$out" | grep -c '^W:' || true) warnings)"
done

# --- fields and contents ---------------------------------------------------------
step "dpkg-deb --info and --contents"
for f in "${debs[@]}"; do
  arch=${f%.deb}; arch=${arch##*_}
  for field in Package:edgegate Version:"$version" Architecture:"$arch" Depends:passwd; do
    got=$(dpkg-deb -f "$f" "${field%%:*}")
    [ "$got" = "${field#*:}" ] || fail "$(basename "$f"): ${field%%:*} is '$got', want '${field#*:}'"
  done
  for field in Maintainer Description Installed-Size; do
    [ -n "$(dpkg-deb -f "$f" "$field")" ] || fail "$(basename "$f") has no $field"
  done
  [ "$(dpkg-deb --ctrl-tarfile "$f" | tar -xO ./conffiles)" = /etc/edgegate/edgegate.yaml ] ||
    fail "conffiles is not just /etc/edgegate/edgegate.yaml"
  listing=$(dpkg-deb -c "$f")
  for want in "-rwxr-xr-x root/root .* ./usr/bin/edgegate" "-rwxr-xr-x root/root .* ./usr/bin/edgectl" \
    "-rw-r--r-- root/root .* ./lib/systemd/system/edgegate.service" "-rw-r--r-- root/root .* ./etc/edgegate/edgegate.yaml" \
    "-rw-r--r-- root/root .* ./usr/share/doc/edgegate/copyright" "-rw-r--r-- root/root .* ./usr/share/doc/edgegate/changelog.gz" \
    "-rw-r--r-- root/root .* ./usr/share/man/man1/edgegate.1.gz" "-rw-r--r-- root/root .* ./usr/share/man/man1/edgectl.1.gz"; do
    grep -q -- "^$want\$" <<<"$listing" || fail "$(basename "$f") has no $want:"$'\n'"$listing"
  done
  grep -v ' root/root ' <<<"$listing" && fail "$(basename "$f") has files not owned by root/root"
  ok "$(basename "$f"): fields and files"
done
dpkg-deb --info "$new_amd64"

ex=$work/x
dpkg-deb -x "$new_amd64" "$ex"
zcat "$ex/usr/share/man/man1/edgegate.1.gz" | head -1 | grep -q '^\.TH EDGEGATE 1 ' || fail "edgegate.1 is not a man page"
grep -q '^ExecStart=/usr/bin/edgegate --config /etc/edgegate/edgegate.yaml' "$ex/lib/systemd/system/edgegate.service" ||
  fail "the unit does not run /usr/bin/edgegate"
# Every Go module in the binaries has its paragraph in the copyright file.
for m in $(go version -m "$ex/usr/bin/edgegate" "$ex/usr/bin/edgectl" | awk '$1 == "dep" { print $2 }' | sort -u); do
  grep -q "^Files:.* $m/\*" "$ex/usr/share/doc/edgegate/copyright" || fail "copyright has no Files: paragraph for $m"
done
ok "man pages, unit, copyright lists every Go module linked in"

# --- armhf on an ARMv6 core -------------------------------------------------------
step "armhf: edgegate version on qemu-arm-static -cpu arm1176 (Pi 1 / Zero)"
ax=$work/armhf
dpkg-deb -x "$armhf" "$ax"
info=$(go version -m "$ax/usr/bin/edgegate")
grep -q $'\tGOARM=6$' <<<"$info" || fail "armhf edgegate is not GOARM=6:"$'\n'"$info"
grep -q $'\tCGO_ENABLED=0$' <<<"$info" || fail "armhf edgegate is not CGO_ENABLED=0"
for cmd in edgegate edgectl; do
  line=$(qemu-arm-static -cpu arm1176 "$ax/usr/bin/$cmd" version) || fail "armhf $cmd does not run on arm1176"
  [[ $line == "$cmd $version (commit $(git rev-parse HEAD)"*")" ]] || fail "armhf $cmd version printed '$line'"
  ok "$line"
done

# --- a throwaway Debian root --------------------------------------------------------
# The mirror and suite apt uses here (deb822 sources or sources.list).
mirror="" suite=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  suite=$(awk '/^Suites:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  read -r mirror suite < <(awk '$1 == "deb" { print $2, $3; exit }' /etc/apt/sources.list)
fi
[ -n "$suite" ] || suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
cache=${EDGEGATE_TEST_CACHE:-/var/cache/edgegate-test}
tarball=$cache/$suite-minbase-$(dpkg --print-architecture).tar.gz
mkdir -p "$cache"
(
  flock 9
  if [ ! -s "$tarball" ]; then
    step "debootstrap --variant=minbase $suite from $mirror (cached as $tarball)"
    t0=$SECONDS
    fresh=$work/debootstrap
    debootstrap --variant=minbase "$suite" "$fresh" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log"; fail "debootstrap failed"; }
    rm -rf "$fresh/var/cache/apt/archives/"*.deb
    tar -C "$fresh" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$fresh"
    echo "debootstrap in $((SECONDS - t0)) s"
  fi
) 9>"$cache/lock"

step "throwaway root from $tarball"
mkdir -p "$chroot_dir"
tar -C "$chroot_dir" -xzf "$tarball"
# No service may start in here.
printf '#!/bin/sh\nexit 101\n' >"$chroot_dir/usr/sbin/policy-rc.d"
chmod 0755 "$chroot_dir/usr/sbin/policy-rc.d"
in_root() { chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
# One device group of Raspberry Pi OS exists (gpio), one does not (i2c);
# dialout comes with Debian.
in_root groupadd --system gpio

old_version=0.0.0~test1
dpkg --compare-versions "$old_version" lt "$version" || fail "$old_version is not lower than $version"
ARCHS=amd64 OUT=$work/old scripts/package.sh "$old_version" >/dev/null
cp "$work/old/edgegate_${old_version}_amd64.deb" "$chroot_dir/tmp/old.deb"
cp "$new_amd64" "$chroot_dir/tmp/new.deb"

# snapshot: every path in the root but the ones dpkg and the logs change
# whatever is installed, the backups useradd and userdel keep of
# /etc/passwd and friends, and this test's own files.
snapshot() {
  (cd "$chroot_dir" && find . -xdev \( -path ./tmp -o -path ./var/lib/dpkg -o -path ./var/log -o -path ./proc \
    -o -path ./var/cache/debconf -o -path ./etc/passwd- -o -path ./etc/group- -o -path ./etc/shadow- \
    -o -path ./etc/gshadow- \) -prune -o -print | LC_ALL=C sort)
}
perms() { in_root stat -c '%a %U:%G' "$1"; }
expect() { # DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  "$@" || fail "$what"
}
# The generated secrets: the secret, the keys, and the config's pointer to them.
config_keys() { grep -xE '[[:space:]]*keys_file: /etc/edgegate/api-keys' "$chroot_dir/etc/edgegate/edgegate.yaml"; }
sums() { (cd "$chroot_dir/etc/edgegate" && sha256sum secret.key api-keys) && config_keys; }

snapshot >"$work/before"

step "install $old_version (the lower version)"
in_root dpkg -i /tmp/old.deb
for f in /usr/bin/edgegate /usr/bin/edgectl /lib/systemd/system/edgegate.service /etc/edgegate/edgegate.yaml \
  /usr/share/man/man1/edgegate.1.gz /usr/share/man/man1/edgectl.1.gz /usr/share/doc/edgegate/copyright; do
  [ -f "$chroot_dir$f" ] || fail "$f is not installed"
done
[[ $(in_root edgegate version) == "edgegate $old_version (commit "* ]] || fail "edgegate version: $(in_root edgegate version)"
pw=$(in_root getent passwd edgegate) || fail "no user edgegate"
IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/edgegate ] && [ "$shell" = /usr/sbin/nologin ] || fail "user edgegate: $pw"
groups=" $(in_root id -nG edgegate) "
[[ $groups == *" gpio "* && $groups == *" dialout "* && $groups != *" i2c "* ]] || fail "edgegate's groups:$groups"
ok "user edgegate (uid $uid, home $home, $shell), groups:$groups"
[ "$(perms /var/lib/edgegate)" = "750 edgegate:edgegate" ] || fail "/var/lib/edgegate is $(perms /var/lib/edgegate)"
check_etc_perms() {
  [ "$(perms /etc/edgegate)" = "750 root:edgegate" ] || fail "/etc/edgegate is $(perms /etc/edgegate)"
  [ "$(perms /etc/edgegate/edgegate.yaml)" = "640 root:edgegate" ] || fail "edgegate.yaml is $(perms /etc/edgegate/edgegate.yaml)"
}
check_etc_perms
for f in secret.key api-keys; do
  [ "$(perms /etc/edgegate/$f)" = "640 root:edgegate" ] || fail "/etc/edgegate/$f is $(perms /etc/edgegate/$f)"
done
read -r op_name op_role op_key vi_name vi_role vi_key < <(grep -v '^#' "$chroot_dir/etc/edgegate/api-keys" | tr '\n' ' '; echo)
[[ $op_name == operator && $op_role == operator && $vi_name == viewer && $vi_role == viewer &&
  $op_key =~ ^[0-9a-f]{48}$ && $vi_key =~ ^[0-9a-f]{48}$ && $op_key != "$vi_key" ]] ||
  fail "api-keys: $(cat "$chroot_dir/etc/edgegate/api-keys")"
[ -n "$(config_keys)" ] || fail "the config does not name api-keys as its keys_file"
cmp "$ex/etc/edgegate/edgegate.yaml" "$chroot_dir/etc/edgegate/edgegate.yaml" || fail "a maintainer script changed the conffile"
[ "$(wc -c <"$chroot_dir/etc/edgegate/secret.key")" -ge 40 ] || fail "secret.key is short"
expect "check-config refuses the installed config" in_root edgegate check-config /etc/edgegate/edgegate.yaml
expect "edgegate token cannot sign with the installed config" in_root edgegate token --role viewer --ttl 1m --config /etc/edgegate/edgegate.yaml >/dev/null
[ -L "$chroot_dir/etc/systemd/system/multi-user.target.wants/edgegate.service" ] || fail "edgegate.service is not enabled"
ok "files, data dir, /etc/edgegate (0750), config (as shipped), secret and api-keys (0640 root:edgegate), check-config, enabled"
sums >"$work/sums"

# Running postinst again changes nothing (idempotent).
(cd "$chroot_dir" && find etc/edgegate var/lib/edgegate etc/passwd etc/group -printf '%p %m %U %G %s %T@\n' | sort) >"$work/state1"
in_root env DPKG_MAINTSCRIPT_PACKAGE=edgegate DPKG_MAINTSCRIPT_NAME=postinst \
  /var/lib/dpkg/info/edgegate.postinst configure "$old_version"
(cd "$chroot_dir" && find etc/edgegate var/lib/edgegate etc/passwd etc/group -printf '%p %m %U %G %s %T@\n' | sort) >"$work/state2"
diff "$work/state1" "$work/state2" || fail "a second postinst configure changed the above"
ok "postinst configure again: nothing changed"

step "local edit of /etc/edgegate/edgegate.yaml, state in /var/lib/edgegate"
sed -i 's|^  listen: 0.0.0.0:8080$|  listen: 127.0.0.1:8081|' "$chroot_dir/etc/edgegate/edgegate.yaml"
printf '# edited on this Pi\n' >>"$chroot_dir/etc/edgegate/edgegate.yaml"
grep -q '127.0.0.1:8081' "$chroot_dir/etc/edgegate/edgegate.yaml" || fail "the test's edit did not apply"
cp "$chroot_dir/etc/edgegate/edgegate.yaml" "$work/edited.yaml"
echo '{"light":"on"}' >"$chroot_dir/var/lib/edgegate/relay-state.test"

step "upgrade $old_version -> $version"
in_root dpkg -i /tmp/new.deb </dev/null
[ "$(in_root dpkg-query -W -f '${Version} ${db:Status-Abbrev}' edgegate)" = "$version ii " ] ||
  fail "after the upgrade: $(in_root dpkg-query -W -f '${Version} ${db:Status-Abbrev}' edgegate)"
[[ $(in_root edgegate version) == "edgegate $version (commit "* ]] || fail "edgegate version: $(in_root edgegate version)"
cmp "$work/edited.yaml" "$chroot_dir/etc/edgegate/edgegate.yaml" || fail "the upgrade changed the edited conffile"
ls "$chroot_dir"/etc/edgegate/*.dpkg-* 2>/dev/null && fail "the upgrade left .dpkg-* files"
sums | diff "$work/sums" - || fail "the upgrade changed the secret or the keys"
[ -f "$chroot_dir/var/lib/edgegate/relay-state.test" ] || fail "the upgrade lost the data dir's content"
in_root getent passwd edgegate | cmp -s - <(printf '%s\n' "$pw") || fail "the upgrade changed the user"
[ -L "$chroot_dir/etc/systemd/system/multi-user.target.wants/edgegate.service" ] || fail "not enabled after the upgrade"
expect "check-config refuses the upgraded config" in_root edgegate check-config /etc/edgegate/edgegate.yaml
check_etc_perms
ok "new binaries; edited conffile, secret, keys, data, user and enablement kept"

step "the installed gateway accepts the generated keys, and tokens signed with the secret"
port=$((20000 + RANDOM % 20000))
# Not through in_root, a function: in the background it would be a
# subshell, and killing that would leave the gateway running. chroot and
# env exec, so $! is the gateway itself.
chroot "$chroot_dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
  edgegate --config /etc/edgegate/edgegate.yaml --listen "127.0.0.1:$port" --data-dir /tmp/gw >"$work/gw.log" 2>&1 &
gw_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$gw_pid" 2>/dev/null || { cat "$work/gw.log"; fail "the installed gateway did not start"; }
  sleep 0.2
done
token=$(in_root edgectl token --role operator --ttl 10m) || fail "edgectl token cannot read the secret"
for cred in "operator key:$op_key" "viewer key:$vi_key" "signed token:$token"; do
  "$ex/usr/bin/edgectl" --url "ws://127.0.0.1:$port/ws" --token "${cred#*:}" list >/dev/null ||
    { kill "$gw_pid"; cat "$work/gw.log"; fail "the gateway refused the ${cred%%:*}"; }
done
rc=0; refused=$("$ex/usr/bin/edgectl" --url "ws://127.0.0.1:$port/ws" --token not-a-key list 2>&1) || rc=$?
kill -TERM "$gw_pid"; wait "$gw_pid" || true
[ "$rc" -eq 3 ] && [[ $refused == *401* ]] || fail "a wrong token got exit $rc, want 3 with 401: $refused"
ok "the operator and viewer keys and a token from edgectl token accepted, a wrong key refused"

step "upgrade to a package whose shipped conffile changed (--force-confold, as a non-interactive apt would)"
# The new package again, with a later version and one line more in the
# shipped edgegate.yaml.
repack=$work/repack
dpkg-deb -R "$new_amd64" "$repack"
sed -i "s|^Version: .*|Version: $version+conffile1|" "$repack/DEBIAN/control"
echo "# a line a later version added" >>"$repack/etc/edgegate/edgegate.yaml"
cp "$repack/etc/edgegate/edgegate.yaml" "$work/shipped.yaml"
dpkg-deb --root-owner-group -b "$repack" "$chroot_dir/tmp/newer.deb" >/dev/null
in_root dpkg -i --force-confdef --force-confold /tmp/newer.deb </dev/null
cmp "$work/edited.yaml" "$chroot_dir/etc/edgegate/edgegate.yaml" || fail "the edited conffile was replaced"
cmp "$work/shipped.yaml" "$chroot_dir/etc/edgegate/edgegate.yaml.dpkg-dist" || fail "no edgegate.yaml.dpkg-dist with the shipped file"
sums | diff "$work/sums" - || fail "the upgrade changed the secret or the keys"
ok "the edited conffile kept, the shipped one beside it as edgegate.yaml.dpkg-dist; secrets kept"

step "upgrade again, taking the package's new conffile (--force-confnew)"
sed -i -e "s|^Version: .*|Version: $version+conffile2|" "$repack/DEBIAN/control"
echo "# and one more" >>"$repack/etc/edgegate/edgegate.yaml"
dpkg-deb --root-owner-group -b "$repack" "$chroot_dir/tmp/newest.deb" >/dev/null
in_root dpkg -i --force-confnew /tmp/newest.deb </dev/null
grep -qx '# and one more' "$chroot_dir/etc/edgegate/edgegate.yaml" || fail "the package's new conffile was not installed"
cmp "$work/edited.yaml" "$chroot_dir/etc/edgegate/edgegate.yaml.dpkg-old" || fail "no edgegate.yaml.dpkg-old with the edited file"
sums | diff "$work/sums" - || fail "taking the new conffile lost or changed the keys"
expect "check-config refuses the new config" in_root edgegate check-config /etc/edgegate/edgegate.yaml
ok "the new conffile installed, still naming the same keys; the edited one kept as edgegate.yaml.dpkg-old"
cp "$chroot_dir/etc/edgegate/edgegate.yaml" "$work/current.yaml"

step "remove"
in_root dpkg -r edgegate
[ "$(in_root dpkg-query -W -f '${db:Status-Abbrev}' edgegate)" = "rc " ] || fail "not in state rc after remove"
for f in /usr/bin/edgegate /usr/bin/edgectl /lib/systemd/system/edgegate.service /usr/share/man/man1/edgegate.1.gz; do
  [ ! -e "$chroot_dir$f" ] || fail "remove left $f"
done
cmp "$work/current.yaml" "$chroot_dir/etc/edgegate/edgegate.yaml" || fail "remove changed the conffile"
sums | diff "$work/sums" - || fail "remove changed the secret or the keys"
in_root getent passwd edgegate >/dev/null || fail "remove deleted the user"
[ -d "$chroot_dir/var/lib/edgegate" ] || fail "remove deleted the data dir"
ok "programs and unit gone; configuration, secrets, data dir and user kept"

step "purge"
in_root dpkg -P edgegate
in_root dpkg-query -W edgegate >/dev/null 2>&1 && fail "dpkg still knows edgegate after purge"
! in_root getent passwd edgegate >/dev/null || fail "purge left the user"
! in_root getent group edgegate >/dev/null || fail "purge left the group"
! grep -q edgegate "$chroot_dir/etc/group" "$chroot_dir/etc/passwd" "$chroot_dir/etc/shadow" || fail "purge left edgegate in /etc/passwd, group or shadow"
[ -z "$(in_root dpkg-statoverride --list | grep edgegate)" ] || fail "purge left a stat override"
snapshot >"$work/after"
diff "$work/before" "$work/after" || fail "purge left the paths above behind (> added, < removed)"
ok "nothing left: the same paths as before the first install, no user, no group, no stat override"

step "package tests passed ($version)"
