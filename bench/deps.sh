#!/bin/sh
# deps.sh - the benchmark's own setup step: makes sure fio is there.
#
# Same pattern as scripts/deps.sh: dpkg-query decides whether fio is
# installed; when it is not and `apt-cache policy fio` shows a candidate,
# root installs it with apt-get; otherwise the benchmark falls back to its
# python os.pread loop for W5 (bench.py says which one it used).
# Exit 0 when fio is usable afterwards, 1 when it is not (never fatal).
set -u

st=$(dpkg-query -W -f='${Status}' fio 2>/dev/null || true)
case "$st" in
*"install ok installed"*) exit 0 ;;
esac

cand=$(apt-cache policy fio 2>/dev/null | sed -n 's/^ *Candidate: *//p')
if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
	echo "bench: fio is not installable here (no apt candidate); W5 uses the python pread loop" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: fio missing; as root: apt-get install -y fio (W5 uses the python pread loop)" >&2
	exit 1
fi
echo "bench: installing fio $cand" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q fio >/dev/null 2>&1 ||
	{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q fio >/dev/null 2>&1; } ||
	{ echo "bench: apt-get install fio failed; W5 uses the python pread loop" >&2; exit 1; }
exit 0
