"""test_memory.py - the daemon's memory stays bounded by design, not by
file size (issue #5: "a 1 GiB write keeps the daemon under 150 MiB RSS").

One 1 GiB file is written through the mount to an s3 bucket in 1 MiB
write() calls, closed, and checked on RGW (size and sha256, streamed:
neither the test nor the daemon holds the file in memory); then a fresh
mount reads it back cold, sequentially, with the block cache on.  Each
time the daemon's peak RSS (VmHWM) must stay at or below 150 MiB.

Marked `memory`: sanitizer builds inflate RSS (shadow memory,
quarantine), so the tests skip there; `make check` runs them against the
plain build/ daemon (`-m memory`).  The object is deleted at the end;
RGW frees its parts with its garbage collector (rgw.py: after ~30 s).
"""

import hashlib
import os

import pytest

import conftest

MIB = 1 << 20
SIZE = 1024 * MIB
RSS_MAX = 150 * MIB

pytestmark = pytest.mark.memory


@pytest.fixture(autouse=True)
def plain_build():
    why = conftest.sanitized_build()
    if why:
        pytest.skip("peak RSS is meaningless under sanitizers (%s); make "
                    "check runs this against build/" % why)


def peak_rss(m):
    """VmHWM of the (foreground) daemon of m, in bytes."""
    with open("/proc/%d/status" % m.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/%d/status" % m.proc.pid)


def chunk(i):
    """1 MiB block i of the file: cheap to make, different per block."""
    head = b"%016x" % i
    return (head * (MIB // len(head)))


@pytest.fixture
def s3_1gib(backend, mount):
    """A mounted s3 bucket; the 1 GiB object is deleted from RGW at the
    end, pass or fail (a long-lived RGW on a small disk fills up else)."""
    b = backend("s3")
    m = mount([b])
    try:
        yield m, b
    finally:
        b.client.delete(b.remote, "big.bin")


def test_1gib_write_and_cold_read_peak_rss(s3_1gib):
    m, b = s3_1gib
    p = m.path("b1", "big.bin")

    h = hashlib.sha256()
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        for i in range(SIZE // MIB):
            data = chunk(i)
            h.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    want = (SIZE, h.hexdigest())
    write_rss = peak_rss(m)
    print("peak RSS during the 1 GiB write: %.1f MiB" % (write_rss / MIB))
    assert write_rss <= RSS_MAX, \
        "daemon peak RSS %.1f MiB after a 1 GiB write (bound %d MiB)" % (
            write_rss / MIB, RSS_MAX // MIB)
    assert b.client.get_digest(b.remote, "big.bin") == want

    # A fresh daemon (nothing cached) reads it back sequentially.
    m.remount()
    h = hashlib.sha256()
    n = 0
    fd = os.open(p, os.O_RDONLY)
    try:
        while True:
            data = os.read(fd, MIB)
            if not data:
                break
            h.update(data)
            n += len(data)
    finally:
        os.close(fd)
    read_rss = peak_rss(m)
    print("peak RSS during the 1 GiB cold read: %.1f MiB" % (read_rss / MIB))
    assert (n, h.hexdigest()) == want
    assert read_rss <= RSS_MAX, \
        "daemon peak RSS %.1f MiB after a 1 GiB cold read (bound %d MiB)" \
        % (read_rss / MIB, RSS_MAX // MIB)
