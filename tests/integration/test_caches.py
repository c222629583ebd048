"""test_caches.py - the block cache (readcache.c) and the attribute and
listing caches (attrcache.c) give the right bytes and attributes.

No timings: what is checked is that cached data is never wrong — a change
made through the mount is read back at once (the cache is invalidated, even
when size and mtime stay the same), a change made directly on the server
shows after the cache TTL, an open file reads one version only (a
replacement before its first byte is followed, one after it fails with
EIO, the mount's own chmod and rename do not count as one), sequential
(prefetched) and random reads of a 40 MiB object return its bytes, a
streamed read keeps its blocks in the block files (a second read sends no
GET), the cache folder stays within a small
cache_size while a bigger file is read, and repeated `ls -l` of a folder
of objects made by other clients (no x-amz-meta-*) and by the mount
(modes, a symlink) gives the same, correct output.
"""

import errno
import hashlib
import os
import random
import stat
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import wait_for

TTL = 30.0                     # attrcache.h BFS_ATTR_LONG_TTL_MS
MIB = 1024 * 1024
T2001 = 981173106


def rbytes(n, seed=1):
    return random.Random(seed).randbytes(n)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def s3(backend, mount):
    """Bucket b1 on the private RGW, mounted with the default cache."""
    b = backend("s3")
    m = mount([b])

    class S:
        pass
    r = S()
    r.m, r.b = m, b
    r.p = lambda *parts: os.path.join(m.path("b1"), *parts)
    return r


def tree_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


# ------------------------------------------------------------ invalidation

def test_write_through_mount_invalidates(mb):
    """Same size and mtime before and after: only the invalidation on the
    mount's own write keeps the old blocks from being served."""
    p = mb.p("same.bin")
    old, new = rbytes(3 * MIB, 1), rbytes(3 * MIB, 2)
    write(p, old)
    os.utime(p, (T2001, T2001))
    assert read(p) == old
    assert read(p) == old            # now from the block cache
    with open(p, "r+b") as f:
        f.write(new)
    os.utime(p, (T2001, T2001))
    assert read(p) == new
    with open(p, "rb") as f:         # a partial overwrite, random offset
        f.seek(MIB + 5)
        assert f.read(100) == new[MIB + 5:MIB + 105]


def test_rename_over_cached_file(mb):
    a, b = rbytes(2 * MIB, 3), rbytes(2 * MIB, 4)
    write(mb.p("a.bin"), a)
    write(mb.p("b.bin"), b)
    for n in ("a.bin", "b.bin"):
        os.utime(mb.p(n), (T2001, T2001))
    assert read(mb.p("a.bin")) == a and read(mb.p("b.bin")) == b
    os.rename(mb.p("a.bin"), mb.p("b.bin"))
    assert read(mb.p("b.bin")) == a
    assert sorted(os.listdir(mb.dir)) == ["b.bin"]
    os.unlink(mb.p("b.bin"))
    assert os.listdir(mb.dir) == []
    write(mb.p("b.bin"), b"short")
    assert read(mb.p("b.bin")) == b"short"


def test_listing_follows_own_changes(mb):
    """The cached listing of a folder drops with every change made in it
    through the mount (create, close after write, mkdir, unlink, rename,
    chmod)."""
    d = mb.p("d")
    os.mkdir(d)
    write(os.path.join(d, "x"), b"1")
    assert sorted(os.listdir(d)) == ["x"]
    os.mkdir(os.path.join(d, "sub"))
    assert sorted(os.listdir(d)) == ["sub", "x"]
    write(os.path.join(d, "y"), b"22")
    assert os.lstat(os.path.join(d, "y")).st_size == 2
    assert sorted(os.listdir(d)) == ["sub", "x", "y"]
    with open(os.path.join(d, "y"), "ab") as f:
        f.write(b"333")
    assert os.lstat(os.path.join(d, "y")).st_size == 5
    os.chmod(os.path.join(d, "x"), 0o600)
    os.rename(os.path.join(d, "x"), os.path.join(d, "z"))
    os.unlink(os.path.join(d, "y"))
    names = sorted(os.listdir(d))
    assert names == ["sub", "z"]
    assert stat.S_IMODE(os.lstat(os.path.join(d, "z")).st_mode) == 0o600


