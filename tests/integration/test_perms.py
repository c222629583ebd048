"""test_perms.py - who may do what in a shared mount (INTERFACE.md "Who
may do what").

A module fixture makes a test user and two groups (useradd/groupadd with
unique names, removed after the module, also when a test failed); actions
run as that user (or as `nobody`) in a child process that drops to its
uid, gid and groups with os.setresgid/setgroups/os.setresuid before it
runs.  Mounts use allow_other and live under a private folder of /tmp
that every user may traverse (pytest's tmp_path is under a 0700 folder),
removed after each test.

Every refusal must give EACCES or EPERM and change nothing: the bytes,
the index row in SQLite, the stored object, the routing.  What the modes
allow must work: the owner of a 0750 bucket writes it, a member of
admin_group writes .assignments.  Objects without s3fs metadata (copied
into a local folder, planted with another S3 client) show the bucket's
owner, group, file_mode and dir_mode.  The daemon mounts with
default_permissions on a plain `bucketfs -o allow_other` start, when it
daemonizes, and through `mount -t fuse.bucketfs` / fstab.
"""

import errno
import grp
import json
import os
import pwd
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import uuid

import pytest

import conftest
import helpers
import test_service

# The child that performs one operation as another user: prints "OK" or
# the errno name of the OSError it got.
_OP = r"""
import errno, os, sys
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"""


