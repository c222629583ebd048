"""test_views.py - the context views @general/, @chat/ID/, @form/ID/.

INTERFACE.md "Context views: the filesystem routes": applications write
plain paths and the filesystem routes them (assignment -> role default ->
general default); a view path and its bucket path are one object; files
stored before a re-routing keep working at the same view path; bucketctl
contexts / context move.  Every test runs over local, s3 and r2 unless it
is about requests on the wire (s3, r2) or about many files (local).
"""

import errno
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from helpers import expect_errno, wait_for
import conftest


def write(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write_ctl(path, text):
    with open(path, "w") as f:
        f.write(text)


_remotes = []      # remote buckets this module's tests made


@pytest.fixture(autouse=True)
def _drop_remote_buckets():
    """Deletes the remote buckets a test made, after its mounts are gone
    (autouse: set up first, torn down last), so the shared RGW's
    per-user bucket limit is not used up."""
    yield
    while _remotes:
        b = _remotes.pop()
        try:
            b.client.delete_bucket(b.remote, force=True)
        except Exception:
            pass


def two(backend, mount, prov, alpha_extra=None, beta_extra=None, **kw):
    """Buckets alpha (every default unless told otherwise) and beta of one
    provider, mounted."""
    a = backend(prov, "alpha", **(alpha_extra if alpha_extra is not None
                                  else {"default": "general, chat, forms"}))
    b = backend(prov, "beta", **(beta_extra or {}))
    _remotes.extend(x for x in (a, b) if x.remote)
    return mount([a, b], **kw), a, b


def ctx_rows(m, ctx):
    """(bucket, key) of `bucketctl files --context ctx --json`."""
    out = json.loads(m.ctl("files", "--context", ctx, "--json").stdout)
    return sorted((r["bucket"], r["key"]) for r in out)


def metrics(m):
    """{(op, status): count} of bucketfs_requests_total in .metrics."""
    with open(m.path(".metrics")) as f:
        text = f.read()
    out = {}
    for mt in re.finditer(r'^bucketfs_requests_total\{op="([^"]+)",'
                          r'status="([^"]+)"\} (\d+)$', text, re.M):
        out[(mt[1], mt[2])] = int(mt[3])
    return out


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after
            if after[k] != before.get(k, 0)}


# ------------------------------------------------------------- basics