def test_server_change_seen_after_ttl(s3):
    """Objects changed by another client: the old version may be served
    until the TTL ends, never a mix, and the new one after it."""
    key = "srv.bin"
    v1, v2 = rbytes(3 * MIB, 5), rbytes(3 * MIB, 6)
    assert s3.b.put(key, v1) == 200
    assert s3.b.put("gone.txt", b"soon deleted") == 200
    assert read(s3.p(key)) == v1
    assert sorted(os.listdir(s3.p())) == ["gone.txt", key]
    assert s3.b.put(key, v2) == 200
    assert s3.b.put("new.txt", b"made later") == 200
    s3.b.client.delete(s3.b.remote, s3.b.prefix + "gone.txt")
    got = read(s3.p(key))
    assert got in (v1, v2)
    time.sleep(TTL + 1.5)
    assert read(s3.p(key)) == v2
    assert sorted(os.listdir(s3.p())) == ["new.txt", key]


# ---------------------------------------------------- one version per open

_stamp = [T2001]


def replace_behind(mb, rel, data):
    """Another client replaces rel: a PUT to the server, or (local) another
    program rewriting the file, with an mtime of its own as real changes
    have (same size, same second: the local etag could not tell)."""
    assert mb.b.put(rel, data) == 200
    if mb.provider == "local":
        _stamp[0] += 1
        os.utime(mb.b._local(rel), (_stamp[0], _stamp[0]))


def test_replaced_mid_read_fails_not_mixes(mb):
    """Blocks of a file fetched after another client replaced it would be
    the new object's bytes joined to the old one's: the GETs carry
    If-Match, the read fails with EIO (also later ones of that handle)
    and the next open reads the new version whole."""
    old, new = rbytes(8 * MIB, 11), rbytes(8 * MIB, 12)
    assert mb.b.put("mid.bin", old) == 200
    p = mb.p("mid.bin")
    fd = os.open(p, os.O_RDONLY)
    try:
        # not at offset 0: a random read fetches its block only
        assert os.pread(fd, 4096, 5 * MIB) == old[5 * MIB:5 * MIB + 4096]
        replace_behind(mb, "mid.bin", new)
        for off in (MIB + 10, 7 * MIB):
            with pytest.raises(OSError) as e:
                os.pread(fd, 4096, off)
            assert e.value.errno == errno.EIO
    finally:
        os.close(fd)
    def reads_new():
        try:        # the release of fd may still be on its way
            return read(p) == new
        except OSError as e:
            assert e.errno == errno.EIO
            return False
    assert wait_for(reads_new, 5)
    assert "replaced on the server while open" in mb.m.stderr()


def test_replaced_before_first_read_reads_new_version(mb):
    """Opened while the attribute cache still held the old version (its
    blocks cached too), replaced before the first read: the whole new
    version is read, not the cached old blocks."""
    old, new = rbytes(3 * MIB, 13), rbytes(3 * MIB, 14)
    assert mb.b.put("pre.bin", old) == 200
    p = mb.p("pre.bin")
    assert read(p) == old
    with open(p, "rb") as f:
        replace_behind(mb, "pre.bin", new)
        assert f.read() == new
    assert read(p) == new


