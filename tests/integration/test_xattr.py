"""test_xattr.py - extended attributes (INTERFACE.md "Extended attributes").

Every file and folder under a bucket folder answers the read-only
user.bucketfs.* set (bucket, bucket_id, key, etag, a presigned url on
s3/r2 that an HTTP client can fetch); other user.* attributes are stored
with the object as s3fs -o use_xattr stores them (x-amz-meta-xattr), or
as real xattrs of the file on local.  Checked per provider with the
syscalls getfattr/setfattr use, behind the daemon's back on the server,
against Debian's s3fs both ways, and by request counts from .metrics.
"""

import errno
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import urllib.request

import pytest

from helpers import close_quietly, expect_errno, wait_for
import conftest
from test_interop import s3fs_mount  # noqa: F401  (fixture)
from fault_fixtures import faulty_s3, kill9  # noqa: F401  (fixture)

OWN = ["user.bucketfs.bucket", "user.bucketfs.bucket_id",
       "user.bucketfs.key", "user.bucketfs.etag", "user.bucketfs.url"]
ENOTSUP = errno.EOPNOTSUPP

# What s3fs 1.90 stores for user.z="hello world" and user."a b*~+"=ODD
# (tests/unit/test_xattr.c has the same vector).
ODD = bytes(range(20)) + b"\xff/+="
S3FS_VALUE = ("%7B%22user.a%20b%2A~%2B%22%3A%22AAECAwQFBgcICQoLDA0ODxAREhP"
              "/Lys9%22%2C%22user.z%22%3A%22aGVsbG8gd29ybGQ%3D%22%7D")


def requests(m, op=None):
    """Provider requests so far (of one op: head, put, copy...), from
    .metrics."""
    with open(m.path(".metrics")) as f:
        text = f.read()
    pat = r'^bucketfs_requests_total\{op="%s"[^}]*\} (\S+)' % (op or "[^\"]*")
    return sum(int(float(v)) for v in re.findall(pat, text, re.M))


def bucket_id(m, name):
    con = sqlite3.connect(m.db, timeout=10)
    try:
        return con.execute("SELECT id FROM storage_buckets WHERE name = ?",
                           (name,)).fetchone()[0]
    finally:
        con.close()


def stored_xattr(mb, rel):
    """The stored user xattrs of rel behind the daemon's back: the raw
    x-amz-meta-xattr value (s3, r2; None when absent), or a dict of the
    local file's real user.* xattrs but the provider's own."""
    if mb.provider == "local":
        p = os.path.join(mb.b.path, rel)
        return {n: os.getxattr(p, n, follow_symlinks=False)
                for n in os.listxattr(p, follow_symlinks=False)
                if not n.startswith("user.bucketfs.")}
    return mb.b.meta(rel).get("xattr")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ------------------------------------------------------------ read-only set

def test_bucketfs_attributes(mb):
    data = b"attachment bytes\n" * 100
    write(mb.p("f.txt"), data)
    os.makedirs(mb.p("d", "e"))
    f, d = mb.p("f.txt"), mb.p("d", "e")
    bid = bucket_id(mb.m, "b1")
    names = os.listxattr(f)
    want = OWN if mb.provider != "local" else OWN[:-1]
    assert [n for n in names if n.startswith("user.bucketfs.")] == want
    assert os.getxattr(f, "user.bucketfs.bucket") == b"b1"
    assert os.getxattr(f, "user.bucketfs.bucket_id") == bid.encode()
    assert os.getxattr(f, "user.bucketfs.key") == b"f.txt"
    assert os.getxattr(f, "user.bucketfs.etag") == \
        hashlib.md5(data).hexdigest().encode()
    # folders: the marker key, no etag, no url
    assert os.getxattr(d, "user.bucketfs.key") == b"d/e/"
    assert os.getxattr(d, "user.bucketfs.bucket") == b"b1"
    expect_errno(errno.ENODATA, os.getxattr, d, "user.bucketfs.etag")
    expect_errno(errno.ENODATA, os.getxattr, d, "user.bucketfs.url")
    assert "user.bucketfs.etag" not in os.listxattr(d)
    # the bucket folder itself
    assert os.getxattr(mb.dir, "user.bucketfs.bucket") == b"b1"
    assert os.getxattr(mb.dir, "user.bucketfs.key") == b""
    # size query then read, as getfattr does
    assert os.getxattr(f, "user.bucketfs.bucket") == b"b1"
    # the mount root and control files have none
    assert os.listxattr(mb.m.mnt) == []
    expect_errno(errno.ENODATA, os.getxattr, mb.m.mnt, "user.bucketfs.key")
    if mb.provider == "local":
        expect_errno(errno.ENODATA, os.getxattr, f, "user.bucketfs.url")
        return
    url = os.getxattr(f, "user.bucketfs.url").decode()
    assert url.startswith(mb.b.rgw.endpoint + "/"), url
    assert "X-Amz-Expires=3600" in url, url
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.read() == data


