#!/bin/sh
# demo.sh - `make run`: mount a demo of two local buckets at ./mnt.
#
# Creates ./demo/ with a config of two local buckets, "general" and "media"
# (their folders demo/general and demo/media; defaults general=general,
# chat=media, forms=general), runs `bucketctl init`, and starts the daemon
# in the background (daemonized: it returns once the mount is ready).
# Running it again is safe: a stale mount at ./mnt is unmounted first and
# the config is rewritten with the same content; files in the bucket
# folders and the database are kept.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUCKETFS_BUILD:-$top/build}
demo=$top/demo
mnt=$top/mnt
cfg=$demo/bucketfs.conf

for b in bucketfs bucketctl; do
	if [ ! -x "$build/$b" ]; then
		echo "demo: $build/$b is not built; run make first" >&2
		exit 1
	fi
done

# A mount left from an earlier run (also a dead one: "Transport endpoint
# is not connected") is unmounted; lazily when it is busy.
if grep -qs " $mnt fuse" /proc/mounts; then
	echo "demo: unmounting the earlier mount at $mnt"
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
fi

mkdir -p "$demo/general" "$demo/media" "$mnt"
cat >"$cfg" <<CONF
# bucketfs demo (written by scripts/demo.sh; rewritten on every run)
[bucketfs]
database = bucketfs.db
cache_dir = cache
master_key_file = master.key
log_level = info

[bucket general]
provider = local
path = $demo/general
default = general, forms

[bucket media]
provider = local
path = $demo/media
default = chat
CONF

"$build/bucketctl" -c "$cfg" init
if ! "$build/bucketfs" "$cfg" "$mnt"; then
	echo "demo: bucketfs failed to mount $mnt" >&2
	exit 1
fi

rel_build=$build
case $build in "$top"/*) rel_build=${build#"$top"/} ;; esac
cat <<MSG

bucketfs is mounted at ./mnt (buckets stored under ./demo). Try:

  ls -la mnt
  cat mnt/.defaults
  cat mnt/.buckets
  echo hello > mnt/general/hello.txt && ls demo/general
  echo photo > mnt/@chat/team42/photo.jpg && ls demo/media/chat/team42
  echo 'chat = general' > mnt/.defaults && cat mnt/.defaults
  ls mnt/@chat/team42    # still there: the index knows its bucket
  $rel_build/bucketctl -c demo/bucketfs.conf files --context chat/team42
  $rel_build/bucketctl -c demo/bucketfs.conf files
  $rel_build/bucketctl -c demo/bucketfs.conf bucket list

Unmount with:  fusermount3 -u mnt
MSG
