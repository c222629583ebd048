"""test_lookups.py - what a lookup of a name costs in a folder the mount
has not listed (attrcache.c, bfs_dir_lookup), counted from .metrics.

A fresh mount that creates files in a folder that already exists on the
server (a chat server restarted, writing into a group's folder) probes
the folder once: one listing request of one page, whose names answer the
lookups of every new name with ENOENT and no request, so each file costs
its PUT only.  What the probe says must stay true: this mount's own
creates and deletes in the folder are seen at once, a name another client
creates is found once the record's TTL (the listing TTL) has passed, and
a page cut at BFS_LIST_PAGE_KEYS names proves nothing about names that
sort after its last.  No timings are asserted.
"""

import errno
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import expect_errno, wait_for

TTL = 30.0                     # attrcache.h BFS_ATTR_LONG_TTL_MS
PAGE = 1000                    # bfs_provider.h BFS_LIST_PAGE_KEYS
REMOTE = ["s3", "r2", "gcs", "azure"]


def metrics(m):
    """{op: count} of bucketfs_requests_total in .metrics, every status."""
    with open(m.path(".metrics")) as f:
        text = f.read()
    out = {}
    for mt in re.finditer(r'^bucketfs_requests_total\{op="([^"]+)",'
                          r'status="[^"]+"\} (\d+)$', text, re.M):
        out[mt[1]] = out.get(mt[1], 0) + int(mt[2])
    return out


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after
            if after[k] != before.get(k, 0)}


def write(path, data, sync=False):
    with open(path, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fresh(backend, mount, prov, planted):
    """Bucket b1 of prov holding the objects planted (rel -> bytes) by
    another client, mounted afresh (nothing listed or looked up yet)."""
    b = backend(prov)
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda kv: b.put(*kv), planted.items()))
    assert set(codes) <= {200, 201}, codes
    return b, mount([b])


@pytest.mark.parametrize("prov", REMOTE)
def test_creates_in_unlisted_folder_cost_one_put(prov, backend, mount):
    """200 creates (half with fsync) into an existing folder of a fresh
    mount: one PUT per file and a few requests in all (the probes of the
    folder and of its parent, the folder's marker), where each file used
    to cost HEAD name, HEAD name/, LIST name/ and its PUT."""
    b, m = fresh(backend, mount, prov, {"chat/g1/old%d.txt" % i: b"old"
                                        for i in range(5)})
    d = m.path("b1", "chat", "g1")
    before = metrics(m)
    for i in range(200):
        write(os.path.join(d, "f%03d.bin" % i), bytes([i]) * 4096,
              sync=i % 2 == 0)
    cost = delta(before, metrics(m))
    assert cost.get("put", 0) == 200, cost
    # per folder level (chat, chat/g1): its marker's HEAD (azure: the
    # folder blob's and the marker's); per folder: one probe
    others = {k: v for k, v in cost.items() if k != "put"}
    assert sum(others.values()) <= 8, cost
    assert others.get("list", 0) <= 3, cost
    # right bytes, right names; the planted files are still found
    names = sorted(os.listdir(d))
    assert names == sorted(["old%d.txt" % i for i in range(5)] +
                           ["f%03d.bin" % i for i in range(200)])
    assert read(os.path.join(d, "f007.bin")) == bytes([7]) * 4096
    assert b.read("chat/g1/f199.bin") == bytes([199]) * 4096
    assert read(os.path.join(d, "old3.txt")) == b"old"


