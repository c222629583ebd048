"""test_ctlsession.py - control-file write sessions (INTERFACE.md
"Control-file write sessions").

One open() ... close() of .defaults or .assignments is one transaction:
lines may arrive split across any number of write() calls (bash printf,
cat's 128 KiB chunks, cp, >>), each complete line is checked when it
arrives (EINVAL at once), close() applies the whole session or nothing
(EINVAL for a bad or incomplete session), 16 MiB at most (EFBIG).  Two
sessions open at once each apply whole, in the order they close.  All on
local buckets: the sessions never touch a provider.
"""

import errno
import os
import subprocess

from helpers import expect_errno, run, wait_for



def mount2(backend, mount):
    return mount([backend("local", "alpha"), backend("local", "beta")])


def read_text(path):
    with open(path) as f:
        return f.read()


def assignments(m):
    return read_text(m.path(".assignments")).splitlines()


def defaults(m):
    return [ln.rstrip() for ln in read_text(m.path(".defaults")).splitlines()]


def sh(script):
    """Runs a bash script; CompletedProcess (text), never raises."""
    return subprocess.run(["bash", "-c", script], capture_output=True,
                          text=True, timeout=120)


def bulk_lines(n, bucket_of):
    """n assignment lines of ~31 bytes, ids zero-padded so that the file
    order is the sorted order of the .assignments rendering."""
    return ["chat/group-%06d-abcdefgh = %s" % (i, bucket_of(i))
            for i in range(n)]


def write_file(path, lines):
    with open(path, "w") as f:
        f.write("".join(ln + "\n" for ln in lines))
    return os.path.getsize(path)


# ------------------------------------------------------------ all-or-nothing

def test_printf_bad_second_line_changes_nothing(backend, mount):
    m = mount2(backend, mount)
    before = defaults(m)
    assert before == ["general =", "chat =", "forms ="]
    # bash's printf builtin writes each line with its own write() call
    p = sh("printf 'forms = alpha\\nchat = nosuch\\n' > %s" % m.path(".defaults"))
    assert p.returncode != 0
    assert "Invalid argument" in p.stderr, p.stderr
    assert defaults(m) == before
    log = m.stderr()
    assert "unknown bucket 'nosuch'" in log and '"chat = nosuch"' in log, log
    # the example of ADMIN.md: both lines, one transaction
    p = sh("printf 'general = alpha\\nforms =\\nchat = beta\\n' > %s"
           % m.path(".defaults"))
    assert p.returncode == 0, p.stderr
    assert defaults(m) == ["general = alpha", "chat = beta", "forms ="]


