#!/bin/sh
# deps.sh build|test - install the Debian packages bucketfs needs.
#
# Checks each package with dpkg-query; as root, installs what is missing with
# apt-get (running `apt-get update` first); otherwise prints the exact
# command to run and fails.
#
# test also needs Node.js with npm (Debian's nodejs and npm packages when no
# node/npm is on PATH) and the Azure Storage emulator Azurite, installed
# with npm into tests/.azurite (project-local, git-ignored) at the pinned
# AZURITE_VERSION: the last release whose engines accept Debian 12's
# Node 18 (3.36 wants Node >= 21).  Nothing is done when it is there.
set -eu

AZURITE_VERSION=3.35.0
AZURITE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/.azurite"

azurite_install() {
	pkg="$AZURITE_DIR/node_modules/azurite/package.json"
	if [ -f "$pkg" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" "$pkg" &&
	   [ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
		return 0
	fi
	echo "bucketfs: installing azurite@$AZURITE_VERSION into $AZURITE_DIR" >&2
	mkdir -p "$AZURITE_DIR"
	[ -f "$AZURITE_DIR/package.json" ] ||
		echo '{ "name": "bucketfs-test-azurite", "private": true }' \
			>"$AZURITE_DIR/package.json"
	npm install --prefix "$AZURITE_DIR" --no-audit --no-fund \
		--loglevel=error "azurite@$AZURITE_VERSION" >&2
}

BUILD_PKGS="build-essential pkg-config fuse3 libfuse3-dev libcurl4-openssl-dev
libssl-dev libsqlite3-dev libinih-dev libexpat1-dev libsystemd-dev sqlite3
libpq-dev"
TEST_PKGS="check python3 python3-pytest curl s3fs radosgw ceph-mon ceph-osd
ceph-common man-db groff-base systemd clang libclang-rt-14-dev psmisc
postgresql"

case "${1:-build}" in
build) want="$BUILD_PKGS" ;;
test)  want="$BUILD_PKGS $TEST_PKGS" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

if [ "${1:-build}" = test ] && ! { command -v node && command -v npm; } \
	>/dev/null 2>&1; then
	want="$want nodejs npm"
fi

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
if [ -z "$missing" ]; then
	[ "${1:-build}" = test ] && azurite_install
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "bucketfs: missing packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "bucketfs: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q $missing >/dev/null
[ "${1:-build}" = test ] && azurite_install
exit 0
