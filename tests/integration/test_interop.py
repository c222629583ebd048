"""test_interop.py - bucketfs and s3fs read each other's buckets alike;
on azure, a container reads as blobfuse2 lays it out, both ways.

INTERFACE.md: mode, uid, gid and mtime persist in the object's metadata
compatible with s3fs (x-amz-meta-mode, -uid, -gid, -mtime), symlinks are
stored as s3fs stores them, and single-bucket mode (-o bucket=NAME) is a
drop-in for an s3fs mount.  So one RGW bucket is mounted twice at once:
with Debian's s3fs (path-style, SigV4, its stat cache cut to 1 s) and with
bucketfs in single-bucket mode.  A tree (a folder, a sub-folder, files, a
symlink, chmod/chown/touch -d) is made through each mount and read through
the other: listings, contents, mode, uid, gid, mtime (seconds) and symlink
targets must agree with each other and with what was set.
"""

import os
import shutil
import stat
import subprocess
import time

import pytest

from helpers import run, wait_for

T2001 = 981173106                    # 2001-02-03 04:05:06 UTC
TOUCH_D = "2001-02-03 04:05:06 UTC"
MOUNT_TIMEOUT = 20.0
# attrcache.h BFS_ATTR_LONG_TTL_MS: how long a folder's known names hide
# another client's new one
NAMES_TTL = 30.0


@pytest.fixture
def s3fs_mount(rgw, tmp_path):
    """Factory: s3fs_mount(remote_bucket, options=()) -> mount point of an
    s3fs mount of that bucket on the session RGW (options: more -o ones);
    always unmounted in teardown."""
    if not shutil.which("s3fs"):
        pytest.fail("s3fs is not installed", pytrace=False)
    mounts = []

    def make(remote, options=()):
        d = tmp_path / ("s3fs%d" % len(mounts))
        d.mkdir()
        mnt = str(d / "mnt")
        os.mkdir(mnt)
        passwd = str(d / "passwd")
        fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("%s:%s\n" % (rgw.access_key, rgw.secret_key))
        log = open(str(d / "s3fs.stderr"), "ab")
        argv = ["s3fs", remote, mnt, "-f",
                "-o", "url=" + rgw.endpoint,
                "-o", "use_path_request_style",
                "-o", "endpoint=" + rgw.region,
                "-o", "sigv4",
                "-o", "passwd_file=" + passwd,
                "-o", "stat_cache_expire=1",
                "-o", "retries=2",
                "-o", "dbglevel=warn"]
        for o in options:
            argv += ["-o", o]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log,
                                    start_new_session=True)
        finally:
            log.close()
        mounts.append((mnt, proc, str(d / "s3fs.stderr")))
        end = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(mnt):
            if proc.poll() is not None or time.monotonic() > end:
                with open(str(d / "s3fs.stderr"), errors="replace") as f:
                    text = f.read()
                pytest.fail("s3fs did not mount %s (status %s):\n%s"
                            % (mnt, proc.poll(), text[-3000:]),
                            pytrace=False)
            time.sleep(0.05)
        return mnt

    yield make
    for mnt, proc, _ in mounts:
        p = subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
        if p.returncode != 0:
            subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_tree(root, top):
    """Makes the test tree under root/top with ordinary tools; returns
    what each entry must look like."""
    d = os.path.join(root, top)
    os.mkdir(d, 0o750)
    os.mkdir(os.path.join(d, "sub"), 0o700)
    with open(os.path.join(d, "f.txt"), "wb") as f:
        f.write(b"plain text from %s\n" % top.encode())
    data = bytes(range(256)) * 400 + top.encode()
    with open(os.path.join(d, "sub", "g.bin"), "wb") as f:
        f.write(data)
    os.chmod(os.path.join(d, "f.txt"), 0o640)
    os.chown(os.path.join(d, "f.txt"), 1234, 2345)
    run("touch", "-d", TOUCH_D, os.path.join(d, "f.txt"))
    run("touch", "-d", TOUCH_D, os.path.join(d, "sub", "g.bin"))
    run("chmod", "0604", os.path.join(d, "sub", "g.bin"))
    os.symlink("sub/g.bin", os.path.join(d, "link"))
    return {
        "": ("dir", 0o750, None, None, None),
        "sub": ("dir", 0o700, None, None, None),
        "f.txt": ("file", 0o640, 1234, 2345,
                  b"plain text from %s\n" % top.encode()),
        "sub/g.bin": ("file", 0o604, 0, 0, data),
        "link": ("link", None, None, None, "sub/g.bin"),
    }


def view(root, top, entries):
    """What a mount shows of the tree: {rel: (kind, mode, uid, gid, mtime,
    content or target)} plus the listings of the folders."""
    out = {}
    for rel in entries:
        p = os.path.join(root, top, rel) if rel else os.path.join(root, top)
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", None, st.st_uid, st.st_gid, None,
                        os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_uid,
                        st.st_gid, None, sorted(os.listdir(p)))
        else:
            with open(p, "rb") as f:
                body = f.read()
            out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_uid,
                        st.st_gid, int(st.st_mtime), body)
    return out