@pytest.mark.parametrize("prov", ["local", "s3", "r2"])
def test_bucketfs_attributes_with_prefix(prov, backend, mount):
    b = backend(prov, "pre", prefix="app/x/")
    m = mount([b], conf_extra="presign_expires = 120\n")
    write(m.path("pre", "a.bin"), b"abc")
    assert os.getxattr(m.path("pre", "a.bin"), "user.bucketfs.key") == \
        b"app/x/a.bin"
    assert os.getxattr(m.path("pre"), "user.bucketfs.key") == b"app/x/"
    if prov == "local":
        return
    url = os.getxattr(m.path("pre", "a.bin"), "user.bucketfs.url").decode()
    assert "X-Amz-Expires=120" in url and "/app/x/a.bin?" in url, url
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.read() == b"abc"


def test_bucketfs_attributes_read_only(mb):
    write(mb.p("f"), b"x")
    os.mkdir(mb.p("d"))
    for p in (mb.p("f"), mb.p("d"), mb.dir):
        for n in OWN:
            expect_errno(errno.EPERM, os.setxattr, p, n, b"v")
            expect_errno(errno.EPERM, os.removexattr, p, n)
        expect_errno(errno.EPERM, os.setxattr, p, "user.bucketfs.other", b"v")
    assert os.getxattr(mb.p("f"), "user.bucketfs.key") == b"f"