@pytest.mark.parametrize("prov", ["s3", "azure"])
def test_exclusive_creates_cost_head_and_put(prov, backend, mount):
    """O_CREAT|O_EXCL (how cp, rsync and install create) in a folder of a
    fresh mount: the folder's record answers the name and one HEAD of
    the exact key makes sure no other client stored it since, so a file
    costs a HEAD and its PUT (it was HEAD, HEAD, LIST and PUT); a name
    that exists is still EEXIST, also one this mount has not looked up."""
    b, m = fresh(backend, mount, prov, {"g/old.txt": b"old",
                                        "g/sub/x": b"x"})
    d = m.path("b1", "g")
    before = metrics(m)
    for i in range(50):
        fd = os.open(os.path.join(d, "e%02d" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"e%d" % i)
        os.close(fd)
    cost = delta(before, metrics(m))
    assert cost.get("put", 0) == 50, cost
    assert cost.get("head", 0) <= 50 + 4, cost
    others = {k: v for k, v in cost.items() if k not in ("put", "head")}
    assert sum(others.values()) <= 3, cost
    for name in ("old.txt", "sub", "e07"):
        expect_errno(errno.EEXIST, os.open, os.path.join(d, name),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    assert b.read("g/e49") == b"e49"
    assert b.read("g/old.txt") == b"old"


@pytest.mark.parametrize("prov", ["s3", "azure"])
def test_exclusive_create_sees_another_clients_new_object(prov, backend,
                                                          mount):
    """A name the folder's record holds as absent, stored meanwhile by
    another client: an exclusive create fails with EEXIST and leaves the
    other client's object as it was (a plain lookup may still say absent
    until the TTL ends; O_EXCL must not overwrite)."""
    b, m = fresh(backend, mount, prov, {"g/a.txt": b"a"})
    d = m.path("b1", "g")
    assert os.listdir(d) == ["a.txt"]
    assert b.put("g/late.txt", b"theirs") in (200, 201)
    expect_errno(errno.EEXIST, os.open, os.path.join(d, "late.txt"),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    assert b.read("g/late.txt") == b"theirs"
    assert read(os.path.join(d, "late.txt")) == b"theirs"


def test_creates_in_unlisted_folder_local(backend, mount):
    """local: lookups are system calls, no probe; the same loop gives the
    same files."""
    b, m = fresh(backend, mount, "local", {"g/old.txt": b"old"})
    d = m.path("b1", "g")
    for i in range(50):
        write(os.path.join(d, "f%02d" % i), b"x%d" % i)
    assert sorted(os.listdir(d)) == sorted(["old.txt"] +
                                           ["f%02d" % i for i in range(50)])
    assert b.read("g/f49") == b"x49"
    assert os.stat(os.path.join(d, "f07")).st_size == 2     # b"x7"
    assert metrics(m).get("list", 0) == 0


@pytest.mark.parametrize("prov", ["s3", "azure"])
def test_known_absent_name_created_by_another_client(prov, backend,
                                                     mount):
    """The probe's record answers lookups of absent names with no request
    and follows this mount's own changes at once; a name another client
    creates afterwards is found once the TTL has passed."""
    b, m = fresh(backend, mount, prov, {"g/a.txt": b"a"})
    d = m.path("b1", "g")
    expect_errno(errno.ENOENT, os.stat, os.path.join(d, "late.txt"))
    before = metrics(m)
    for i in range(20):
        expect_errno(errno.ENOENT, os.stat, os.path.join(d, "no%d" % i))
    assert delta(before, metrics(m)) == {}, "absent names cost requests"
    # this mount's own create and unlink are seen at once
    write(os.path.join(d, "mine.txt"), b"mine")
    assert os.stat(os.path.join(d, "mine.txt")).st_size == 4
    os.unlink(os.path.join(d, "a.txt"))
    expect_errno(errno.ENOENT, os.stat, os.path.join(d, "a.txt"))
    # another client creates a name the record holds as absent
    assert b.put("g/late.txt", b"from elsewhere") in (200, 201)
    assert wait_for(lambda: os.path.exists(os.path.join(d, "late.txt")),
                    TTL + 60), "another client's file never appeared"
    assert sorted(os.listdir(d)) == ["late.txt", "mine.txt"]
    # (not a listing last: libfuse may lose a RELEASEDIR racing the
    # unmount, libfuse issue #647, which LeakSanitizer reports)
    assert read(os.path.join(d, "late.txt")) == b"from elsewhere"


def test_cut_page_knows_only_names_before_its_end(backend, mount):
    """A folder of more than one page: names that sort before the page's
    last are answered from it, names after it are asked for (an object
    there is found, a create there works)."""
    planted = {"big/f%04d" % i: b"%d" % i for i in range(PAGE + 100)}
    b, m = fresh(backend, mount, "s3", planted)
    d = m.path("b1", "big")
    expect_errno(errno.ENOENT, os.stat, os.path.join(d, "f0001x"))
    before = metrics(m)
    expect_errno(errno.ENOENT, os.stat, os.path.join(d, "f0500x"))
    assert delta(before, metrics(m)) == {}, "a name inside the page"
    # f1050 is beyond the page's last name (f0999): asked for, found
    assert read(os.path.join(d, "f1050")) == b"1050"
    expect_errno(errno.ENOENT, os.stat, os.path.join(d, "g-none"))
    write(os.path.join(d, "zz-new"), b"new")
    assert len(os.listdir(d)) == PAGE + 101
    assert b.read("big/zz-new") == b"new"
    assert os.stat(os.path.join(d, "zz-new")).st_size == 3


@pytest.mark.parametrize("prov", ["s3", "azure"])
def test_probe_lookups_give_right_attributes(prov, backend, mount):
    """Lookups answered through a probe: a file another client wrote, a
    folder with a marker, an implicit folder, a file written through an
    earlier mount (index), all with their attributes."""
    b, m = fresh(backend, mount, prov, {"p/theirs.txt": b"theirs",
                                        "p/impl/x": b"x"})
    os.mkdir(m.path("b1", "p", "made"))
    os.chmod(m.path("b1", "p", "made"), 0o700)
    write(m.path("b1", "p", "mine.txt"), b"mine!")
    os.chmod(m.path("b1", "p", "mine.txt"), 0o640)
    m.unmount()
    m.start()
    p = m.path("b1", "p")
    assert os.stat(os.path.join(p, "theirs.txt")).st_size == 6
    st = os.stat(os.path.join(p, "mine.txt"))
    assert st.st_size == 5 and st.st_mode & 0o777 == 0o640
    st = os.stat(os.path.join(p, "made"))
    assert os.path.isdir(os.path.join(p, "made"))
    assert st.st_mode & 0o777 == 0o700
    assert os.path.isdir(os.path.join(p, "impl"))
    assert read(os.path.join(p, "impl", "x")) == b"x"
    assert sorted(os.listdir(p)) == ["impl", "made", "mine.txt",
                                     "theirs.txt"]
    expect_errno(errno.ENOENT, os.stat, os.path.join(p, "none"))