def test_own_chmod_and_rename_while_reading(mb):
    """This mount's chmod and rename of a file another handle is reading
    copy the object on S3 (a part-uploaded one gets a new etag): the
    reader goes on reading its bytes, no EIO."""
    data = rbytes(20 * MIB + 5, 15)
    write(mb.p("cm.bin"), data)              # parts on s3 and r2
    mb.m.remount()                           # no staged copy left
    fd = os.open(mb.p("cm.bin"), os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 3 * MIB) == data[3 * MIB:3 * MIB + 4096]
        os.chmod(mb.p("cm.bin"), 0o600)
        assert os.pread(fd, 4096, 11 * MIB) == data[11 * MIB:11 * MIB + 4096]
        os.rename(mb.p("cm.bin"), mb.p("cm2.bin"))
        assert os.pread(fd, 4096, 17 * MIB) == data[17 * MIB:17 * MIB + 4096]
        assert os.pread(fd, 100, 20 * MIB) == data[20 * MIB:]
    finally:
        os.close(fd)
    assert read(mb.p("cm2.bin")) == data
    assert stat.S_IMODE(os.stat(mb.p("cm2.bin")).st_mode) == 0o600


# ------------------------------------------------------------------ reads

@pytest.fixture
def big(s3):
    data = rbytes(40 * MIB + 12345, 7)
    assert s3.b.put("big.bin", data) == 200
    return s3, data


def test_sequential_and_random_reads(big):
    s3, data = big
    p = s3.p("big.bin")
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(MIB)
            if not b:
                break
            h.update(b)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    rnd = random.Random(8)
    fd = os.open(p, os.O_RDONLY)
    try:
        for _ in range(300):
            off = rnd.randrange(0, len(data) + 10)
            n = rnd.choice([1, 4096, 5000, 65536, 3 * MIB])
            assert os.pread(fd, n, off) == data[off:off + n]
    finally:
        os.close(fd)

    # Several threads reading random ranges of a fresh handle each, while
    # one reads it sequentially again.
    def worker(seed):
        r = random.Random(seed)
        fd = os.open(p, os.O_RDONLY)
        try:
            for _ in range(100):
                off = r.randrange(0, len(data))
                n = r.choice([4096, 100000, 2 * MIB])
                if os.pread(fd, n, off) != data[off:off + n]:
                    return False
        finally:
            os.close(fd)
        return True
    with ThreadPoolExecutor(5) as ex:
        seq = ex.submit(lambda: hashlib.sha256(read(p)).hexdigest())
        oks = list(ex.map(worker, range(4)))
    assert all(oks)
    assert seq.result() == hashlib.sha256(data).hexdigest()


def test_streamed_read_cached_in_block_files(s3):
    """A sequential read of a 24 MiB object keeps its blocks in
    cache_dir/blocks: the block files hold all of it and a second read
    sends no GET."""
    data = rbytes(24 * MIB + 5, 21)
    assert s3.b.put("s.bin", data) == 200
    p = s3.p("s.bin")
    assert hashlib.sha256(read(p)).digest() == hashlib.sha256(data).digest()
    blocks = os.path.join(s3.m.dir, "cache", "blocks")
    assert os.listdir(blocks)
    assert tree_bytes(blocks) >= 24 * MIB
    gets = requests_of(s3.m, "get")
    assert read(p) == data
    assert requests_of(s3.m, "get") == gets


def gets_logged(m, keys):
    """The keys among keys the daemon's latest start logged a GET of."""
    text = m.stderr().split("==== start")[-1]
    return {k for k in keys
            if any(" GET " in ln and (" %s:" % k) in ln
                   for ln in text.splitlines())}