def test_etag_of_a_file_being_written(mb):
    fd = os.open(mb.p("new"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"first")
        # never stored yet
        expect_errno(errno.ENODATA, os.getxattr, mb.p("new"),
                     "user.bucketfs.etag")
    finally:
        os.close(fd)
    stored = hashlib.md5(b"first").hexdigest().encode()
    assert os.getxattr(mb.p("new"), "user.bucketfs.etag") == stored
    fd = os.open(mb.p("new"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"second")
        # dirty: still the etag of the stored version
        assert os.getxattr(mb.p("new"), "user.bucketfs.etag") == stored
    finally:
        os.close(fd)
    assert os.getxattr(mb.p("new"), "user.bucketfs.etag") == \
        hashlib.md5(b"second").hexdigest().encode()


# ------------------------------------------------------------ user.* set

def test_user_xattrs_round_trip(mb):
    f = mb.p("f.txt")
    write(f, b"data")
    os.mkdir(mb.p("d"))
    expect_errno(errno.ENODATA, os.getxattr, f, "user.color")
    os.setxattr(f, "user.color", b"blue")
    os.setxattr(f, "user.bin", ODD)
    os.setxattr(f, "user.empty", b"")
    os.setxattr(mb.p("d"), "user.k", b"v")
    assert os.getxattr(f, "user.color") == b"blue"
    user = [n for n in os.listxattr(f) if not n.startswith("user.bucketfs.")]
    assert user == ["user.bin", "user.color", "user.empty"]
    # flags
    expect_errno(errno.EEXIST, os.setxattr, f, "user.color", b"red",
                 os.XATTR_CREATE)
    expect_errno(errno.ENODATA, os.setxattr, f, "user.nope", b"x",
                 os.XATTR_REPLACE)
    os.setxattr(f, "user.color", b"green", os.XATTR_REPLACE)
    os.setxattr(f, "user.new", b"n", os.XATTR_CREATE)
    os.removexattr(f, "user.new")
    expect_errno(errno.ENODATA, os.removexattr, f, "user.new")
    expect_errno(errno.ENODATA, os.getxattr, f, "user.new")
    # names s3fs's parser could not read back
    expect_errno(errno.EINVAL, os.setxattr, f, "user.a,b", b"x")
    expect_errno(errno.EINVAL, os.setxattr, f, 'user.a"b', b"x")
    # behind the daemon's back
    st = stored_xattr(mb, "f.txt")
    if mb.provider == "local":
        assert st == {"user.bin": ODD, "user.color": b"green",
                      "user.empty": b""}
    else:
        assert st == ("%7B%22user.bin%22%3A%22AAECAwQFBgcICQoLDA0ODxAREhP"
                      "/Lys9%22%2C%22user.color%22%3A%22Z3JlZW4%3D%22%2C"
                      "%22user.empty%22%3A%22%22%7D")
        assert mb.b.meta("d/")["xattr"] == "%7B%22user.k%22%3A%22dg%3D%3D%22%7D"
        assert mb.b.read("f.txt") == b"data"
    mb.m.remount()
    assert os.getxattr(f, "user.color") == b"green"
    assert os.getxattr(f, "user.bin") == ODD
    assert os.getxattr(f, "user.empty") == b""
    assert os.getxattr(mb.p("d"), "user.k") == b"v"
    with open(f, "rb") as fh:
        assert fh.read() == b"data"
    for n in ("user.bin", "user.color", "user.empty"):
        os.removexattr(f, n)
    assert [n for n in os.listxattr(f)
            if not n.startswith("user.bucketfs.")] == []
    st = stored_xattr(mb, "f.txt")
    assert st == ({} if mb.provider == "local" else None)


def test_user_xattrs_survive_changes(mb):
    """chmod, rename and an overwrite keep the attributes."""
    f = mb.p("f")
    write(f, b"v1")
    os.setxattr(f, "user.tag", b"keep")
    os.chmod(f, 0o600)
    assert os.getxattr(f, "user.tag") == b"keep"
    os.rename(f, mb.p("g"))
    assert os.getxattr(mb.p("g"), "user.tag") == b"keep"
    write(mb.p("g"), b"v2 longer")          # O_TRUNC overwrite
    with open(mb.p("g"), "r+b") as fh:      # in-place change
        fh.seek(1)
        fh.write(b"X")
    mb.m.remount()
    assert os.getxattr(mb.p("g"), "user.tag") == b"keep"
    with open(mb.p("g"), "rb") as fh:
        assert fh.read() == b"vX longer"
    assert os.stat(mb.p("g")).st_mode & 0o777 == 0o600


def test_xattr_on_open_file_goes_with_the_upload(mb):
    """fsetxattr while writing (cp --preserve=xattr does it): stored with
    the upload, no request of its own (s3, r2: the same count as writing
    a file without it)."""
    def make(name, xattr):
        before = (requests(mb.m, "put"), requests(mb.m, "copy"))
        fd = os.open(mb.p(name), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"payload")
            if xattr:
                os.setxattr(fd, "user.src", b"scanner-7")
                assert os.getxattr(mb.p(name), "user.src") == b"scanner-7"
        finally:
            os.close(fd)
        return (requests(mb.m, "put") - before[0],
                requests(mb.m, "copy") - before[1])
    plain = make("plain", False)
    with_xattr = make("w", True)
    if mb.provider == "local":
        assert stored_xattr(mb, "w") == {"user.src": b"scanner-7"}
    else:
        assert stored_xattr(mb, "w") == \
            "%7B%22user.src%22%3A%22c2Nhbm5lci03%22%7D"
        assert with_xattr == plain == (1, 0), (plain, with_xattr)
    mb.m.remount()
    assert os.getxattr(mb.p("w"), "user.src") == b"scanner-7"


def test_e2big(mb):
    f = mb.p("f")
    write(f, b"x")
    os.setxattr(f, "user.a", b"1" * 1000)
    expect_errno(errno.E2BIG, os.setxattr, f, "user.b", b"2" * 1500)
    expect_errno(errno.E2BIG, os.setxattr, f, "user.c", b"3" * 5000)
    # nothing stored by the refused ones
    expect_errno(errno.ENODATA, os.getxattr, f, "user.b")
    mb.m.remount()
    assert os.getxattr(f, "user.a") == b"1" * 1000
    expect_errno(errno.ENODATA, os.getxattr, f, "user.b")
    if mb.provider == "local":
        assert stored_xattr(mb, "f") == {"user.a": b"1" * 1000}
    # the limit counts the whole set: a replacement of the same size fits
    os.setxattr(f, "user.a", b"9" * 1000)
    assert os.getxattr(f, "user.a") == b"9" * 1000


def test_other_namespaces(mb):
    write(mb.p("f"), b"x")
    for n in ("security.capability", "system.posix_acl_access",
              "trusted.x", "security.selinux"):
        expect_errno(ENOTSUP, os.getxattr, mb.p("f"), n)
    # (capability and ACL values would be refused by the kernel first)
    for n in ("trusted.x", "security.bfs"):
        expect_errno(ENOTSUP, os.setxattr, mb.p("f"), n, b"v")
        expect_errno(ENOTSUP, os.removexattr, mb.p("f"), n)


@pytest.mark.parametrize("prov", ["s3", "r2"])
def test_no_requests_when_cached(prov, backend, mount):
    """getxattr after a lookup costs no request; neither does the
    kernel's security.capability check of every write."""
    b = backend(prov)
    m = mount([b])
    f = m.path("b1", "f")
    write(f, b"x")
    os.setxattr(f, "user.k", b"v")
    m.remount()

    def counted():
        # not the start-up sweep of multipart uploads: the upload worker
        # lists them in the background after the mount is ready, so on a
        # slow machine that request lands in the middle of this test
        return requests(m) - requests(m, "multipart")
    os.stat(f)                               # the lookup: a HEAD
    n = counted()
    assert os.getxattr(f, "user.k") == b"v"
    assert os.getxattr(f, "user.bucketfs.etag")
    assert os.getxattr(f, "user.bucketfs.url")
    assert "user.k" in os.listxattr(f)
    expect_errno(errno.ENODATA, os.getxattr, f, "user.missing")
    assert counted() == n
    fd = os.open(m.path("b1", "g"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"staged")      # from here on writes are local
        n = counted()
        for i in range(20):
            expect_errno(ENOTSUP, os.getxattr, fd, "security.capability")
            os.pwrite(fd, b"y" * 4096, i * 4096)
        assert counted() == n
    finally:
        os.close(fd)


# ------------------------------------------------------------ interop

@pytest.mark.parametrize("prov", ["s3", "r2"])
def test_reads_s3fs_encoding(prov, backend, mount):
    """An object whose x-amz-meta-xattr s3fs wrote reads back."""
    b = backend(prov)
    b.client.put_ok(b.remote, "planted", b"p",
                    headers={"x-amz-meta-xattr": S3FS_VALUE})
    m = mount([b])
    p = m.path("b1", "planted")
    assert os.getxattr(p, "user.z") == b"hello world"
    assert os.getxattr(p, "user.a b*~+") == ODD
    assert sorted(n for n in os.listxattr(p)
                  if not n.startswith("user.bucketfs.")) == \
        ["user.a b*~+", "user.z"]
    # a change keeps the other one and is stored in the same encoding
    os.removexattr(p, "user.z")
    assert b.meta("planted")["xattr"] == \
        "%7B%22user.a%20b%2A~%2B%22%3A%22AAECAwQFBgcICQoLDA0ODxAREhP/Lys9%22%7D"


def test_local_real_xattrs(backend, mount):
    """local: the attributes are real xattrs of the file, both ways."""
    b = backend("local")
    write(os.path.join(b.path, "f"), b"x")
    os.setxattr(os.path.join(b.path, "f"), "user.planted", b"from disk")
    m = mount([b])
    p = m.path("b1", "f")
    assert os.getxattr(p, "user.planted") == b"from disk"
    # the provider's own etag xattrs are not the user's
    assert not [n for n in os.listxattr(p)
                if n.startswith("user.bucketfs.etag_")]
    os.setxattr(p, "user.more", b"m")
    assert os.getxattr(os.path.join(b.path, "f"), "user.more") == b"m"


@pytest.mark.parametrize("prov", ["s3"])
def test_s3fs_both_ways(prov, backend, mount, s3fs_mount):  # noqa: F811
    """Debian's s3fs -o use_xattr and bucketfs read each other's."""
    b = backend(prov)
    m = mount([b])
    s3 = s3fs_mount(b.remote, options=["use_xattr"])
    write(m.path("b1", "from-bfs"), b"1")
    os.setxattr(m.path("b1", "from-bfs"), "user.who", b"bucketfs")
    os.setxattr(m.path("b1", "from-bfs"), "user.bin", ODD)
    assert os.getxattr(os.path.join(s3, "from-bfs"), "user.who") == b"bucketfs"
    assert os.getxattr(os.path.join(s3, "from-bfs"), "user.bin") == ODD
    write(os.path.join(s3, "from-s3fs"), b"2")
    os.setxattr(os.path.join(s3, "from-s3fs"), "user.who", b"s3fs")
    os.setxattr(os.path.join(s3, "from-s3fs"), "user.bin", ODD)
    p = m.path("b1", "from-s3fs")
    assert os.getxattr(p, "user.who") == b"s3fs"
    assert os.getxattr(p, "user.bin") == ODD


def test_user_xattrs_survive_recovery_after_kill9(faulty_s3):  # noqa: F811
    """A file with user xattrs, changed in place and journaled, the daemon
    killed before the upload: the recovered upload keeps the set."""
    m = faulty_s3.mount()
    b = m.backends["b1"]
    p = m.path("b1", "f.txt")
    write(p, b"v1\n")
    os.setxattr(p, "user.tag", b"keep")
    assert b.meta("f.txt").get("xattr")
    fd = os.open(p, os.O_WRONLY)
    try:
        os.pwrite(fd, b"V", 0)
        kill9(m)
    finally:
        close_quietly(fd)
    m.start()
    assert wait_for(lambda: b.read("f.txt") == b"V1\n", 30)
    assert b.meta("f.txt").get("xattr") == \
        "%7B%22user.tag%22%3A%22a2VlcA%3D%3D%22%7D", b.meta("f.txt")
    assert os.getxattr(p, "user.tag") == b"keep"


# ------------------------------------------------------------ presign_expires

def test_presign_expires_reload_and_bad_value(backend, mount):
    b = backend("s3")
    m = mount([b])
    write(m.path("b1", "f"), b"x")
    url = os.getxattr(m.path("b1", "f"), "user.bucketfs.url").decode()
    assert "X-Amz-Expires=3600&" in url or url.endswith("X-Amz-Expires=3600")
    text = open(m.cfg).read()
    with open(m.cfg, "w") as f:
        f.write(text.replace("[bucketfs]\n", "[bucketfs]\npresign_expires = 60\n",
                             1))
    m.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "X-Amz-Expires=60&" in os.getxattr(
        m.path("b1", "f"), "user.bucketfs.url").decode(), 10)
    # out of range: refused at start, naming file, line and key
    bad = mount([backend("local", "alpha")], init=False, start=False,
                conf_extra="presign_expires = 604801\n")
    p = subprocess.run(bad.argv(), capture_output=True, text=True, timeout=30,
                       env=conftest.daemon_env())
    assert p.returncode != 0
    assert re.search(r"bucketfs\.conf:\d+: key 'presign_expires': expected "
                     r"seconds from 1 to 604800", p.stderr), p.stderr
    assert not os.path.ismount(bad.mnt)