def test_bad_line_fails_its_write_at_once(backend, mount):
    m = mount2(backend, mount)
    fd = os.open(m.path(".assignments"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"chat/a = alpha\nchat/b = al")
        os.write(fd, b"pha\n")
        # the line naming an unknown bucket fails the write that ends it
        expect_errno(errno.EINVAL, os.write, fd, b"chat/c = nosuch\n")
        # the session is spoiled: good lines after it are refused too
        expect_errno(errno.EINVAL, os.write, fd, b"chat/d = beta\n")
    finally:
        expect_errno(errno.EINVAL, os.close, fd)
    assert assignments(m) == []


def test_incomplete_last_line_applies_nothing(backend, mount):
    m = mount2(backend, mount)
    fd = os.open(m.path(".assignments"), os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.write(fd, b"chat/x = alpha\nchat/y = beta") == 28
    finally:
        expect_errno(errno.EINVAL, os.close, fd)
    assert assignments(m) == []
    assert "incomplete last line" in m.stderr()
    # coreutils' printf checks close(): it fails
    p = sh("/usr/bin/printf 'general = alpha' > %s" % m.path(".defaults"))
    assert p.returncode != 0 and "Invalid argument" in p.stderr, p.stderr
    assert defaults(m) == ["general =", "chat =", "forms ="]
    # bash's builtin restores stdout with dup2(), which drops close()'s
    # error: nothing is applied all the same (the daemon logs why)
    sh("printf 'chat = alpha' > %s" % m.path(".defaults"))
    assert defaults(m) == ["general =", "chat =", "forms ="]
    # with the newline it is a whole session
    p = sh("echo 'general = alpha' > %s" % m.path(".defaults"))
    assert p.returncode == 0, p.stderr
    assert defaults(m)[0] == "general = alpha"


def test_bucket_removed_before_close(backend, mount, tmp_path):
    """Lines are checked when they arrive and again when applied."""
    m = mount2(backend, mount)
    gamma = tmp_path / "gamma"
    gamma.mkdir()
    m.ctl("bucket", "add", "gamma", "--provider", "local", "--path",
          str(gamma))
    assert wait_for(lambda: "gamma" in os.listdir(m.mnt), 10)
    fd = os.open(m.path(".assignments"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"chat/a = alpha\nchat/z = gamma\n")
        m.ctl("bucket", "remove", "gamma")
    finally:
        expect_errno(errno.EINVAL, os.close, fd)
    assert assignments(m) == []
    assert "gamma" in m.stderr()


# ------------------------------------------------------------ bulk loads

def test_cat_and_cp_of_6000_assignments(backend, mount, tmp_path):
    m = mount2(backend, mount)
    src = str(tmp_path / "assignments.txt")
    lines = bulk_lines(6000, lambda i: "alpha" if i % 3 else "beta")
    size = write_file(src, lines)
    assert size > 180 * 1024       # cat writes 128 KiB: lines get split
    p = sh("cat %s > %s" % (src, m.path(".assignments")))
    assert p.returncode == 0, p.stderr
    assert assignments(m) == lines
    out = m.ctl("assignments").stdout.splitlines()
    assert out == lines
    # cp of a second file re-routes every one of them, in one session
    src2 = str(tmp_path / "again.txt")
    lines2 = bulk_lines(6000, lambda i: "beta" if i % 3 else "alpha")
    write_file(src2, lines2)
    run("cp", src2, m.path(".assignments"))
    assert assignments(m) == lines2
    assert m.ctl("assignments").stdout.splitlines() == lines2
    # and a bad line at the very end of a bulk load applies none of it
    bad = str(tmp_path / "bad.txt")
    write_file(bad, bulk_lines(6000, lambda i: "alpha") + ["chat/x = nosuch"])
    p = sh("cat %s > %s" % (bad, m.path(".assignments")))
    assert p.returncode != 0 and "Invalid argument" in p.stderr, p.stderr
    assert assignments(m) == lines2


def test_17_mib_session_gets_efbig(backend, mount):
    m = mount2(backend, mount)
    line = b"chat/c0123456789abcdef = alpha\n"          # 31 bytes
    chunk = line * (1024 * 1024 // len(line))          # < 1 MiB of lines
    fd = os.open(m.path(".assignments"), os.O_WRONLY | os.O_TRUNC)
    taken = 0
    try:
        e = None
        while taken < 17 * 1024 * 1024:
            try:
                taken += os.write(fd, chunk)
            except OSError as ex:
                e = ex
                break
        assert e is not None and e.errno == errno.EFBIG, (e, taken)
        assert taken <= 16 * 1024 * 1024
        expect_errno(errno.EFBIG, os.write, fd, line)
    finally:
        expect_errno(errno.EFBIG, os.close, fd)
    assert assignments(m) == []
    assert "session over 16777216 bytes" in m.stderr()


# ------------------------------------------------------------ several at once

def test_two_sessions_interleaved_apply_in_close_order(backend, mount):
    m = mount2(backend, mount)
    a = m.path(".assignments")
    fd1 = os.open(a, os.O_WRONLY | os.O_TRUNC)
    fd2 = os.open(a, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd1, b"chat/one = alpha\nchat/sh")
        os.write(fd2, b"chat/two = beta\nchat/sh")
        os.write(fd1, b"ared = alpha\n")
        os.write(fd2, b"ared = beta\n")
        # nothing is applied while both are open; reading still works
        assert assignments(m) == []
        os.close(fd2)
        fd2 = None
        assert assignments(m) == ["chat/shared = beta", "chat/two = beta"]
        os.close(fd1)
        fd1 = None
        # fd1 closed last: its line for chat/shared wins
        assert assignments(m) == ["chat/one = alpha", "chat/shared = alpha",
                                  "chat/two = beta"]
    finally:
        for fd in (fd1, fd2):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
    # one spoiled session does not spoil the other
    fd1 = os.open(a, os.O_WRONLY | os.O_TRUNC)
    fd2 = os.open(a, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd1, b"chat/three = beta\n")
        expect_errno(errno.EINVAL, os.write, fd2, b"chat/bad id = beta\n")
    finally:
        expect_errno(errno.EINVAL, os.close, fd2)
        os.close(fd1)
    assert "chat/three = beta" in assignments(m)
    assert "bad" not in " ".join(assignments(m))


def test_inherited_descriptor_close_applies_nothing(backend, mount, tmp_path):
    """A forked child's close of its inherited copy is not the writer's:
    a session still open in the parent (an incomplete line pending) is not
    cut there; a command that wrote and exits applies what it wrote."""
    m = mount2(backend, mount)
    fd = os.open(m.path(".assignments"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"chat/p1 = alpha\nchat/p")
        # the child closes every inherited descriptor at exec
        run("true")
        m.ctl("assignments")
        assert assignments(m) == []
        os.write(fd, b"2 = beta\n")
    finally:
        os.close(fd)
    assert assignments(m) == ["chat/p1 = alpha", "chat/p2 = beta"]
    # in a redirected block, cat's exit applies what came before it; the
    # builtin's line after it is a session step of its own
    part = str(tmp_path / "part.txt")
    write_file(part, ["form/f%d = beta" % i for i in range(3)])
    p = sh("{ cat %s; echo 'chat/zz = nosuch'; } > %s"
           % (part, m.path(".assignments")))
    assert p.returncode != 0 and "Invalid argument" in p.stderr, p.stderr
    assert assignments(m) == ["chat/p1 = alpha", "chat/p2 = beta",
                              "form/f0 = beta", "form/f1 = beta",
                              "form/f2 = beta"]


def test_read_while_session_open(backend, mount):
    m = mount2(backend, mount)
    run("bash", "-c", "echo 'chat/old = alpha' > %s" % m.path(".assignments"))
    fd = os.open(m.path(".assignments"), os.O_RDWR)
    try:
        # the session's own fd reads the content at its open
        assert os.read(fd, 4096) == b"chat/old = alpha\n"
        os.write(fd, b"chat/new = beta\n")
        assert assignments(m) == ["chat/old = alpha"]
        assert read_text(m.path(".defaults")).startswith("general =")
    finally:
        os.close(fd)
    assert assignments(m) == ["chat/new = beta", "chat/old = alpha"]


# ------------------------------------------------------------ offsets

def test_append_sessions(backend, mount):
    m = mount2(backend, mount)
    a = m.path(".assignments")
    for ln in ("chat/a = alpha", "chat/b = beta", "form/c = alpha"):
        p = sh("echo '%s' >> %s" % (ln, a))
        assert p.returncode == 0, p.stderr
    assert assignments(m) == ["chat/a = alpha", "chat/b = beta",
                              "form/c = alpha"]
    # an append session of many writes, lines split between them: the
    # kernel's offsets (the rendering's size) do not matter
    with open(a, "ab", buffering=0) as f:
        f.write(b"chat/d = be")
        f.write(b"ta\nchat/a =\n")
        f.write(b"form/e = alpha\n")
    assert assignments(m) == ["chat/b = beta", "chat/d = beta",
                              "form/c = alpha", "form/e = alpha"]
    p = subprocess.run(["tee", "-a", m.path(".defaults")],
                       input="forms = beta\n", capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert defaults(m) == ["general =", "chat =", "forms = beta"]


def test_write_out_of_order_refused(backend, mount):
    m = mount2(backend, mount)
    fd = os.open(m.path(".assignments"), os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.write(fd, b"chat/a = alpha\n") == 15
        # a seek back: not a stream of lines any more
        expect_errno(errno.EINVAL, os.pwrite, fd, b"chat/b = beta\n", 0)
    finally:
        expect_errno(errno.EINVAL, os.close, fd)
    assert assignments(m) == []
    assert "write at offset 0, the session is at 15" in m.stderr()