def test_walk_prefetches_next_files_right_bytes(s3):
    """A folder read file after file in listing order (cp -r) has the
    first block of the next files fetched ahead (fs.c walk_prefetch):
    their GETs are seen before they are opened, empty files get none,
    every file reads back its own bytes, a file this mount
    overwrote after it was prefetched (same size, same mtime) reads the
    new bytes, one written before the walk reads its bytes, and files
    changed by another client (a prefetched one, a big one) read whole,
    old or new, never a mix."""
    sizes = [5000, 1, 0, 800000, 70000, 2 * MIB + 17, 300, 4096, 9, 12345]
    names = ["f%02d" % i for i in range(len(sizes))]
    data = {n: rbytes(sz, 40 + i) for i, (n, sz) in enumerate(zip(names, sizes))}
    for n in names:
        assert s3.b.put("walk/" + n, data[n]) == 200
    d = s3.p("walk")
    os.mkdir(s3.p("walk", "sub"))                 # a folder among the files
    # written through the mount before the walk: its own bytes
    data["f06"] = rbytes(300, 99)
    write(os.path.join(d, "f06"), data["f06"])
    order = [x for x in os.listdir(d) if x != "sub"]  # readdir = listing
    assert order == names
    assert read(os.path.join(d, "f00")) == data["f00"]
    assert read(os.path.join(d, "f01")) == data["f01"]
    # f01 followed f00: of the next four, f03, f04 and the first block
    # of f05 (bigger than a block) are fetched ahead (f02 is empty)
    want = {s3.b.prefix + "walk/" + n for n in ("f03", "f04", "f05")}
    deadline = time.monotonic() + 30
    while gets_logged(s3.m, want) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gets_logged(s3.m, want) == want
    assert not gets_logged(s3.m, {s3.b.prefix + "walk/f02"})
    # f03 changed by another client after it was prefetched
    old3, new3 = data["f03"], rbytes(len(data["f03"]), 96)
    assert s3.b.put("walk/f03", new3) == 200
    # f04 overwritten through the mount after its block was fetched
    p4 = os.path.join(d, "f04")
    st4 = os.stat(p4)
    data["f04"] = rbytes(70000, 98)
    write(p4, data["f04"])
    os.utime(p4, ns=(st4.st_atime_ns, st4.st_mtime_ns))
    # f05 changed by another client: old or new, never a mix
    old5, new5 = data["f05"], rbytes(len(data["f05"]), 97)
    assert s3.b.put("walk/f05", new5) == 200
    either = {"f03": (old3, new3), "f05": (old5, new5)}
    for n in names[2:]:
        got = read(os.path.join(d, n))
        if n in either:
            assert got in either[n], n
        else:
            assert got == data[n], n
    # a whole second walk, as cp -r does it
    for n in names:
        got = read(os.path.join(d, n))
        if n in either:
            assert got in either[n], n
        else:
            assert got == data[n], n


def test_cache_dir_within_small_cache_size(backend, mount):
    """cache_size = 8M while 40 MiB are read sequentially, randomly and
    with a file staged for writing: cache_dir never above 8 MiB."""
    b = backend("s3")
    data = rbytes(40 * MIB + 777, 9)
    assert b.put("big.bin", data) == 200
    m = mount([b], conf_extra="cache_size = 8M")
    cache = os.path.join(m.dir, "cache")
    p = m.path("b1", "big.bin")
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], tree_bytes(cache))
            time.sleep(0.01)
    t = threading.Thread(target=sample)
    t.start()
    try:
        assert hashlib.sha256(read(p)).digest() == \
            hashlib.sha256(data).digest()
        rnd = random.Random(10)
        with open(p, "rb") as f:
            for _ in range(200):
                off = rnd.randrange(0, len(data))
                f.seek(off)
                assert f.read(8192) == data[off:off + 8192]
        # 2 MiB staged for writing while the blocks are in use.
        with open(m.path("b1", "w.bin"), "wb") as w:
            w.write(rbytes(2 * MIB, 11))
            assert read(p)[:MIB] == data[:MIB]
        assert hashlib.sha256(read(p)).digest() == \
            hashlib.sha256(data).digest()
    finally:
        stop.set()
        t.join()
    assert 0 < peak[0] <= 8 * MIB, peak[0]


# --------------------------------------------------------------- listings

def ls_l(path):
    return subprocess.run(["ls", "-l", "--time-style=+%s", path],
                          capture_output=True, text=True, check=True).stdout


