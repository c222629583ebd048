"""test_diskfull.py - a full cache disk (not the cache_size budget).

cache_dir is a 16 MiB tmpfs while cache_size is 1G, so the file system,
not the budget, runs out.  Checked (issue #5, docs/RELIABILITY.md "A full
cache disk"): a writer of a file bigger than the free space gets ENOSPC
from write() itself, and what it wrote before the error is exactly what
close() stores (never more, never garbage); a file written before and a
file held open with acknowledged data are intact on the server; the
daemon logs one clear line; once space is freed new writes work; no
journal row, staging file or pending upload is left behind, also after a
restart; the mount keeps serving.  The block read cache (readcache.c)
degrades to uncached reads when the disk is full: a big object reads back
byte for byte.
"""

import errno
import hashlib
import os
import random
import sqlite3
import subprocess

import pytest

from helpers import assert_serving

MIB = 1 << 20
TMPFS_MIB = 16


def rbytes(n, seed):
    return random.Random(seed).randbytes(n)


def sha(b):
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def full_disk(request, tmp_path):
    """mount_on_tmpfs(backends) -> Mount whose cache_dir is a 16 MiB tmpfs
    (cache_size = 1G).  The tmpfs is mounted before the `mount` fixture is
    set up, so it is unmounted after the daemon is gone, also on failure."""
    mounted = []

    def unmount_tmpfs():
        for d in mounted:
            p = subprocess.run(["umount", d], capture_output=True, text=True)
            if p.returncode != 0:
                subprocess.run(["umount", "-l", d], capture_output=True)
    request.addfinalizer(unmount_tmpfs)

    def make(backends, conf_extra=""):
        cache = tmp_path / "m0" / "cache"    # conftest: m0/, cache_dir = cache
        cache.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%dm,mode=0700" % TMPFS_MIB, "tmpfs", str(cache)],
                       check=True)
        mounted.append(str(cache))
        mount = request.getfixturevalue("mount")  # torn down before the tmpfs
        m = mount(backends, conf_extra="cache_size = 1G\nupload_timeout = 10\n"
                  + conf_extra)
        m.cache = str(cache)
        return m
    return make


def journal_rows(m):
    con = sqlite3.connect(m.db, timeout=10)
    try:
        return con.execute("SELECT key, staging_path FROM upload_journal"
                           ).fetchall()
    finally:
        con.close()


def staging_files(m):
    """Staging files that hold data.  Empty ones are the daemon's spares
    (a stored file's staging file kept for the next new file); no
    journal row may name one."""
    d = os.path.join(m.cache, "staging")
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    named = {os.path.basename(p) for _, p in journal_rows(m)}
    spares = [n for n in names if os.path.getsize(os.path.join(d, n)) == 0]
    assert len(spares) <= 8 and not named.intersection(spares), \
        (spares, named)
    return [n for n in names if n not in spares]


def write_until_error(path, total, seed, before_close=None):
    """Writes total bytes in 1 MiB os.write calls, calls
    before_close(acked) (still open) and closes; returns (bytes the daemon
    acknowledged, OSError of write or None, OSError of close or None, the
    data)."""
    data = rbytes(total, seed)
    acked, werr, cerr = 0, None, None
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        while acked < total:
            acked += os.write(fd, data[acked:acked + MIB])
    except OSError as e:
        werr = e
    try:
        if before_close:
            before_close(acked)
    finally:
        try:
            os.close(fd)
        except OSError as e:
            cerr = e
    return acked, werr, cerr, data