def check_tree(made_by, by, other, root_by, root_other, top, want):
    a = view(root_by, top, want)
    b = view(root_other, top, want)
    for rel, (kind, mode, uid, gid, content) in want.items():
        name = "%s/%s (made by %s)" % (top, rel, made_by)
        ka, kb = a[rel], b[rel]
        assert ka[0] == kind and kb[0] == kind, \
            "%s: %s sees %s, %s sees %s, want %s" % (name, by, ka[0], other,
                                                     kb[0], kind)
        if mode is not None:
            assert (ka[1], kb[1]) == (mode, mode), \
                "%s: mode %s %o, %s %o, want %o" % (name, by, ka[1], other,
                                                    kb[1], mode)
        assert ka[2:4] == kb[2:4], "%s: uid/gid %s %s, %s %s" % (
            name, by, ka[2:4], other, kb[2:4])
        if uid is not None:
            assert ka[2:4] == (uid, gid), "%s: uid/gid %s, want %s" % (
                name, ka[2:4], (uid, gid))
        if kind == "file":
            assert (ka[4], kb[4]) == (T2001, T2001), \
                "%s: mtime %s %s, %s %s, want %s" % (name, by, ka[4], other,
                                                     kb[4], T2001)
            assert ka[5] == content, "%s: content through %s" % (name, by)
            assert kb[5] == content, "%s: content through %s" % (name,
                                                                 other)
        elif kind == "link":
            assert (ka[5], kb[5]) == (content, content), \
                "%s: target %s %r, %s %r, want %r" % (name, by, ka[5],
                                                      other, kb[5], content)
        else:
            assert ka[5] == kb[5], "%s: listing %s %s, %s %s" % (
                name, by, ka[5], other, kb[5])
    assert a[""][5] == ["f.txt", "link", "sub"]
    assert a["sub"][5] == ["g.bin"]


def test_s3fs_interop_both_ways(backend, mount, s3fs_mount):
    b = backend("s3")
    m = mount([b], single="b1")
    s3 = s3fs_mount(b.remote)
    bfs = m.mnt

    want = make_tree(bfs, "from-bucketfs")
    check_tree("bucketfs", "bucketfs", "s3fs", bfs, s3, "from-bucketfs",
               want)

    want = make_tree(s3, "from-s3fs")
    # bucketfs's own mkdir above looked the root up (its names are known
    # for the TTL): another client's new name shows once that has passed
    assert wait_for(lambda: os.path.isdir(os.path.join(bfs, "from-s3fs")),
                    NAMES_TTL + 30)
    check_tree("s3fs", "s3fs", "bucketfs", s3, bfs, "from-s3fs", want)

    # both see both trees at the root
    assert sorted(os.listdir(bfs)) == sorted(os.listdir(s3)) == \
        ["from-bucketfs", "from-s3fs"]


def test_blobfuse2_layout_both_ways(backend, mount):
    """The azure analogue (blobfuse2, the other tool of Azure containers,
    is not packaged in Debian, so the container is read and written blob
    by blob as blobfuse2 does): the tree made through bucketfs is stored
    as blobfuse2 reads it (folders are zero-length blobs with
    hdi_isfolder=true, files hold their bytes, attributes are
    x-ms-meta-* with s3fs's values, a symlink holds its target), and a
    tree planted as blobfuse2 writes it (folder blobs, plain blobs without
    attributes) reads through bucketfs after a remount."""
    b = backend("azure")
    m = mount([b], single="b1")
    want = make_tree(m.mnt, "from-bucketfs")
    blobs = dict(b.client.list_blobs(b.remote))
    for rel, (kind, mode, uid, gid, content) in want.items():
        name = "from-bucketfs" + ("/" + rel if rel else "")
        md = blobs.get(name)
        assert md is not None, "%s: no blob (%s)" % (name, sorted(blobs))
        body = b.client.get(b.remote, name)
        got = int(md["mode"])
        if kind == "dir":
            assert md.get("hdi_isfolder") == "true" and body == b"", name
            assert stat.S_ISDIR(got) and stat.S_IMODE(got) == mode, name
        elif kind == "link":
            assert stat.S_ISLNK(got) and body == content.encode(), name
        else:
            assert stat.S_ISREG(got) and stat.S_IMODE(got) == mode, name
            assert body == content, name
            assert (int(md["uid"]), int(md["gid"])) == (uid, gid), md
            assert int(md["mtime"].split(".")[0]) == T2001, md
    assert "from-bucketfs/" not in blobs, "an s3-style marker was written"

    folder = {"x-ms-meta-hdi_isfolder": "true"}
    b.client.put(b.remote, "from-blobfuse2", b"", headers=folder)
    b.client.put(b.remote, "from-blobfuse2/sub", b"", headers=folder)
    b.client.put(b.remote, "from-blobfuse2/f.txt", b"plain\n")
    b.client.put(b.remote, "from-blobfuse2/sub/g.bin", bytes(range(256)))
    m.remount()
    d = m.path("from-blobfuse2")
    assert sorted(os.listdir(m.mnt)) == ["from-blobfuse2", "from-bucketfs"]
    assert sorted(os.listdir(d)) == ["f.txt", "sub"]
    assert os.listdir(os.path.join(d, "sub")) == ["g.bin"]
    for p, mode in ((d, 0o755), (os.path.join(d, "sub"), 0o755)):
        st = os.stat(p)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == mode
    st = os.stat(os.path.join(d, "f.txt"))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    with open(os.path.join(d, "sub", "g.bin"), "rb") as f:
        assert f.read() == bytes(range(256))
    # and the tree bucketfs made reads back the same after the remount
    view_after = view(m.mnt, "from-bucketfs", want)
    for rel, (kind, mode, uid, gid, content) in want.items():
        v = view_after[rel]
        assert v[0] == kind, rel
        if mode is not None:
            assert v[1] == mode, rel
        if kind == "file":
            assert v[2:5] == (uid, gid, T2001) and v[5] == content, rel
        elif kind == "link":
            assert v[5] == content, rel
