#!/bin/sh
# check-man.sh [PAGE...] - render each man page with warnings enabled.
#
# Default pages: docs/bucketfs.8 docs/bucketctl.8 docs/bucketfs.conf.5.
# Each is rendered the way a user sees it (man -l, 80 columns, UTF-8) with
# groff warnings on (man --warnings); the rendered text is discarded and ANY
# diagnostic (groff warning, "cannot adjust line", missing macro, unknown
# escape) fails the check.  A page that renders to nothing fails too.
# Exit 0 ok, 1 failure.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -eq 0 ]; then
	set -- "$top/docs/bucketfs.8" "$top/docs/bucketctl.8" \
	       "$top/docs/bucketfs.conf.5"
fi
if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
	echo "check-man: man and groff are needed (apt-get install man-db groff-base)" >&2
	exit 1
fi

fail=0
for page in "$@"; do
	if [ ! -f "$page" ]; then
		echo "check-man: $page: missing" >&2
		fail=1
		continue
	fi
	diag=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
	if [ -n "$diag" ]; then
		printf '%s\n' "$diag" | sed "s|^|check-man: $page: |" >&2
		fail=1
		continue
	fi
	lines=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)
	if [ "$lines" -lt 5 ]; then
		echo "check-man: $page: renders to $lines lines" >&2
		fail=1
		continue
	fi
	echo "check-man: $page ok ($lines lines)"
done
exit $fail
