#!/bin/sh
# rgw.sh - start or stop a private single-node Ceph cluster with radosgw
# (S3 on loopback) for benchmarks and manual tests.
#
#   scripts/rgw.sh start DIR [PORT]   prints endpoint=, access_key=,
#                                     secret_key=, region= lines
#   scripts/rgw.sh stop DIR           kills its daemons, removes DIR
#
# A thin wrapper around tests/integration/rgw.py (the settings and why each
# is needed: DEVELOPERS.md).  DIR must be new, empty, or an earlier cluster
# folder (which is stopped and wiped first).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/../tests/integration/rgw.py" "$@"
