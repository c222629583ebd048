#!/bin/sh
# verify-units.sh [BUCKETFS_BINARY] - check the systemd units in systemd/.
#
# `systemd-analyze verify` refuses a unit whose ExecStart= binary does not
# exist, and the units name the installed path /usr/local/bin/bucketfs.  So
# each unit is copied into a private temp folder with that path replaced by
# the built binary (argument 1, default build/bucketfs), the template is
# copied as instance bucketfs@check.service, and the copies are verified.
# Any output of systemd-analyze (unknown keys, bad values) fails the check.
#
# It also checks the settings the units promise (Type=notify, the
# credential, the stop timeout, the device rule ...) and that no setting
# which creates a mount namespace crept in: with one, the daemon's mount
# would not be visible on the host (systemd.exec(5), PrivateMounts=).
#
# Runs without root and without a running systemd.  Exit 0 ok, 1 failure.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/bucketfs}
case "$bin" in /*) ;; *) bin=$(pwd)/$bin ;; esac

fail=0
err() { echo "verify-units: $*" >&2; fail=1; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify-units: systemd-analyze not found (apt-get install systemd)" >&2
	exit 1
fi
if [ ! -x "$bin" ]; then
	echo "verify-units: $bin is not an executable; build it first (make)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bucketfs-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# Settings every unit must carry (whole line, as written in the unit).
required='Type=notify
After=network-online.target
Wants=network-online.target
TimeoutStopSec=120
Restart=on-failure
NoNewPrivileges=yes
DeviceAllow=/dev/fuse rw
UMask=0077'
# Settings that create a mount namespace and so hide the mount.
forbidden='PrivateMounts ProtectSystem ProtectHome PrivateTmp PrivateDevices
ReadWritePaths ReadOnlyPaths InaccessiblePaths ExecPaths NoExecPaths
TemporaryFileSystem BindPaths BindReadOnlyPaths ProtectKernelTunables
ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectProc
ProcSubset RootDirectory RootImage MountFlags DynamicUser'

check_unit() {  # $1 source unit, $2 copy name, $3 config path, $4 mount point
	src=$top/systemd/$1
	if [ ! -f "$src" ]; then
		err "$src missing"
		return
	fi
	echo "$required" | while IFS= read -r want; do
		grep -qxF "$want" "$src" || { echo "verify-units: $1: missing '$want'" >&2; exit 1; }
	done || fail=1
	for want in "ExecStart=/usr/local/bin/bucketfs -f $3 $4" \
		    "ExecStop=/bin/fusermount3 -u $4"; do
		grep -qxF "$want" "$src" || err "$1: missing '$want'"
	done
	grep -qE '^LoadCredential=bucketfs\.key:/etc/bucketfs/' "$src" ||
		err "$1: missing LoadCredential=bucketfs.key:/etc/bucketfs/..."
	for key in $forbidden; do
		if grep -qE "^[[:space:]]*$key=" "$src"; then
			err "$1: $key= creates a mount namespace: the mount would not reach the host"
		fi
	done
	sed "s|/usr/local/bin/bucketfs|$bin|g" "$src" > "$tmp/$2"
	out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/$2" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		err "$1: systemd-analyze verify failed (rc=$rc)"
	fi
}

check_unit bucketfs.service bucketfs.service \
	/etc/bucketfs/bucketfs.conf /mnt/buckets
check_unit bucketfs@.service bucketfs@check.service \
	/etc/bucketfs/%i.conf /mnt/%i

if [ $fail -ne 0 ]; then
	exit 1
fi
echo "verify-units: systemd/bucketfs.service systemd/bucketfs@.service ok"
exit 0