def test_repeated_ls_l(s3):
    """Objects without metadata (another client), files with modes set
    through the mount and a symlink: `ls -l` right and the same twice."""
    for i in range(60):
        assert s3.b.put("f/o%03d" % i, b"x" * i) == 200
    d = s3.p("f")
    write(os.path.join(d, "mine"), b"mine")
    os.chmod(os.path.join(d, "mine"), 0o640)
    os.utime(os.path.join(d, "mine"), (T2001, T2001))
    os.symlink("o001", os.path.join(d, "link"))
    os.mkdir(os.path.join(d, "sub"), 0o700)
    first = ls_l(d)
    second = ls_l(d)
    assert first == second
    lines = {ln.split(" -> ")[0].split()[-1]: ln
             for ln in first.splitlines()[1:]}
    assert len(lines) == 63
    assert lines["o005"].startswith("-rw-r--r--")
    assert lines["o005"].split()[4] == "5"
    assert lines["mine"].startswith("-rw-r-----")
    assert str(T2001) in lines["mine"]
    assert lines["link"].startswith("l") and \
        lines["link"].endswith("link -> o001")
    assert lines["sub"].startswith("drwx------")
    assert os.readlink(os.path.join(d, "link")) == "o001"
    # A fresh mount lists the same (no state from this mount's caches).
    s3.m.unmount()
    s3.m.start()
    assert ls_l(d) == first


# ------------------------------------------------- list_metadata = listing

KERNEL_TTL = 1.0               # fs.c fs_init: entry_timeout, attr_timeout


def plant_s3fs_objects(b):
    """A plain object, one with an s3fs mode and owner, an s3fs symlink."""
    c = b.client
    assert c.put(b.remote, "f/plain", b"12345") == 200
    assert c.put(b.remote, "f/priv", b"secret",
                 headers={"x-amz-meta-mode": str(stat.S_IFREG | 0o600),
                          "x-amz-meta-uid": "4242",
                          "x-amz-meta-gid": "4343",
                          "x-amz-meta-mtime": str(T2001)}) == 200
    assert c.put(b.remote, "f/link", b"plain",
                 headers={"x-amz-meta-mode":
                          str(stat.S_IFLNK | 0o777)}) == 200


def ls_lines(d):
    return {ln.split(" -> ")[0].split()[-1]: ln
            for ln in ls_l(d).splitlines()[1:]}