class User:
    def __init__(self, name, groups=()):
        pw = pwd.getpwnam(name)
        self.name = name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.groups = list(groups)

    def _drop(self, groups):
        def pre():
            os.setgroups(groups)
            os.setresgid(self.gid, self.gid, self.gid)
            os.setresuid(self.uid, self.uid, self.uid)
        return pre

    def op(self, code, groups=None):
        """Runs python code as this user; "OK" or an errno name."""
        p = subprocess.run(
            [sys.executable, "-c", _OP, code], cwd="/",
            preexec_fn=self._drop(self.groups if groups is None else groups),
            capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C"})
        assert p.returncode == 0, p.stderr
        return p.stdout.strip().splitlines()[-1]

    def sh(self, script, groups=None):
        """Runs sh -c script as this user; CompletedProcess."""
        return subprocess.run(
            ["/bin/sh", "-c", script], cwd="/",
            preexec_fn=self._drop(self.groups if groups is None else groups),
            capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C"})


@pytest.fixture(scope="module")
def users():
    """The test user (own group, member of the admin group), the admin
    group's name and gid, and `nobody` (a stranger)."""
    tag = uuid.uuid4().hex[:8]
    uname, gname = "bfsu" + tag, "bfsg" + tag
    made_user = made_group = False
    try:
        subprocess.run(["groupadd", gname], check=True, capture_output=True)
        made_group = True
        subprocess.run(["useradd", "-M", "-U", "-d", "/nonexistent",
                        "-s", "/usr/sbin/nologin", "-G", gname, uname],
                       check=True, capture_output=True)
        made_user = True
        admin_gid = grp.getgrnam(gname).gr_gid

        class U:
            pass
        u = U()
        u.user = User(uname, [admin_gid])
        u.admin_group = gname
        u.admin_gid = admin_gid
        u.nobody = User("nobody", [])
        yield u
    finally:
        if made_user:
            subprocess.run(["userdel", uname], capture_output=True)
            # the user's own group, when userdel left it
            subprocess.run(["groupdel", uname], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", gname], capture_output=True)


@pytest.fixture
def shared(request):
    """Factory for mounts every user can reach: shared.bucket(provider,
    name, **keys) -> Backend, shared.mount(backends, **kw) -> Mount
    (allow_other unless options are given)."""
    conftest.need_binaries()
    base = tempfile.mkdtemp(prefix="bfs-perms-", dir="/tmp")
    os.chmod(base, 0o755)
    made = []
    remotes = []

    class S:
        pass
    s = S()
    s.dir = base

    def bucket(prov, name="b1", **kw):
        server = request.getfixturevalue("rgw") if prov != "local" else None
        b = conftest.Backend(prov, name, base, rgw=server, **kw)
        if b.remote:
            remotes.append(b)
        return b

    def mount(backends, options=("allow_other",), init=True, start=True,
              **kw):
        m = conftest.Mount(os.path.join(base, "m%d" % len(made)), backends,
                           options=options, **kw)
        made.append(m)
        if init:
            m.ctl("init")
        if start:
            m.start()
        return m

    s.bucket = bucket
    s.mount = mount
    try:
        yield s
    finally:
        problems = []
        for m in made:
            try:
                m.unmount()
            except conftest.MountError as e:
                problems.append(str(e))
        shutil.rmtree(base, ignore_errors=True)
        for b in remotes:        # the shared server has a bucket limit
            try:
                b.client.delete_bucket(b.remote)
            except Exception as e:      # noqa: BLE001 - best effort
                print("cannot delete bucket %s: %s" % (b.remote, e))
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


def mount_options(mnt):
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[1] == mnt:
                return parts[3].split(",")
    raise AssertionError("%s not in /proc/mounts" % mnt)


def db_rows(m, sql):
    con = sqlite3.connect(m.db, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def routing(m):
    """Defaults and assignments as the database holds them."""
    return (db_rows(m, "SELECT name, is_default, is_default_chat,"
                       " is_default_forms FROM storage_buckets ORDER BY name"),
            db_rows(m, "SELECT context_type, context_id, bucket_id"
                       " FROM assignments ORDER BY 1, 2"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.mark.parametrize("prov", ["local", "s3"])
def test_refusals_change_nothing(users, shared, prov):
    u = users.user
    b = shared.bucket(prov, default="general")
    m = shared.mount([b])
    assert "default_permissions" in mount_options(m.mnt)
    d = m.path("b1")
    old_umask = os.umask(0o022)
    try:
        fd = os.open(os.path.join(d, "secret.txt"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"root only\n")
        os.close(fd)
        with open(os.path.join(d, "pub.txt"), "w") as f:
            f.write("everyone reads\n")
        os.mkdir(os.path.join(d, "dir"))
        with open(os.path.join(d, "dir", "kept.txt"), "w") as f:
            f.write("kept\n")
    finally:
        os.umask(old_umask)
    assert owner_mode(os.path.join(d, "secret.txt")) == (0, 0, 0o600)
    assert owner_mode(d) == (os.geteuid(), os.getegid(), 0o755)
    keys0 = b.keys()
    index0 = m.index()
    routing0 = routing(m)
    ctl0 = {n: (read(m.path(n)) if n != ".metrics" else None,
                owner_mode(m.path(n)))
            for n in (".defaults", ".assignments", ".buckets", ".metrics")}
    p = lambda *x: os.path.join(d, *x)          # noqa: E731

    # reads the modes do not allow
    assert u.op("open(%r).read()" % p("secret.txt")) == "EACCES"
    r = u.sh("cat %s" % p("secret.txt"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert "root only" not in r.stdout
    assert u.op("open(%r).read()" % p("pub.txt")) == "OK"
    # the routing files: EACCES, nothing applied
    r = u.sh("echo 'general =' > %s" % m.path(".defaults"))
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
    assert u.op("open(%r, 'w').write('chat/g1 = b1\\n')"
                % m.path(".assignments")) == "EACCES"
    assert u.op("open(%r, 'w')" % m.path(".buckets")) == "EACCES"
    # creating, removing, renaming in root's 0755 folders
    assert u.op("open(%r, 'w').write('x')" % p("dir", "new.txt")) == "EACCES"
    assert u.op("open(%r, 'w').write('x')" % p("new.txt")) == "EACCES"
    assert u.op("os.mkdir(%r)" % p("newdir")) == "EACCES"
    assert u.op("os.unlink(%r)" % p("secret.txt")) == "EACCES"
    assert u.op("os.unlink(%r)" % p("dir", "kept.txt")) == "EACCES"
    assert u.op("os.rename(%r, %r)" % (p("pub.txt"), p("moved.txt"))) \
        == "EACCES"
    assert u.op("os.rmdir(%r)" % p("dir")) == "EACCES"
    assert u.op("open(%r, 'a').write('more')" % p("pub.txt")) == "EACCES"
    assert u.op("os.truncate(%r, 0)" % p("pub.txt")) == "EACCES"
    # attributes of what the user does not own
    assert u.op("os.chmod(%r, 0o666)" % p("pub.txt")) == "EPERM"
    assert u.op("os.chown(%r, %d, -1)" % (p("pub.txt"), u.uid)) == "EPERM"
    for n in (".defaults", ".assignments", ".buckets", ".metrics"):
        assert u.op("os.chmod(%r, 0o666)" % m.path(n)) == "EPERM"
        # ... and for root too: control files are not files to chmod
        helpers.expect_errno(errno.EPERM, os.chmod, m.path(n), 0o666)
        helpers.expect_errno(errno.EPERM, os.chown, m.path(n),
                                      u.uid, -1)
    # the bucket folder's owner and mode are configuration
    helpers.expect_errno(errno.EPERM, os.chmod, d, 0o777)
    helpers.expect_errno(errno.EPERM, os.chown, d, u.uid, -1)
    helpers.expect_errno(errno.EPERM, os.chmod, m.mnt, 0o777)

    # nothing changed: bytes, stored objects, index, routing, modes
    assert read(p("secret.txt")) == b"root only\n"
    assert read(p("pub.txt")) == b"everyone reads\n"
    assert b.read("secret.txt") == b"root only\n"
    assert b.read("dir/kept.txt") == b"kept\n"
    assert b.keys() == keys0
    assert m.index() == index0
    assert routing(m) == routing0
    for n, (content, om) in ctl0.items():
        if content is not None:
            assert read(m.path(n)) == content, n
        assert owner_mode(m.path(n)) == om, n
    assert owner_mode(p("pub.txt"))[2] == 0o644
    assert owner_mode(d) == (os.geteuid(), os.getegid(), 0o755)
    assert sorted(os.listdir(d)) == ["dir", "pub.txt", "secret.txt"]


@pytest.mark.parametrize("prov", ["local", "s3"])
def test_xattrs_follow_the_modes(users, shared, prov):
    """getxattr needs read and setxattr/removexattr write permission of
    the file (the kernel checks user.* attributes with default_permissions
    before the daemon sees them): a presigned url, the key and the user's
    own attributes of a file a user may not read stay hidden, and a file
    the user may not write keeps its attributes."""
    u = users.user
    b = shared.bucket(prov, default="general")
    m = shared.mount([b])
    d = m.path("b1")
    p = lambda *x: os.path.join(d, *x)          # noqa: E731
    fd = os.open(p("secret.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o600)
    os.write(fd, b"root only\n")
    os.close(fd)
    os.chmod(p("secret.txt"), 0o600)
    with open(p("pub.txt"), "w") as f:
        f.write("everyone reads\n")
    os.chmod(p("pub.txt"), 0o644)
    os.mkdir(p("private"), 0o700)
    os.chmod(p("private"), 0o700)
    with open(p("private", "in.txt"), "w") as f:
        f.write("x")
    for f in ("secret.txt", "pub.txt", "private/in.txt"):
        os.setxattr(p(f), "user.tag", b"root's")
    names = ["user.bucketfs.key", "user.bucketfs.bucket", "user.tag"]
    if prov != "local":
        names.append("user.bucketfs.url")
        assert os.getxattr(p("secret.txt"), "user.bucketfs.url")
    for f in ("secret.txt", "private/in.txt"):
        for n in names:
            assert u.op("os.getxattr(%r, %r)" % (p(f), n)) == "EACCES", \
                (f, n)
    for n in names:
        assert u.op("os.getxattr(%r, %r)" % (p("pub.txt"), n)) == "OK", n
    stored0 = {f: b.meta(f).get("xattr") if prov != "local" else None
               for f in ("secret.txt", "pub.txt")}
    for f in ("secret.txt", "pub.txt", "private/in.txt"):
        assert u.op("os.setxattr(%r, 'user.x', b'1')" % p(f)) == "EACCES", f
        assert u.op("os.removexattr(%r, 'user.tag')" % p(f)) == "EACCES", f
    # bucket folder, mount root, control files: nobody's to change
    for path in (d, m.mnt, m.path(".defaults")):
        assert u.op("os.setxattr(%r, 'user.x', b'1')" % path) in \
            ("EACCES", "EPERM"), path
    m.remount()
    for f in ("secret.txt", "pub.txt", "private/in.txt"):
        assert os.getxattr(p(f), "user.tag") == b"root's", f
        helpers.expect_errno(errno.ENODATA, os.getxattr, p(f), "user.x")
    if prov != "local":
        for f, v in stored0.items():
            assert b.meta(f).get("xattr") == v, f
    else:
        assert "user.x" not in os.listxattr(os.path.join(b.path,
                                                         "secret.txt"))


def test_listing_mode_hides_what_other_clients_protected(users, shared):
    """An object another client stored with s3fs metadata 0600 root:root,
    in a bucket with list_metadata = listing: a stranger who lists the
    folder first still may not read it, nor get its presigned url."""
    b = shared.bucket("s3", list_metadata="listing")
    m = shared.mount([b])
    meta = {"x-amz-meta-mode": str(0o100600), "x-amz-meta-uid": "0",
            "x-amz-meta-gid": "0"}
    b.client.put_ok(b.remote, "secret.txt", b"root only\n", headers=meta)
    b.client.put_ok(b.remote, "other.txt", b"root only\n", headers=meta)
    d = m.path("b1")
    p = os.path.join(d, "secret.txt")
    q = os.path.join(d, "other.txt")
    nobody = users.nobody
    assert nobody.op("os.listdir(%r); open(%r).read()" % (d, p)) == "EACCES"
    assert nobody.op("os.listdir(%r); os.getxattr(%r, 'user.bucketfs.url')"
                     % (d, q)) == "EACCES"
    assert owner_mode(p) == (0, 0, 0o600)


def test_control_files_owner_and_modes(users, shared):
    b = shared.bucket("local")
    m = shared.mount([b])
    me = (os.geteuid(), os.getegid())
    assert owner_mode(m.path(".defaults")) == me + (0o644,)
    assert owner_mode(m.path(".assignments")) == me + (0o644,)
    assert owner_mode(m.path(".buckets")) == me + (0o444,)
    assert owner_mode(m.path(".metrics")) == me + (0o444,)
    assert owner_mode(m.mnt) == me + (0o755,)
    m.unmount()
    m2 = shared.mount([shared.bucket("local", "b2")],
                      conf_extra="admin_group = %s\n" % users.admin_group)
    g = users.admin_gid
    assert owner_mode(m2.path(".defaults")) == (me[0], g, 0o664)
    assert owner_mode(m2.path(".assignments")) == (me[0], g, 0o664)
    assert owner_mode(m2.path(".buckets")) == me + (0o444,)
    assert owner_mode(m2.path(".metrics")) == me + (0o444,)
    # the same in a listing (readdir hands attributes to the kernel)
    out = subprocess.run(["ls", "-lna", m2.mnt], capture_output=True,
                         text=True, check=True).stdout
    line = [x for x in out.splitlines() if x.endswith(" .assignments")][0]
    assert line.startswith("-rw-rw-r--") and (" %d " % g) in line, line


def test_admin_group_follows_sighup(users, shared):
    b = shared.bucket("local", default="general")
    m = shared.mount([b])
    me = (os.geteuid(), os.getegid())
    assert owner_mode(m.path(".defaults")) == me + (0o644,)
    assert users.user.op("open(%r, 'w').write('chat = b1\\n')"
                         % m.path(".defaults")) == "EACCES"
    with open(m.cfg) as f:
        text = f.read()
    with open(m.cfg, "w") as f:
        f.write(text.replace("[bucketfs]\n", "[bucketfs]\nadmin_group = %s\n"
                             % users.admin_group, 1))
    os.kill(m.proc.pid, signal.SIGHUP)
    want = (me[0], users.admin_gid, 0o664)
    assert helpers.wait_for(
        lambda: owner_mode(m.path(".defaults")) == want, 15), \
        owner_mode(m.path(".defaults"))
    assert owner_mode(m.path(".assignments")) == want
    assert users.user.op("open(%r, 'w').write('chat = b1\\n')"
                         % m.path(".defaults")) == "OK"
    assert "chat = b1" in read(m.path(".defaults")).decode()


def test_single_bucket_mode_root_is_the_bucket_folder(users, shared):
    u = users.user
    b = shared.bucket("local", owner=u.name, mode="0700")
    m = shared.mount([b], single="b1", options=("allow_other",))
    assert owner_mode(m.mnt) == (u.uid, os.getegid(), 0o700)
    helpers.expect_errno(errno.EPERM, os.chmod, m.mnt, 0o755)
    assert u.op("open(%r, 'w').write('x')" % m.path("u.txt")) == "OK"
    assert b.read("u.txt") == b"x"
    assert users.nobody.op("os.listdir(%r)" % m.mnt) == "EACCES"


@pytest.mark.parametrize("prov", ["local", "s3"])
def test_owner_of_bucket_and_admin_group(users, shared, prov):
    u, nobody = users.user, users.nobody
    app = shared.bucket(prov, "app", owner=u.name, mode="0750")
    other = shared.bucket("local", "other", default="general")
    m = shared.mount([app, other],
                     conf_extra="admin_group = %s\n" % users.admin_group)
    d = m.path("app")
    assert owner_mode(d) == (u.uid, os.getegid(), 0o750)

    # the owner writes its bucket, files and folders get its uid
    assert u.op("os.umask(0o022); open(%r, 'w').write('mine\\n')"
                % os.path.join(d, "hello.txt")) == "OK"
    assert u.op("os.mkdir(%r); open(%r, 'w').write('deep\\n')"
                % (os.path.join(d, "sub"),
                   os.path.join(d, "sub", "x.txt"))) == "OK"
    assert u.op("assert open(%r).read() == 'mine\\n'"
                % os.path.join(d, "hello.txt")) == "OK"
    assert app.read("hello.txt") == b"mine\n"
    assert app.read("sub/x.txt") == b"deep\n"
    if prov != "local":
        meta = app.meta("hello.txt")
        assert meta["uid"] == str(u.uid) and meta["gid"] == str(u.gid)
    row = m.index()[("app", "hello.txt")]
    assert row["uid"] == u.uid and row["gid"] == u.gid
    assert owner_mode(os.path.join(d, "hello.txt")) == (u.uid, u.gid, 0o644)
    assert u.op("os.unlink(%r)" % os.path.join(d, "sub", "x.txt")) == "OK"
    assert not app.exists("sub/x.txt")

    # a stranger gets nothing of a 0750 bucket
    assert nobody.op("os.listdir(%r)" % d) == "EACCES"
    assert nobody.op("open(%r).read()" % os.path.join(d, "hello.txt")) \
        == "EACCES"
    assert nobody.op("open(%r, 'w')" % os.path.join(d, "n.txt")) == "EACCES"
    assert not app.exists("n.txt")

    # admin_group routes; nobody else does
    routing0 = routing(m)
    assert nobody.op("open(%r, 'w').write('chat/g1 = app\\n')"
                     % m.path(".assignments")) == "EACCES"
    assert u.op("open(%r, 'w').write('chat/g1 = app\\n')"
                % m.path(".assignments"), groups=[]) == "EACCES"
    assert routing(m) == routing0
    assert u.op("open(%r, 'w').write('chat/g1 = app\\n')"
                % m.path(".assignments")) == "OK"
    assert "chat/g1 = app" in read(m.path(".assignments")).decode()
    ids = dict(db_rows(m, "SELECT name, id FROM storage_buckets"))
    assert db_rows(m, "SELECT context_type, context_id, bucket_id"
                      " FROM assignments") == [("chat", "g1", ids["app"])]
    assert u.op("open(%r, 'w').write('chat = app\\n')"
                % m.path(".defaults")) == "OK"
    assert "chat = app" in read(m.path(".defaults")).decode()


@pytest.mark.parametrize("prov", ["local", "s3"])
def test_objects_without_metadata(users, shared, prov):
    u, nobody = users.user, users.nobody
    b = shared.bucket(prov, owner=u.name, group=users.admin_group,
                      mode="0711", file_mode="0640", dir_mode="0750")
    # objects no bucketfs wrote: copied into the folder / another client
    b.put("plain.txt", b"planted\n")
    b.put("d/e.txt", b"nested\n")
    m = shared.mount([b])
    g = users.admin_gid
    d = m.path("b1")
    assert owner_mode(d) == (u.uid, g, 0o711)
    assert owner_mode(os.path.join(d, "plain.txt")) == (u.uid, g, 0o640)
    assert owner_mode(os.path.join(d, "d")) == (u.uid, g, 0o750)
    assert owner_mode(os.path.join(d, "d", "e.txt")) == (u.uid, g, 0o640)
    # the same through a listing (ls -l: readdir, then stat)
    out = subprocess.run(["ls", "-ln", d], capture_output=True, text=True,
                         check=True).stdout
    for name, perm in (("plain.txt", "-rw-r-----"), ("d", "drwxr-x---")):
        line = [x for x in out.splitlines() if x.endswith(" " + name)][0]
        assert line.startswith(perm) and " %d %d " % (u.uid, g) in line, line
    # the kernel checks them: the owner reads, a stranger does not
    assert u.op("assert open(%r).read() == 'planted\\n'"
                % os.path.join(d, "plain.txt")) == "OK"
    assert nobody.op("open(%r).read()" % os.path.join(d, "plain.txt")) \
        == "EACCES"
    assert nobody.op("os.listdir(%r)" % os.path.join(d, "d")) == "EACCES"
    # a file written through the mount keeps its own owner and mode
    with open(os.path.join(d, "root.txt"), "w") as f:
        f.write("r\n")
    os.chmod(os.path.join(d, "root.txt"), 0o600)
    assert owner_mode(os.path.join(d, "root.txt")) == (0, 0, 0o600)
    # chmod of a planted object stores metadata: it then shows it
    os.chmod(os.path.join(d, "plain.txt"), 0o604)
    assert owner_mode(os.path.join(d, "plain.txt")) == (u.uid, g, 0o604)
    m.remount()
    assert owner_mode(m.path("b1", "plain.txt")) == (u.uid, g, 0o604)
    assert owner_mode(m.path("b1", "d", "e.txt")) == (u.uid, g, 0o640)
    assert owner_mode(m.path("b1", "root.txt")) == (0, 0, 0o600)


@pytest.mark.parametrize("prov", ["local", "s3"])
def test_imported_objects_show_bucket_owner(users, shared, prov):
    """bucketctl import of objects without metadata records no owner and
    no permission bits: listings (which take attributes from the index)
    show the bucket's, also after they change."""
    u = users.user
    b = shared.bucket(prov, owner=u.name, file_mode="0640")
    b.put("old/a.txt", b"migrated\n")
    m = shared.mount([b], start=False)
    m.ctl("import", "b1")
    row = [r for r in json.loads(m.ctl("files", "--json").stdout)
           if r["key"] == "old/a.txt"][0]
    assert row["uid"] is None and row["gid"] is None, row
    assert row["mode"] == stat.S_IFREG, row
    m.start()
    f = m.path("b1", "old", "a.txt")
    out = subprocess.run(["ls", "-ln", m.path("b1", "old")],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1].startswith("-rw-r----- 1 %d %d "
                                           % (u.uid, os.getegid())), out
    assert owner_mode(f) == (u.uid, os.getegid(), 0o640)
    m.ctl("bucket", "list")        # the config sync: nothing changes
    m.unmount()
    with open(m.cfg) as fh:
        text = fh.read()
    with open(m.cfg, "w") as fh:
        fh.write(text.replace("owner = %s\n" % u.name, "owner = nobody\n"))
    m.start()
    out = subprocess.run(["ls", "-ln", m.path("b1", "old")],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1].startswith("-rw-r----- 1 %d "
                                           % users.nobody.uid), out


def test_bucketctl_owner_group_mode(users, shared):
    u = users.user
    seed = shared.bucket("local", "seed")
    m = shared.mount([seed])
    folder = os.path.join(shared.dir, "extra")
    os.makedirs(os.path.join(folder, "sub"))
    with open(os.path.join(folder, "copied.txt"), "w") as f:
        f.write("copied\n")
    m.ctl("bucket", "add", "extra", "--provider", "local", "--path", folder,
          "--owner", u.name, "--group", str(users.admin_gid),
          "--mode", "750", "--file-mode", "0600")
    show = m.ctl("bucket", "show", "extra").stdout
    assert "owner: %s\n" % u.name in show
    assert "group: %d\n" % users.admin_gid in show
    assert "mode: 0750\n" in show
    assert "file_mode: 0600\n" in show
    assert "dir_mode: 0755 (default)\n" in show
    j = json.loads(m.ctl("bucket", "show", "extra", "--json").stdout)
    assert (j["owner"], j["group"], j["mode"], j["file_mode"],
            j["dir_mode"]) == (u.name, str(users.admin_gid), "0750", "0600",
                               "0755")
    d = m.path("extra")
    assert helpers.wait_for(lambda: os.path.isdir(d), 15)
    assert owner_mode(d) == (u.uid, users.admin_gid, 0o750)
    f = os.path.join(d, "copied.txt")
    assert owner_mode(f) == (u.uid, users.admin_gid, 0o600)
    assert owner_mode(os.path.join(d, "sub")) == (u.uid, users.admin_gid,
                                                  0o755)
    # a running daemon takes changes at once (cached attributes too)
    m.ctl("bucket", "update", "extra", "--owner", "", "--group", "",
          "--mode", "0700", "--file-mode", "", "--dir-mode", "0711")
    me = (os.geteuid(), os.getegid())
    assert helpers.wait_for(lambda: owner_mode(d) == me + (0o700,), 15), \
        owner_mode(d)
    assert helpers.wait_for(lambda: owner_mode(f) == me + (0o644,), 15), \
        owner_mode(f)
    assert owner_mode(os.path.join(d, "sub")) == me + (0o711,)
    show = m.ctl("bucket", "show", "extra").stdout
    assert "owner: (mounting user)\n" in show
    assert "mode: 0700\n" in show and "file_mode: 0644 (default)\n" in show
    # bad values: one clear line, nothing stored
    p = m.ctl("bucket", "update", "extra", "--owner", "bfs-no-such-user-x",
              check=False)
    assert p.returncode == 1
    assert "--owner: unknown user 'bfs-no-such-user-x'" in p.stderr, p.stderr
    p = m.ctl("bucket", "update", "extra", "--group", "bfs-no-such-group-x",
              check=False)
    assert p.returncode == 1 and "--group: unknown group" in p.stderr
    p = m.ctl("bucket", "update", "extra", "--mode", "0888", check=False)
    assert p.returncode == 2 and "--mode: expected an octal mode" in p.stderr
    p = m.ctl("bucket", "update", "extra", "--file-mode", "4755", check=False)
    assert p.returncode == 2 and "--file-mode" in p.stderr
    p = m.ctl("bucket", "add", "bad", "--provider", "local", "--path",
              folder, "--owner", "bfs-no-such-user-x", check=False)
    assert p.returncode == 1
    assert "bad" not in m.ctl("bucket", "list").stdout
    show2 = m.ctl("bucket", "show", "extra").stdout
    assert show2 == show


def test_bad_admin_group_refuses_start(shared):
    b = shared.bucket("local")
    m = shared.mount([b], init=False, start=False,
                     conf_extra="admin_group = bfs-no-such-group-x\n")
    with open(m.cfg) as f:
        n = f.read().splitlines().index(
            "admin_group = bfs-no-such-group-x") + 1
    p = subprocess.run([conftest.BUCKETFS, "-f", m.cfg, m.mnt],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    line = p.stderr.strip()
    assert "%s:%d: key 'admin_group': unknown group 'bfs-no-such-group-x'" \
        % (m.cfg, n) in line, line
    assert not os.path.ismount(m.mnt)
    with open(m.cfg, "a") as f:
        f.write("owner = bfs-no-such-user-x\n")
    with open(m.cfg) as f:
        text = f.read().replace("admin_group = bfs-no-such-group-x\n", "")
    with open(m.cfg, "w") as f:
        f.write(text)
    n = text.splitlines().index("owner = bfs-no-such-user-x") + 1
    p = subprocess.run([conftest.BUCKETFS, "-f", m.cfg, m.mnt],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "%s:%d: key 'owner': unknown user 'bfs-no-such-user-x'" \
        % (m.cfg, n) in p.stderr, p.stderr


@pytest.mark.parametrize("how", ["foreground", "daemonize", "no-options"])
def test_default_permissions_always(users, shared, how):
    b = shared.bucket("local", default="general")
    opts = () if how == "no-options" else ("allow_other",)
    m = shared.mount([b], options=opts, daemonize=how == "daemonize")
    assert "default_permissions" in mount_options(m.mnt)
    if how == "no-options":
        return          # only the mounting user may enter at all
    before = read(m.path(".defaults"))
    r = users.user.sh("echo 'general =' > %s" % m.path(".defaults"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert read(m.path(".defaults")) == before


@pytest.mark.parametrize("how", ["mount-t", "fstab"])
def test_mount_helper_gets_default_permissions(users, shared, how):
    """mount -t fuse.bucketfs and the README's fstab line run the daemon
    through mount.fuse3 with `-o` options only: default_permissions is
    there all the same, and the user's write is refused."""
    b = shared.bucket("local", "alpha", default="general")
    m = shared.mount([b], start=False)
    with open(os.path.join(b.path, "seed.txt"), "w") as f:
        f.write("seed\n")
    u = users.user
    if how == "mount-t":
        mnt_cmd = ("mount -t fuse.bucketfs -o _netdev,allow_other %s %s\n"
                   % (m.cfg, m.mnt))
    else:
        fstab = os.path.join(m.dir, "fstab")
        with open(fstab, "w") as f:
            f.write("%s %s fuse.bucketfs _netdev,allow_other 0 0\n"
                    % (m.cfg, m.mnt))
        mnt_cmd = "mount -a -T %s\n" % fstab
    body = mnt_cmd + """
grep " {mnt} fuse.bucketfs " /proc/mounts
if setpriv --reuid={uid} --regid={gid} --clear-groups \\
        sh -c "echo 'general =' > {mnt}/.defaults" 2>/dev/null; then
    echo "WRITE-ALLOWED"
fi
setpriv --reuid={uid} --regid={gid} --clear-groups cat {mnt}/alpha/seed.txt
cat {mnt}/.defaults
pid=$(pgrep -f "^(/usr/local/sbin/)?bucketfs {cfg} {mnt}")
umount {mnt}
for i in $(seq 100); do
    kill -0 $pid 2>/dev/null || exit 0
    sleep 0.1
done
echo "daemon still running after umount" >&2
exit 1
""".format(mnt=m.mnt, cfg=m.cfg, uid=u.uid, gid=u.gid)
    p = test_service._ns_script(m, body)
    assert p.returncode == 0, p.stdout + p.stderr + m.stderr()
    line = [x for x in p.stdout.splitlines() if " fuse.bucketfs " in x][0]
    assert "default_permissions" in line.split()[3].split(","), line
    assert "allow_other" in line.split()[3].split(","), line
    assert "WRITE-ALLOWED" not in p.stdout
    assert "seed" in p.stdout
    assert "general = alpha" in p.stdout
