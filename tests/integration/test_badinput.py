"""test_badinput.py - bad input gets a clear error and nothing is lost.

Names that cannot be S3 keys (not UTF-8, too long, control characters)
are refused with EINVAL / ENAMETOOLONG and create nothing; garbage and
huge writes to control files fail with EINVAL and change nothing; a
database file that is not a database stops the daemon with one clear line
and mounts nothing.  After each refusal the daemon keeps serving.
"""

import errno
import os
import subprocess

import pytest

import conftest
from helpers import assert_serving, expect_errno


def test_bad_names_refused(provider, backend, mount):
    b = backend(provider, "b1")
    m = mount([b])
    d = m.path("b1").encode()
    bad_utf8 = d + b"/bad-\xff\xfe.txt"
    expect_errno(errno.EINVAL, os.open, bad_utf8, os.O_CREAT | os.O_WRONLY,
                 0o644)
    expect_errno(errno.EINVAL, os.mkdir, d + b"/dir-\xc0\xaf")
    expect_errno(errno.EINVAL, os.open, d + b"/ctl-\x01.txt",
                 os.O_CREAT | os.O_WRONLY, 0o644)
    expect_errno(errno.ENAMETOOLONG, os.open, d + b"/" + b"n" * 256,
                 os.O_CREAT | os.O_WRONLY, 0o644)
    # A key over 1024 bytes from names that are each short enough.
    deep = d
    for i in range(4):
        deep += b"/" + (b"%d" % i) * 200
        os.mkdir(deep)
    expect_errno(errno.ENAMETOOLONG, os.open, deep + b"/" + b"f" * 250,
                 os.O_CREAT | os.O_WRONLY, 0o644)
    assert os.listdir(deep) == []
    assert sorted(os.listdir(m.path("b1"))) == [("0" * 200)]
    assert b.keys() == [] or all(not k.startswith("bad") for k in b.keys())
    assert_serving(m, backend=b)


def test_control_file_garbage_changes_nothing(backend, mount):
    b = backend("local", "b1", default="general")
    m = mount([b])
    before_d = open(m.path(".defaults")).read()
    before_a = open(m.path(".assignments")).read()
    for junk in (b"\x00\x01\x02garbage\n", b"general = b1\xff\n",
                 b"x" * (2 * 1024 * 1024), b"chat = b1\nnot a line\n",
                 b"general = " + b"a" * 600 + b"\n"):
        for ctl in (".defaults", ".assignments"):
            fd = os.open(m.path(ctl), os.O_WRONLY | os.O_TRUNC)
            try:
                expect_errno(errno.EINVAL, os.write, fd, junk)
            finally:
                # the refused line spoiled the session: close says so too
                expect_errno(errno.EINVAL, os.close, fd)
    assert open(m.path(".defaults")).read() == before_d
    assert open(m.path(".assignments")).read() == before_a
    assert_serving(m, backend=b)


def test_database_not_a_database(backend, mount):
    m = mount([backend("local", "b1")], start=False)
    with open(m.db, "wb") as f:
        f.write(b"this is not an SQLite database, just text\n" * 100)
    for suffix in ("-wal", "-shm"):
        try:
            os.remove(m.db + suffix)
        except FileNotFoundError:
            pass
    p = subprocess.run(m.argv(), capture_output=True, text=True, timeout=30,
                       env=conftest.daemon_env())
    assert p.returncode != 0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert any("database" in l for l in lines), p.stderr
    assert not os.path.ismount(m.mnt)
    q = m.ctl("bucket", "list", check=False)
    assert q.returncode == 1 and len(q.stderr.splitlines()) == 1, q.stderr
