#!/usr/bin/env sh
# Unpacks promtool from Debian's prometheus package into VENV/bin, without root: the
# package is downloaded (apt-get download) and unpacked (dpkg-deb -x), never installed.
# Only where the package lists are missing and we are root does it refresh them first.
set -eu
venv=$1
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || exit 1
  apt-get update -qq >/dev/null && apt-get download prometheus >/dev/null 2>&1 || exit 1
fi
dpkg-deb -x prometheus_*.deb unpacked
cp unpacked/usr/bin/promtool "$OLDPWD/$venv/bin/promtool"
echo "promtool unpacked into $venv/bin"
