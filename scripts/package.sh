#!/usr/bin/env bash
# Builds the Debian packages of edgegate with dpkg-deb, from static binaries:
#   dist/edgegate_<version>_arm64.deb   64-bit Raspberry Pi OS (Pi 3, 4, 5, Zero 2 W)
#   dist/edgegate_<version>_armhf.deb   32-bit Raspberry Pi OS: built for ARMv6
#                                       (GOARM=6), so it runs on every Pi
#   dist/edgegate_<version>_amd64.deb   PCs and servers
#
# Usage: scripts/package.sh [VERSION]
#   VERSION defaults to what git describe says, made a Debian version:
#   v1.2.0 -> 1.2.0, v1.2.0-rc1 -> 1.2.0~rc1 (before 1.2.0), 3 commits past
#   v1.2.0 -> 1.2.0+3.g<hash> (after 1.2.0, before 1.2.1); with no tag
#   0.0.0+git<commit date>.<commit count>.<hash>; +dirty for a changed tree.
#   OUT=DIR writes the packages to DIR instead of dist/; ARCHS="amd64"
#   builds only those. --print-version prints the version and stops.
#
# Reproducible: the same commit gives the same bytes. The time of every file
# and of the archive is the commit's (SOURCE_DATE_EPOCH), owners are
# root:root, modes are set here, the binaries are built with -trimpath and
# no build id, and gzip is run with -n.
#
# Needs: go, dpkg-deb (package dpkg), git.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deb=$root/scripts/deb
out=${OUT:-dist}
archs=${ARCHS:-arm64 armhf amd64}
maintainer=${MAINTAINER:-edgegate maintainers <maintainers@users.noreply.github.com>}

die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb not found: apt-get install dpkg"

commit=$(git rev-parse HEAD)
dirty=""
[ -z "$(git status --porcelain 2>/dev/null)" ] || dirty=+dirty
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}

# debian_version turns git describe's output into a Debian version that
# sorts the way the tags do.
debian_version() {
  local d
  if d=$(git describe --tags --match 'v[0-9]*' HEAD 2>/dev/null); then
    d=${d#v}
    if [[ $d =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then # past a tag
      d="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
    fi
    # What is left after a '-' is a pre-release (1.2.0-rc1): before 1.2.0.
    d=${d//-/\~}
  else
    d="0.0.0+git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d).$(git rev-list --count HEAD).g$(git rev-parse --short=12 HEAD)"
  fi
  printf '%s%s\n' "$d" "$dirty"
}

if [ "${1:-}" = --print-version ]; then
  debian_version
  exit 0
fi
version=${1:-$(debian_version)}
version=${version#v}
[[ $version =~ ^([0-9]+:)?[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$ ]] ||
  die "$version is not a Debian version (digits first, then letters, digits and . + ~)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# go_build GOARCH GOARM OUT PKG: a static binary that depends only on the
# commit and the version.
go_build() {
  CGO_ENABLED=0 GOOS=linux GOARCH=$1 GOARM=$2 GOFLAGS='' go build -trimpath -buildvcs=false \
    -ldflags="-s -w -buildid= -X main.version=$version -X main.commit=$commit$dirty" -o "$3" "$4"
}

# The man pages come from the commands' own --help (help --man), run here.
host=$work/host
go_build "$(go env GOHOSTARCH)" "" "$host/edgegate" ./cmd/edgegate
go_build "$(go env GOHOSTARCH)" "" "$host/edgectl" ./cmd/edgectl

mkdir -p "$out"
for arch in $archs; do
  case $arch in
    arm64) goarch=arm64 goarm="" ;;
    armhf) goarch=arm goarm=6 ;; # ARMv6 + VFP: Pi 1 and Zero too
    amd64) goarch=amd64 goarm="" ;;
    *) die "unknown architecture $arch (arm64, armhf, amd64)" ;;
  esac
  t=$work/$arch
  echo "building edgegate_${version}_$arch.deb (GOARCH=$goarch${goarm:+ GOARM=$goarm})"
  install -d "$t/DEBIAN" "$t/usr/bin" "$t/lib/systemd/system" "$t/etc/edgegate" \
    "$t/usr/share/doc/edgegate" "$t/usr/share/man/man1" "$t/usr/share/lintian/overrides"
  go_build "$goarch" "$goarm" "$t/usr/bin/edgegate" ./cmd/edgegate
  go_build "$goarch" "$goarm" "$t/usr/bin/edgectl" ./cmd/edgectl

  {
    echo "# Installed by the edgegate package; an upgrade replaces this file."
    echo "# Local changes belong in: systemctl edit edgegate"
    sed -e '1,3d' -e 's|@BIN@|/usr/bin/edgegate|g' "$deb/edgegate.service.in"
  } >"$t/lib/systemd/system/edgegate.service"
  cp configs/package.yaml "$t/etc/edgegate/edgegate.yaml"
  cp "$deb/copyright" "$t/usr/share/doc/edgegate/copyright"
  cp "$deb/lintian-overrides" "$t/usr/share/lintian/overrides/edgegate"
  "$host/edgegate" help --man | gzip -n -9 >"$t/usr/share/man/man1/edgegate.1.gz"
  "$host/edgectl" help --man | gzip -n -9 >"$t/usr/share/man/man1/edgectl.1.gz"
  {
    printf 'edgegate (%s) stable; urgency=medium\n\n' "$version"
    printf '  * Built by scripts/package.sh from the commit\n    %s%s;\n' "$commit" "$dirty"
    printf '    the changes are in the project'"'"'s git history.\n\n'
    printf ' -- %s  %s\n' "$maintainer" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
  } | gzip -n -9 >"$t/usr/share/doc/edgegate/changelog.gz"

  install -m 0755 "$deb/postinst" "$deb/prerm" "$deb/postrm" "$t/DEBIAN/"
  echo /etc/edgegate/edgegate.yaml >"$t/DEBIAN/conffiles"
  (cd "$t" && find usr lib -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$t/DEBIAN/md5sums"

  # Installed-Size as dpkg-gencontrol counts it: KiB per file, 1 per directory.
  size=$(cd "$t" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' -o -printf '1024\n' \) |
    awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
  sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" -e "s|@MAINTAINER@|$maintainer|" \
    "$deb/control.in" >"$t/DEBIAN/control"

  # Modes and times that do not depend on the umask or the clock.
  find "$t" -type d -exec chmod 0755 {} +
  find "$t" -type f -exec chmod 0644 {} +
  chmod 0755 "$t/usr/bin/edgegate" "$t/usr/bin/edgectl" "$t/DEBIAN/postinst" "$t/DEBIAN/prerm" "$t/DEBIAN/postrm"
  find "$t" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

  dpkg-deb --root-owner-group -Zxz -z9 --build "$t" "$out/edgegate_${version}_$arch.deb" >/dev/null
done
ls -l "$out"/edgegate_"${version}"_*.deb
