"""test_journal.py - the upload journal: rows before acknowledgement,
recovery after kill -9 with conflict copies, orphan staging files, and the
cache_size bound on staged data (docs/RELIABILITY.md).

Every mount goes through faultproxy (fixture faulty: s3 and azure, or
faulty_s3; upload_timeout 5 s)
so a test can take the server away; what is stored is checked on RGW
directly.
"""

import errno
import os
import re
import sqlite3
import time

import helpers
from helpers import close_quietly, wait_for
from fault_fixtures import UPLOAD_TIMEOUT, faulty, faulty_s3, kill9  # noqa: F401

KIB = 1024
CONFLICT = re.compile(r"^(.*)\.conflict-\d{8}T\d{6}$")


def write_fd(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def put_file(path, data):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        write_fd(fd, data)
    finally:
        os.close(fd)


def journal_keys(m):
    con = sqlite3.connect("file:%s?mode=ro" % m.db, uri=True, timeout=10)
    try:
        return {r[0] for r in con.execute("SELECT key FROM upload_journal")}
    finally:
        con.close()


def test_journal_row_before_ack_and_conflict_copy_after_kill9(faulty):
    fs = faulty
    m = fs.mount()
    b = m.backends["b1"]
    put_file(m.path("b1", "same.txt"), b"version 1 of same\n")
    put_file(m.path("b1", "doc.txt"), b"version 1 of doc\n")
    assert b.read("doc.txt") == b"version 1 of doc\n"

    fd1 = os.open(m.path("b1", "same.txt"), os.O_WRONLY | os.O_TRUNC)
    fd2 = os.open(m.path("b1", "doc.txt"), os.O_WRONLY | os.O_TRUNC)
    try:
        write_fd(fd1, b"staged over an unchanged object\n")
        write_fd(fd2, b"staged over an object someone else changed\n")
        # acknowledged writes are journaled before they return (read
        # from the database directly: a bucketctl child would inherit and
        # close these fds, i.e. flush them)
        assert {"same.txt", "doc.txt"} <= journal_keys(m)
        kill9(m)
    finally:
        close_quietly(fd1, fd2)
    # behind the dead daemon's back, doc.txt changes on the server
    assert b.put("doc.txt", b"written elsewhere meanwhile\n") == 200
    m.start()

    def conflicts():
        return [k for k in b.keys() if CONFLICT.match(k)]
    got = wait_for(conflicts, 30)
    assert len(got) == 1 and CONFLICT.match(got[0]).group(1) == "doc.txt", \
        "keys: %s\n%s" % (b.keys(), "\n".join(m.stderr().splitlines()[-30:]))
    assert b.read(got[0]) == b"staged over an object someone else changed\n"
    # the remote change is not overwritten
    assert b.read("doc.txt") == b"written elsewhere meanwhile\n"
    # the unchanged one is finished under its own name
    assert wait_for(lambda: b.read("same.txt") ==
                    b"staged over an unchanged object\n", 30)
    assert "changed on the server" in m.stderr()
    assert wait_for(lambda: "no pending uploads" in m.ctl("pending").stdout,
                    timeout=10)
    # through the mount: the server's doc.txt, the copy next to it
    with open(m.path("b1", "doc.txt"), "rb") as f:
        assert f.read() == b"written elsewhere meanwhile\n"
    assert got[0] in os.listdir(m.path("b1"))


# s3 only (this and the next): staging files and their bound are local,
# whatever the provider
def test_orphan_staging_files_removed_at_start(faulty_s3):
    fs = faulty_s3
    m = fs.mount(start=False)
    staging = os.path.join(m.dir, "cache", "staging")
    os.makedirs(staging, exist_ok=True)
    junk = os.path.join(staging, "bfs-orphan")
    with open(junk, "wb") as f:
        f.write(b"left by nobody")
    m.start()
    assert wait_for(lambda: not os.path.exists(junk), timeout=5), \
        "a staging file no journal row names survived the start"


def test_cache_size_bounds_staged_data(faulty_s3):
    fs = faulty_s3
    m = fs.mount(conf_extra="cache_size = 1M\n")
    b = m.backends["b1"]
    big = os.urandom(1000 * KIB)
    fd_a = os.open(m.path("b1", "a.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    fd_b = None
    try:
        write_fd(fd_a, big)          # staged, held open: not uploaded yet
        fd_b = os.open(m.path("b1", "b.bin"), os.O_CREAT | os.O_WRONLY,
                       0o644)
        t0 = time.monotonic()
        helpers.expect_errno(errno.ENOSPC, os.write, fd_b,
                             b"x" * (200 * KIB))
        took = time.monotonic() - t0
        assert UPLOAD_TIMEOUT - 1 <= took <= UPLOAD_TIMEOUT + 3, took
        os.close(fd_a)               # stored: its staging space is free
        fd_a = None
        assert b.read("a.bin") == big
        write_fd(fd_b, b"y" * (400 * KIB))
        os.close(fd_b)
        fd_b = None
        assert b.read("b.bin") == b"y" * (400 * KIB)
    finally:
        close_quietly(fd_a, fd_b)