@pytest.mark.parametrize("prov", ["local", "s3"])
def test_full_cache_disk_enospc(prov, backend, full_disk):
    b = backend(prov)
    m = full_disk([b])
    before = rbytes(4 * MIB, 1)
    with open(m.path("b1", "before.bin"), "wb") as f:
        f.write(before)
    assert b.read("before.bin") == before

    # Acknowledged but not yet uploaded data of a file held open.
    held = rbytes(3 * MIB + 5, 2)
    hfd = os.open(m.path("b1", "held.bin"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert os.write(hfd, held) == len(held)

        # A writer of 32 MiB into the ~13 MiB left.  While it is still
        # open after the error, its journal row names a staging file
        # holding exactly the acknowledged bytes (the failed write is cut
        # off), which is what a crash now would recover.
        staged = {}

        def check_staged(acked):
            rows = dict(journal_rows(m))
            staged["rows"] = sorted(rows)
            staged["size"] = os.stat(rows["big.bin"]).st_size \
                if "big.bin" in rows else None
        acked, werr, cerr, data = write_until_error(
            m.path("b1", "big.bin"), 2 * TMPFS_MIB * MIB, 3, check_staged)
        assert werr is not None, \
            "all %d bytes acknowledged on a %d MiB disk (close: %s)" % (
                acked, TMPFS_MIB, cerr)
        assert werr.errno == errno.ENOSPC, werr
        assert 0 < acked < TMPFS_MIB * MIB
        assert staged["rows"] == ["big.bin", "held.bin"], staged
        assert staged["size"] == acked, staged
        # What was acknowledged before the error is what close stored.
        assert cerr is None, cerr
        got = b.read("big.bin")
        assert got is not None and len(got) == acked and \
            sha(got) == sha(data[:acked]), \
            "stored %s bytes, %d acknowledged" % (got and len(got), acked)
        assert os.stat(m.path("b1", "big.bin")).st_size == acked

        # The held file still reads back and stores intact.
        assert os.pread(hfd, len(held) + 1, 0) == held
    finally:
        os.close(hfd)
    assert b.read("held.bin") == held
    assert b.read("before.bin") == before

    log = m.stderr()
    lines = [ln for ln in log.splitlines() if "No space left" in ln
             and "big.bin" in ln]
    assert lines, "no log line names the full cache disk:\n" + log[-3000:]
    assert m.cache in lines[0], lines[0]

    # Free space: the failed file goes, new writes of the same size work.
    os.unlink(m.path("b1", "big.bin"))
    assert not b.exists("big.bin")
    again = rbytes(10 * MIB, 4)
    with open(m.path("b1", "again.bin"), "wb") as f:
        f.write(again)
    assert b.read("again.bin") == again
    with open(m.path("b1", "again.bin"), "rb") as f:
        assert sha(f.read()) == sha(again)

    # Nothing left staged or journaled; a restart finds nothing to do.
    assert journal_rows(m) == []
    assert staging_files(m) == []
    assert "no pending uploads" in m.ctl("pending").stdout
    assert_serving(m, backend=b)
    m.remount()
    assert "no pending uploads" in m.ctl("pending").stdout
    assert sorted(os.listdir(m.path("b1"))) == ["again.bin", "before.bin",
                                                "held.bin"]
    for name, want in (("before.bin", before), ("held.bin", held),
                       ("again.bin", again)):
        with open(m.path("b1", name), "rb") as f:
            assert sha(f.read()) == sha(want), name
    assert_serving(m, backend=b)


def test_full_cache_disk_reads_uncached(backend, full_disk):
    """The block cache cannot store a single block: reads still give the
    right bytes (sequential, random, several handles), and once there is
    room again the cache works as before."""
    b = backend("s3")
    data = rbytes(24 * MIB + 4321, 5)
    assert b.put("big.bin", data) == 200
    m = full_disk([b])
    filler = os.path.join(m.cache, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * MIB)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    assert os.statvfs(m.cache).f_bavail * os.statvfs(m.cache).f_frsize \
        < MIB
    p = m.path("b1", "big.bin")
    for _ in range(2):
        with open(p, "rb") as f:
            assert sha(f.read()) == sha(data)
    rnd = random.Random(6)
    fd = os.open(p, os.O_RDONLY)
    try:
        for _ in range(50):
            off = rnd.randrange(0, len(data))
            n = rnd.choice([1, 4096, 200000, 3 * MIB])
            assert os.pread(fd, n, off) == data[off:off + n]
    finally:
        os.close(fd)
    log = m.stderr()
    assert any("block cache" in ln and "No space left" in ln
               for ln in log.splitlines()), log[-3000:]

    os.unlink(filler)
    with open(p, "rb") as f:
        assert sha(f.read()) == sha(data)
    blocks = os.path.join(m.cache, "blocks")
    used = sum(os.stat(os.path.join(blocks, n)).st_blocks * 512
               for n in os.listdir(blocks))
    assert used > 0, "nothing cached once space was back"
    assert_serving(m, backend=b)