def test_list_metadata_listing(backend, mount):
    """list_metadata = listing (per bucket): `ls -l` takes objects without
    x-amz-meta-mode from the listing alone (regular file, 0644, the
    mount's owner, LastModified), with no HEAD; a stat after the kernel's
    attribute timeout, an open or a readlink HEADs the object, and later
    listings show what that HEAD learned."""
    b = backend("s3", list_metadata="listing")
    plant_s3fs_objects(b)
    m = mount([b])
    d = os.path.join(m.path("b1"), "f")
    lines = ls_lines(d)
    assert sorted(lines) == ["link", "plain", "priv"]
    for n in ("link", "plain", "priv"):
        assert lines[n].startswith("-rw-r--r--"), lines[n]
    assert lines["priv"].split()[4] == "6"
    # Open within the kernel's timeout: the kernel still takes the link for
    # a file; the daemon HEADs it, answers ESTALE, the VFS looks it up again
    # and follows the link.
    assert read(os.path.join(d, "link")) == b"12345"
    time.sleep(KERNEL_TTL + 0.5)
    st = os.lstat(os.path.join(d, "priv"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid, int(st.st_mtime)) == (4242, 4343, T2001)
    assert stat.S_ISLNK(os.lstat(os.path.join(d, "link")).st_mode)
    assert os.readlink(os.path.join(d, "link")) == "plain"
    lines = ls_lines(d)
    assert lines["priv"].startswith("-rw-------")
    assert lines["link"].startswith("l")
    assert lines["plain"].startswith("-rw-r--r--")


def test_list_metadata_listing_global_and_head_default(backend, mount):
    """The [bucketfs] key applies to every bucket without its own; the
    default (head) shows s3fs modes and symlinks in the first `ls -l`."""
    b1 = backend("s3")
    b2 = backend("s3", name="b2", list_metadata="head")
    plant_s3fs_objects(b1)
    plant_s3fs_objects(b2)
    m = mount([b1, b2], conf_extra="list_metadata = listing")
    one = ls_lines(os.path.join(m.path("b1"), "f"))
    two = ls_lines(os.path.join(m.path("b2"), "f"))
    assert one["priv"].startswith("-rw-r--r--")
    assert one["link"].startswith("-rw-r--r--")
    assert two["priv"].startswith("-rw-------")
    assert two["link"].startswith("l") and two["link"].endswith("-> plain")


# ------------------------------------------------------ known metadata

def heads_since_start(m):
    """HEADs of the files k/mine, k/link, k/theirs logged by the daemon's
    latest start (the folder's own lookup HEADs k and k/)."""
    text = m.stderr().split("==== start")[-1]
    return [ln for ln in text.splitlines() if "http HEAD" in ln and
            any(" k/%s:" % n in ln for n in ("mine", "link", "theirs"))]


def test_listing_known_metadata_without_head(s3):
    """Files written through the mount (the index) and objects HEADed once
    (object_meta) are listed by a fresh mount without a HEAD while the
    listing shows the same etag, size and LastModified; a metadata-only
    change by another client (a copy onto itself) changes LastModified and
    is HEADed and shown."""
    d = s3.p("k")
    os.mkdir(d)
    write(os.path.join(d, "mine"), b"mine")
    os.chmod(os.path.join(d, "mine"), 0o640)
    os.symlink("mine", os.path.join(d, "link"))
    key = s3.b.prefix + "k/theirs"
    assert s3.b.client.put(s3.b.remote, key, b"theirs", headers={
        "x-amz-meta-mode": str(stat.S_IFREG | 0o600)}) == 200
    first = ls_l(d)
    s3.m.unmount()
    s3.m.start()
    assert ls_l(d) == first
    assert heads_since_start(s3.m) == []
    lines = ls_lines(d)
    assert lines["mine"].startswith("-rw-r-----")
    assert lines["link"].startswith("l") and lines["link"].endswith("-> mine")
    assert lines["theirs"].startswith("-rw-------")
    # another client changes only the metadata (same etag, new LastModified)
    time.sleep(1.1)
    st, _, _ = s3.b.client.request("PUT", s3.b.remote, key, headers={
        "x-amz-copy-source": "/%s/%s" % (s3.b.remote, key),
        "x-amz-metadata-directive": "REPLACE",
        "x-amz-meta-mode": str(stat.S_IFREG | 0o604)})
    assert st == 200
    s3.m.unmount()
    s3.m.start()
    lines = ls_lines(d)
    assert lines["theirs"].startswith("-rw----r--"), lines["theirs"]
    assert lines["mine"].startswith("-rw-r-----")
    assert heads_since_start(s3.m) != []


# ------------------------------------------------ listings under writes

def requests_of(m, op):
    """Provider requests of op so far (.metrics, every status)."""
    n = 0
    for ln in read(m.path(".metrics")).decode().splitlines():
        if ln.startswith('bucketfs_requests_total{op="%s",' % op):
            n += int(float(ln.rsplit(" ", 1)[1]))
    return n


def test_listing_cached_while_other_folder_written(s3):
    """Writes in folder w drop only w's cached listing: a listing of
    folder a made while files are written in w is cached, so listing a
    again sends no LIST (a drop anywhere used to keep every listing under
    construction out of the cache)."""
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda i: s3.b.put("a%d/o%03d" % (i // 150,
                                                             i % 150),
                                               b"x"), range(450)))
    assert set(codes) == {200}
    os.mkdir(s3.p("w"))
    stop = threading.Event()
    done = [0, 0]
    errors = []

    def writer(t):
        i = 0
        try:
            while not stop.is_set():
                write(s3.p("w", "f%d-%d" % (t, i)), b"y" * 100)
                done[t] += 1
                i += 1
        except OSError as e:          # reported by the test, not lost
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in (0, 1)]
    for t in threads:
        t.start()
    overlapped = []
    try:
        assert wait_for(lambda: sum(done) >= 2, 60), errors
        for i in range(3):
            d = s3.p("a%d" % i)
            w0 = sum(done)
            assert len(os.listdir(d)) == 150   # LIST + 150 HEADs
            if sum(done) - w0 >= 2:   # a whole write (its drops) inside
                overlapped.append(d)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert overlapped, "no write completed during any listing"
    for d in overlapped:
        os.stat(d)
        lists = requests_of(s3.m, "list")
        assert len(os.listdir(d)) == 150
        assert requests_of(s3.m, "list") == lists, d


