#!/bin/sh
# deps.sh build|test - install the Debian packages bucketfs needs.
#
# Checks each package with dpkg-query; as root, installs what is missing with
# apt-get (running `apt-get update` first); otherwise prints the exact
# command to run and fails.
set -eu

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

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "bucketfs: missing packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "bucketfs: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q $missing >/dev/null