@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_view_write_read_list_without_mkdir(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    root = set(os.listdir(m.mnt))
    assert {"@general", "@chat", "@form"} <= root, root
    # any valid ID works at once: no mkdir, no assignment
    write(m.path("@chat", "team42", "photo.jpg"), b"jpeg!")
    write(m.path("@form", "f-1", "answer.pdf"), b"pdf!")
    write(m.path("@general", "notes.txt"), b"general")
    assert a.read("chat/team42/photo.jpg") == b"jpeg!"
    assert a.read("form/f-1/answer.pdf") == b"pdf!"
    assert a.read("notes.txt") == b"general"
    assert b.keys() == []
    assert read(m.path("@chat", "team42", "photo.jpg")) == b"jpeg!"
    assert os.listdir(m.path("@chat", "team42")) == ["photo.jpg"]
    assert "team42" in os.listdir(m.path("@chat"))
    assert "f-1" in os.listdir(m.path("@form"))
    assert "notes.txt" in os.listdir(m.path("@general"))
    st = os.stat(m.path("@chat", "team42", "photo.jpg"))
    assert st.st_size == 5
    # a context folder exists for any valid ID, even without files
    assert os.path.isdir(m.path("@chat", "never-used"))
    assert os.listdir(m.path("@chat", "never-used")) == []
    # subfolders inside a context
    os.mkdir(m.path("@chat", "team42", "sub"))
    write(m.path("@chat", "team42", "sub", "deep.txt"), b"deep")
    assert a.read("chat/team42/sub/deep.txt") == b"deep"
    assert sorted(os.listdir(m.path("@chat", "team42"))) == ["photo.jpg", "sub"]
    # the index rows: bucket_id, key chat/ID/...
    idx = m.wait_index(lambda i: ("alpha", "chat/team42/sub/deep.txt") in i)
    for k in ("chat/team42/photo.jpg", "chat/team42/sub/deep.txt",
              "form/f-1/answer.pdf", "notes.txt"):
        assert ("alpha", k) in idx, k
    assert ctx_rows(m, "chat/team42") == [
        ("alpha", "chat/team42/photo.jpg"), ("alpha", "chat/team42/sub/deep.txt")]


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_view_folders_answer_xattrs(prov, backend, mount):
    """Every folder under a view answers the user.bucketfs.* attributes
    (INTERFACE.md "Extended attributes"), also a context folder that has
    no marker object and a folder that only an old bucket holds."""
    m, a, b = two(backend, mount, prov)
    fresh = m.path("@chat", "fresh42")
    assert os.getxattr(fresh, "user.bucketfs.bucket") == b"alpha"
    assert os.getxattr(fresh, "user.bucketfs.key").rstrip(b"/") == \
        b"chat/fresh42"
    # re-route: a subfolder only the old bucket holds is still a folder
    os.mkdir(m.path("@chat", "moved", "sub"))
    write(m.path("@chat", "moved", "sub", "f.txt"), b"old")
    write_ctl(m.path(".assignments"), "chat/moved = beta\n")
    sub = m.path("@chat", "moved", "sub")
    assert os.path.isdir(sub)
    assert os.getxattr(sub, "user.bucketfs.bucket") in (b"alpha", b"beta")
    assert os.getxattr(os.path.join(sub, "f.txt"),
                       "user.bucketfs.bucket") == b"alpha"


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_view_unlink_rmdir_rename(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    v = m.path("@chat", "g1")
    write(os.path.join(v, "x.txt"), b"x")
    os.rename(os.path.join(v, "x.txt"), os.path.join(v, "y.txt"))
    assert a.read("chat/g1/x.txt") is None
    assert a.read("chat/g1/y.txt") == b"x"
    assert os.listdir(v) == ["y.txt"]
    os.mkdir(os.path.join(v, "d"))
    os.rename(os.path.join(v, "y.txt"), os.path.join(v, "d", "y.txt"))
    assert a.read("chat/g1/d/y.txt") == b"x"
    # a folder rename inside the view
    os.rename(os.path.join(v, "d"), os.path.join(v, "e"))
    assert a.read("chat/g1/e/y.txt") == b"x"
    os.unlink(os.path.join(v, "e", "y.txt"))
    assert a.read("chat/g1/e/y.txt") is None
    os.rmdir(os.path.join(v, "e"))
    assert os.listdir(v) == []
    # rmdir of an empty context: its marker only, never the assignment
    write_ctl(m.path(".assignments"), "chat/g1 = alpha\n")
    os.makedirs(m.path("alpha", "chat", "g1"), exist_ok=True)
    assert a.exists("chat/g1/")
    expect_errno(errno.EEXIST, os.mkdir, v)
    os.rmdir(v)
    assert not a.exists("chat/g1/")
    assert "chat/g1 = alpha" in open(m.path(".assignments")).read()
    assert os.path.isdir(v)
    m.wait_index(lambda i: not any(k[1].startswith("chat/g1/") for k in i))
    assert ctx_rows(m, "chat/g1") == []


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_alias_coherence(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    view = m.path("@chat", "c7", "doc.txt")
    bucket = m.path("alpha", "chat", "c7", "doc.txt")
    write(view, b"one")
    assert read(bucket) == b"one"
    write(bucket, b"second version")
    assert read(view) == b"second version"
    assert os.stat(view).st_size == len(b"second version")
    # an open file: written through one path, seen through the other
    # before close (one open-file entry for the bucket and key)
    fd = os.open(view, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"open and staged")
        assert read(bucket) == b"open and staged"
    finally:
        os.close(fd)
    assert a.read("chat/c7/doc.txt") == b"open and staged"
    # rename through the bucket path, seen through the view
    os.rename(bucket, m.path("alpha", "chat", "c7", "moved.txt"))
    assert wait_for(lambda: not os.path.exists(view), 3)
    assert read(m.path("@chat", "c7", "moved.txt")) == b"open and staged"
    # @general is the general default bucket's root
    write(m.path("@general", "g.txt"), b"g")
    assert read(m.path("alpha", "g.txt")) == b"g"
    assert "g.txt" in os.listdir(m.path("@general"))


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_assignment_routes_and_old_files_stay(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    v = m.path("@chat", "grp")
    write(os.path.join(v, "old.txt"), b"old")
    write(os.path.join(v, "keep.txt"), b"keep")
    assert a.read("chat/grp/old.txt") == b"old"
    # re-route by control file: new files go to beta at once
    write_ctl(m.path(".assignments"), "chat/grp = beta\n")
    write(os.path.join(v, "new.txt"), b"new")
    assert b.read("chat/grp/new.txt") == b"new"
    assert a.read("chat/grp/new.txt") is None
    # old files: listed, read, at the same path, physically in alpha
    assert sorted(os.listdir(v)) == ["keep.txt", "new.txt", "old.txt"]
    assert read(os.path.join(v, "old.txt")) == b"old"
    assert os.stat(os.path.join(v, "old.txt")).st_size == 3
    # overwrite in place: stays in alpha
    write(os.path.join(v, "old.txt"), b"old, rewritten")
    assert a.read("chat/grp/old.txt") == b"old, rewritten"
    assert b.read("chat/grp/old.txt") is None
    assert read(os.path.join(v, "old.txt")) == b"old, rewritten"
    # rename an old file inside the view: it moves to the current bucket
    os.rename(os.path.join(v, "old.txt"), os.path.join(v, "renamed.txt"))
    assert a.read("chat/grp/old.txt") is None
    assert b.read("chat/grp/renamed.txt") == b"old, rewritten"
    assert sorted(os.listdir(v)) == ["keep.txt", "new.txt", "renamed.txt"]
    # delete an old file through the view
    os.unlink(os.path.join(v, "keep.txt"))
    assert a.read("chat/grp/keep.txt") is None
    assert sorted(os.listdir(v)) == ["new.txt", "renamed.txt"]
    idx = m.wait_index(lambda i: ("beta", "chat/grp/renamed.txt") in i)
    assert ("beta", "chat/grp/new.txt") in idx
    assert ("alpha", "chat/grp/keep.txt") not in idx
    assert ctx_rows(m, "chat/grp") == [("beta", "chat/grp/new.txt"),
                                       ("beta", "chat/grp/renamed.txt")]
    # re-route by bucketctl (and a default change) without a restart
    write(m.path("@form", "f9", "a.txt"), b"a")
    m.ctl("defaults", "set", "forms", "beta")
    probe = routed_to(m, "@form/f9", b, "form/f9/")
    assert probe
    assert a.read("form/f9/a.txt") == b"a"
    assert sorted(os.listdir(m.path("@form", "f9"))) == ["a.txt", probe]
    assert read(m.path("@form", "f9", "a.txt")) == b"a"
    m.ctl("assign", "form", "f9", "alpha")
    probe2 = routed_to(m, "@form/f9", a, "form/f9/", tag="again")
    assert probe2
    # probe in beta, a.txt and probe2 in alpha: all listed, all readable
    assert sorted(os.listdir(m.path("@form", "f9"))) == \
        sorted(["a.txt", probe, probe2])
    assert read(m.path("@form", "f9", probe)) == probe.encode()


def routed_to(m, view, backend, key_prefix, tag="probe", timeout=5):
    """Writes new files into view until one lands in backend (the daemon
    sees a bucketctl change within one second); returns its name."""
    n = [0]

    def attempt():
        n[0] += 1
        name = "%s%d" % (tag, n[0])
        write(m.path(view, name), name.encode())
        return name if backend.read(key_prefix + name) == name.encode() \
            else None
    name = wait_for(attempt, timeout)
    # earlier probes that landed elsewhere are not part of the test
    for i in range(1, n[0]):
        os.unlink(m.path(view, "%s%d" % (tag, i)))
    return name


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_rename_between_views_and_buckets(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    write_ctl(m.path(".assignments"), "chat/bb = beta\n")
    src = m.path("@chat", "aa", "f.txt")
    write(src, b"payload")
    # between contexts routed to different buckets: copy, verify, delete
    os.rename(src, m.path("@chat", "bb", "g.txt"))
    assert a.read("chat/aa/f.txt") is None
    assert b.read("chat/bb/g.txt") == b"payload"
    # from a view to a bucket folder
    os.mkdir(m.path("alpha", "plain"))
    os.rename(m.path("@chat", "bb", "g.txt"), m.path("alpha", "plain", "h.txt"))
    assert b.read("chat/bb/g.txt") is None
    assert a.read("plain/h.txt") == b"payload"
    # from a bucket folder into a view
    os.rename(m.path("alpha", "plain", "h.txt"), m.path("@form", "ff", "i.txt"))
    assert a.read("form/ff/i.txt") == b"payload"
    assert read(m.path("@form", "ff", "i.txt")) == b"payload"
    idx = m.wait_index(lambda i: ("alpha", "form/ff/i.txt") in i)
    assert ("alpha", "plain/h.txt") not in idx
    assert ("beta", "chat/bb/g.txt") not in idx


# ------------------------------------------------------------- refusals

@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_bad_ids_einval(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    for bad in ("bad!id", "a.b", "x" * 129, "sp ace", "\u00e9t\u00e9"):
        p = m.path("@chat", bad)
        expect_errno(errno.EINVAL, os.stat, p)
        expect_errno(errno.EINVAL, os.mkdir, p)
        expect_errno(errno.EINVAL, write, os.path.join(p, "f"), b"x")
        expect_errno(errno.EINVAL, write, m.path("@form", bad, "f"), b"x")
    assert os.path.isdir(m.path("@chat", "x" * 128))
    assert a.keys() == [] and b.keys() == []
    # other names starting with @ are reserved
    expect_errno(errno.ENOENT, os.stat, m.path("@other"))
    expect_errno((errno.EINVAL, errno.EPERM), os.mkdir, m.path("@other"))


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_no_route_enoent(prov, backend, mount):
    m, a, b = two(backend, mount, prov, alpha_extra={})
    root = os.listdir(m.mnt)
    assert not any(n.startswith("@") for n in root), root
    for p in ("@general", "@chat", "@form", "@chat/x", "@general/f"):
        expect_errno(errno.ENOENT, os.stat, m.path(p))
    expect_errno(errno.ENOENT, write, m.path("@chat", "x", "f"), b"x")
    # an assignment alone makes its context (and @chat) exist
    write_ctl(m.path(".assignments"), "chat/only = beta\n")
    assert "@chat" in os.listdir(m.mnt)
    assert "@form" not in os.listdir(m.mnt)
    # (the kernel may keep the earlier ENOENT for its negative_timeout)
    assert wait_for(lambda: os.path.isdir(m.path("@chat", "only")), 2)
    assert os.listdir(m.path("@chat")) == ["only"]
    write(m.path("@chat", "only", "f"), b"f")
    assert b.read("chat/only/f") == b"f"
    expect_errno(errno.ENOENT, os.stat, m.path("@chat", "other"))
    assert a.keys() == []
    log = m.stderr()
    assert "no bucket serves it" in log, log[-2000:]
    # said once per routing configuration, not once per lookup
    said = [line for line in log.splitlines()
            if "@general" in line and "no bucket serves it" in line]
    assert len(said) == 1, said


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_read_only_view_erofs(prov, backend, mount):
    m, a, b = two(backend, mount, prov,
                  alpha_extra={"default": "general, chat, forms",
                               "read_only": "true"})
    a.put("chat/r/seen.txt", b"seen")
    assert read(m.path("@chat", "r", "seen.txt")) == b"seen"
    expect_errno(errno.EROFS, write, m.path("@chat", "r", "new.txt"), b"x")
    expect_errno(errno.EROFS, write, m.path("@chat", "r", "seen.txt"), b"x")
    expect_errno(errno.EROFS, os.unlink, m.path("@chat", "r", "seen.txt"))
    expect_errno(errno.EROFS, os.mkdir, m.path("@general", "d"))
    assert a.read("chat/r/seen.txt") == b"seen"


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_single_bucket_mode_has_no_views(prov, backend, mount):
    a = backend(prov, "alpha", default="general, chat, forms")
    _remotes.extend([a] if a.remote else [])
    m = mount([a], single="alpha")
    assert os.listdir(m.mnt) == []
    expect_errno(errno.ENOENT, os.stat, m.path("@chat"))
    expect_errno(errno.ENOENT, os.stat, m.path("@general"))


# ------------------------------------------------------------- requests

@pytest.mark.parametrize("prov", ["s3", "r2"])
def test_view_write_costs_what_bucket_write_costs(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    # one file in each folder first, so both folders exist the same way
    write(m.path("@chat", "v1", "first"), b"1")
    os.makedirs(m.path("alpha", "chat", "v2"))
    write(m.path("alpha", "chat", "v2", "first"), b"1")
    costs = []
    for p in (m.path("@chat", "v1", "second.bin"),
              m.path("alpha", "chat", "v2", "second.bin")):
        os.listdir(os.path.dirname(p))    # both folders listed alike
        before = metrics(m)
        write(p, b"z" * 1000)
        os.stat(p)
        costs.append(delta(before, metrics(m)))
    assert costs[0] == costs[1], costs
    assert any(k[0] == "put" for k in costs[0]), costs


# ------------------------------------------------------------- bucketctl

def contexts(m):
    return {c["context"]: c for c in
            json.loads(m.ctl("contexts", "--json").stdout)}


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_contexts_and_context_move(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    write(m.path("@chat", "mv", "a.txt"), b"aaa")
    os.mkdir(m.path("@chat", "mv", "sub"))
    write(m.path("@chat", "mv", "sub", "b.txt"), b"bb")
    write(m.path("@chat", "stay", "x"), b"x")
    write_ctl(m.path(".assignments"), "chat/mv = beta\nform/empty = beta\n")
    write(m.path("@chat", "mv", "c.txt"), b"c")
    assert b.read("chat/mv/c.txt") == b"c"
    m.wait_index(lambda i: ("beta", "chat/mv/c.txt") in i)
    cx = contexts(m)
    assert cx["chat/mv"]["bucket"] == "beta"
    assert (cx["chat/mv"]["files"], cx["chat/mv"]["bytes"]) == (3, 6)
    by = {x["bucket"]: (x["files"], x["bytes"], x["routed"])
          for x in cx["chat/mv"]["by_bucket"]}
    assert by == {"alpha": (2, 5, False), "beta": (1, 1, True)}
    assert cx["chat/stay"]["bucket"] == "alpha"
    assert cx["form/empty"]["files"] == 0 and cx["form/empty"]["bucket"] == "beta"
    # a folder only the old bucket holds is still a folder of the view
    sub = m.path("@chat", "mv", "sub")
    assert os.path.isdir(sub)
    assert os.listdir(sub) == ["b.txt"]
    assert read(os.path.join(sub, "b.txt")) == b"bb"
    expect_errno(errno.ENOTEMPTY, os.rmdir, sub)
    text = m.ctl("contexts").stdout
    assert re.search(r"^chat/mv\s+beta\s+3\s+6\s+alpha=2/5,beta=1/1$", text,
                     re.M), text

    # dry run: says what would move, changes nothing
    dry = json.loads(m.ctl("context", "move", "chat", "mv", "--dry-run",
                           "--json").stdout)
    assert dry["dry_run"] is True and dry["moved"] == 2
    assert sorted(f["key"] for f in dry["files"]) == ["chat/mv/a.txt",
                                                      "chat/mv/sub/b.txt"]
    assert a.read("chat/mv/a.txt") == b"aaa"
    assert b.read("chat/mv/a.txt") is None

    out = json.loads(m.ctl("context", "move", "chat", "mv", "--json").stdout)
    assert (out["moved"], out["bytes"], out["bucket"]) == (2, 5, "beta")
    # one S3 service and account: copied server-side; local: streamed
    assert out["server_side"] == (0 if prov == "local" else 2), out
    assert a.read("chat/mv/a.txt") is None and a.read("chat/mv/sub/b.txt") is None
    assert b.read("chat/mv/a.txt") == b"aaa"
    assert b.read("chat/mv/sub/b.txt") == b"bb"
    assert ctx_rows(m, "chat/mv") == [("beta", "chat/mv/a.txt"),
                                      ("beta", "chat/mv/c.txt"),
                                      ("beta", "chat/mv/sub/b.txt")]
    # the mount serves the same paths
    v = m.path("@chat", "mv")
    assert wait_for(lambda: sorted(os.listdir(v)) == ["a.txt", "c.txt", "sub"],
                    3), os.listdir(v)
    assert read(os.path.join(v, "a.txt")) == b"aaa"
    assert read(os.path.join(v, "sub", "b.txt")) == b"bb"
    # again: nothing left to move
    again = json.loads(m.ctl("context", "move", "chat", "mv", "--json").stdout)
    assert again["moved"] == 0
    # --to assigns first
    m.ctl("context", "move", "chat", "stay", "--to", "beta")
    assert "chat/stay = beta" in m.ctl("assignments").stdout
    assert b.read("chat/stay/x") == b"x" and a.read("chat/stay/x") is None
    assert contexts(m)["chat/stay"]["by_bucket"][0]["bucket"] == "beta"
    # usage errors
    assert m.ctl("context", "move", "chat", "bad!id", check=False).returncode == 2
    assert m.ctl("context", "move", "group", "x", check=False).returncode == 2
    assert m.ctl("context", "move", "chat", "x", "--to", "nosuch",
                 check=False).returncode == 1


@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_context_move_interrupted_then_run_again(prov, backend, mount):
    m, a, b = two(backend, mount, prov)
    n = 120
    body = {("f%03d" % i): (b"%03d" % i) * 200 for i in range(n)}
    for name, data in body.items():
        a.put("chat/big/" + name, data)
    m.ctl("import", "alpha")
    m.ctl("assign", "chat", "big", "beta")
    v = m.path("@chat", "big")
    assert wait_for(lambda: len(os.listdir(v)) == n, 3)

    def in_beta():
        return sum(1 for k in m.index() if k[0] == "beta")

    p = subprocess.Popen([conftest.BUCKETCTL, "-c", m.cfg, "context", "move",
                          "chat", "big"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=conftest.daemon_env())
    try:
        wait_for(lambda: in_beta() >= 5 or p.poll() is not None, 60, step=0.02)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    halfway = in_beta()
    # killed mid-run: while copying, or in the grace period before the
    # old objects go (then every row moved and every old object is left)
    assert p.returncode == -signal.SIGKILL, p.returncode
    assert 0 < halfway <= n, halfway
    # the mount reads every file at its path, whichever bucket holds it
    for name, data in body.items():
        assert read(os.path.join(v, name)) == data, name
    # run again while the mount reads the context: no read fails
    stop = threading.Event()
    failures = []

    def reader():
        while not stop.is_set():
            for name, data in body.items():
                try:
                    if read(os.path.join(v, name)) != data:
                        failures.append((name, "wrong bytes"))
                except OSError as e:
                    failures.append((name, e))
    t = threading.Thread(target=reader)
    t.start()
    try:
        out = json.loads(m.ctl("context", "move", "chat", "big",
                               "--json").stdout)
    finally:
        stop.set()
        t.join()
    assert not failures, failures[:5]
    assert out["moved"] + halfway >= n, (out, halfway)
    idx = m.index()
    assert sorted(k[1] for k in idx if k[0] == "beta") == \
        ["chat/big/" + x for x in sorted(body)]
    assert not any(k[0] == "alpha" for k in idx)
    for name, data in body.items():
        assert b.read("chat/big/" + name) == data
    # nothing doubled: alpha holds none of them any more
    assert not [k for k in a.keys() if k.startswith("chat/big/f")]
    assert sorted(os.listdir(v)) == sorted(body)


def test_context_listing_10000_files_in_two_buckets(backend, mount):
    m, a, b = two(backend, mount, "local")
    names = ["f%05d.txt" % i for i in range(10000)]
    for i, name in enumerate(names):
        (a if i % 2 else b).put("chat/big/" + name, name.encode())
    b.put("chat/big/f00001.txt", b"beta wins")     # in both: beta is shown
    m.ctl("import", "alpha")
    m.ctl("import", "beta")
    write_ctl(m.path(".assignments"), "chat/big = beta\n")  # applied at once
    v = m.path("@chat", "big")
    assert wait_for(lambda: len(os.listdir(v)) == 10000, 5)
    out = subprocess.run(["ls", "-l", "--time-style=+%s", v], check=True,
                         capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert sorted(r[-1] for r in rows) == names
    sizes = {r[-1]: int(r[4]) for r in rows}
    assert sizes["f00002.txt"] == 10 and sizes["f00003.txt"] == 10
    assert sizes["f00001.txt"] == len(b"beta wins")
    assert read(os.path.join(v, "f00001.txt")) == b"beta wins"
    assert read(os.path.join(v, "f09999.txt")) == b"f09999.txt"
    dry = json.loads(m.ctl("context", "move", "chat", "big", "--dry-run",
                           "--json").stdout)
    assert (dry["moved"], dry["kept"]) == (4999, 1)
    assert len(dry["files"]) == 5000
    kept = [f for f in dry["files"] if f["action"] == "kept"]
    assert [f["key"] for f in kept] == ["chat/big/f00001.txt"]


def test_sighup_default_change_reroutes(backend, mount):
    m, a, b = two(backend, mount, "local",
                  alpha_extra={"default": "general, chat, forms"})
    write(m.path("@chat", "s1", "old.txt"), b"old")
    with open(m.cfg) as f:
        text = f.read()
    # the chat default moves from alpha to beta in the config file
    text = text.replace("default = general, chat, forms", "default = general, forms")
    text = text.replace("[bucket beta]\n", "[bucket beta]\ndefault = chat\n")
    with open(m.cfg, "w") as f:
        f.write(text)
    m.proc.send_signal(signal.SIGHUP)
    name = routed_to(m, "@chat/s1", b, "chat/s1/", timeout=10)
    assert name
    assert a.read("chat/s1/old.txt") == b"old"
    assert read(m.path("@chat", "s1", "old.txt")) == b"old"
    assert sorted(os.listdir(m.path("@chat", "s1"))) == sorted(["old.txt", name])
    # @general still alpha
    write(m.path("@general", "g"), b"g")
    assert a.read("g") == b"g"


def test_context_move_progress_on_a_tty(backend, mount):
    import pty
    m, a, b = two(backend, mount, "local")
    for i in range(20):
        a.put("chat/tty/f%02d" % i, b"x" * 1000)
    m.ctl("import", "alpha")
    m.ctl("assign", "chat", "tty", "beta")
    master, slave = pty.openpty()
    try:
        p = subprocess.run([conftest.BUCKETCTL, "-c", m.cfg, "context", "move",
                            "chat", "tty"], stdout=subprocess.PIPE,
                           stderr=slave, env=conftest.daemon_env(), timeout=60)
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:          # EIO: the writer side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, seen
    assert b"\rmoved 20/20 files, 20000/20000 bytes" in seen, seen
    assert b"MB/s, ETA" in seen
    assert b"moved 20 files (20000 bytes) into beta" in p.stdout