ROUNDS, WALKERS = 15, 8        # enough for TSan to catch the old race


def test_parallel_walks_right_bytes(backend, mount):
    """Several readers walk folders of two buckets at once, each open a
    walk step (walk_prefetch hands the last opened key from one open to
    the next, and one in another bucket is freed at once): every file
    reads right, and no open reads a key another one already freed (the
    TSan run checks that)."""
    m = mount([backend("s3"), backend("local", name="b2")])
    files = {}
    for bucket in ("b1", "b2"):
        os.mkdir(m.path(bucket, "walk"))
        for i in range(12):
            p = m.path(bucket, "walk", "f%02d" % i)
            files[p] = rbytes(1000 + i, seed=i)
            write(p, files[p])
    order = sorted(files, key=lambda p: (p.rsplit("/", 1)[1], p))
    errors = []

    def walker(t):
        for _ in range(ROUNDS):
            for p in order:
                if read(p) != files[p]:
                    errors.append("walker %d: %s wrong" % (t, p))
                    return

    with ThreadPoolExecutor(WALKERS) as ex:
        list(ex.map(walker, range(WALKERS)))
    assert not errors, errors


# ------------------------------------------------------- [mount] cache = off

def test_cache_off_correct_and_asks_provider(provider, backend, mount):
    """[mount] cache = off (debugging): writes, renames, listings and reads
    are right, and nothing is answered from a cache: two listings of a
    folder send two LISTs and lookups of absent names send requests,
    where a cached mount of the same bucket sends one LIST and nothing
    (request counts on the remote providers; local sends no requests)."""
    b = backend(provider)
    off = mount([b], conf_extra="\n[mount]\ncache = off\n")
    d = off.path("b1", "d")
    os.mkdir(d)
    data, other = rbytes(3 * MIB, 7), rbytes(100, 8)
    write(os.path.join(d, "a.bin"), data)
    write(os.path.join(d, "c.txt"), other)
    os.rename(os.path.join(d, "a.bin"), os.path.join(d, "b.bin"))
    assert sorted(os.listdir(d)) == ["b.bin", "c.txt"]
    assert not os.path.exists(os.path.join(d, "a.bin"))
    assert read(os.path.join(d, "b.bin")) == data
    write(os.path.join(d, "c.txt"), b"new")        # same folder, rewritten
    assert read(os.path.join(d, "c.txt")) == b"new"
    assert os.stat(os.path.join(d, "b.bin")).st_size == 3 * MIB
    os.unlink(os.path.join(d, "c.txt"))
    assert os.listdir(d) == ["b.bin"]
    if provider == "local":
        return
    on = mount([b])                                # same bucket, cached

    def costs(m):
        dd = m.path("b1", "d")
        assert os.listdir(dd) == ["b.bin"]        # fills a cached mount
        lists = requests_of(m, "list")
        assert os.listdir(dd) == ["b.bin"]
        assert os.listdir(dd) == ["b.bin"]
        relist = requests_of(m, "list") - lists
        before = sum(requests_of(m, op) for op in ("head", "list"))
        for i in range(5):
            assert not os.path.exists(os.path.join(dd, "absent%d" % i))
        absent = sum(requests_of(m, op) for op in ("head", "list")) - before
        return relist, absent

    assert costs(on) == (0, 0)
    relist, absent = costs(off)
    assert relist == 2, relist
    assert absent >= 5, absent
