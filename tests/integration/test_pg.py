"""test_pg.py - the PostgreSQL catalog (INTERFACE.md "Config file",
"Database": "Several hosts: PostgreSQL").

Each test gets a fresh database in the session's private cluster (pg.py)
and mounts or runs bucketctl with `database = postgresql://...` and the
password in database_password_file.  The catalog is checked in
PostgreSQL itself (psql); a "host" is a Mount of its own (config, cache
dir with its local journal file, mount point) on the same database and,
for S3 buckets, the same RGW.
"""

import json
import os
import shutil
import select
import subprocess
import sys
import threading
import time

import pytest

from conftest import BUCKETCTL, BUCKETFS, daemon_env

SECRET_ENV = "BFS_TEST_PG_PASSWORD"


def use_pg(m, pg, db, how="file"):
    """Points Mount m's config at PostgreSQL database db."""
    with open(m.cfg) as f:
        text = f.read()
    if how == "file":
        pwfile = os.path.join(m.dir, "db.password")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pg.password + "\n")
        extra = "database_password_file = db.password\n"
    else:
        extra = "database_password = env:%s\n" % SECRET_ENV
    text = text.replace("database = bucketfs.db\n",
                        "database = %s\n%s" % (pg.uri(db), extra), 1)
    with open(m.cfg, "w") as f:
        f.write(text)


@pytest.fixture
def pgdb(pg):
    return pg.new_database()


@pytest.fixture
def host(mount, pg, pgdb):
    """Factory: host(backends, start=True) -> a Mount on the test's
    PostgreSQL database (bucketctl init run)."""
    made = []

    def make(backends, start=True):
        m = mount(backends, init=False, start=False, pg=None)
        use_pg(m, pg, pgdb)
        if made:
            # Every host seals and opens secrets with the same master key.
            shutil.copy(os.path.join(made[0].dir, "master.key"),
                        os.path.join(m.dir, "master.key"))
            os.chmod(os.path.join(m.dir, "master.key"), 0o600)
        made.append(m)
        m.ctl("init")
        if start:
            m.start()
        return m
    return make


def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


def pg_files(pg, db):
    return {(r[0], r[1]): int(r[2]) for r in pg.sql(
        db, "SELECT b.name, f.key, f.size FROM files f JOIN storage_buckets"
            " b ON b.id = f.bucket_id ORDER BY 1, 2")}


def one_line_error(p):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert len(lines) == 1 and lines[0].startswith("bucketctl: "), p.stderr
    return lines[0]


def test_bucketctl_commands_on_pg(host, backend, rgw, pg, pgdb):
    """Every catalog command works against PostgreSQL and its rows are
    there (seed table and column names), secrets sealed; nothing of the
    catalog goes to a SQLite file."""
    b1 = backend("local", "b1", default="general")
    s3 = backend("s3", "s3b", create=True)
    m = host([b1], start=False)
    assert not os.path.exists(m.db)          # no SQLite catalog
    m.ctl("bucket", "add", "s3b", "--provider", "s3", "--bucket-name",
          s3.remote, "--endpoint", rgw.endpoint, "--region", rgw.region,
          "--path-style", "--access-key-id", rgw.access_key,
          "--secret-access-key-file", s3.secret_file)
    out = m.ctl("bucket", "list").stdout
    assert "b1" in out and "s3b" in out
    show = m.ctl("bucket", "show", "s3b").stdout
    assert "secret_access_key: (set)" in show and rgw.secret_key not in show
    m.ctl("defaults", "set", "chat", "s3b")
    assert "chat = s3b" in m.ctl("defaults").stdout
    m.ctl("assign", "chat", "g1", "b1")
    m.ctl("assign", "form", "f9", "s3b")
    assert m.ctl("assignments").stdout == "chat/g1 = b1\nform/f9 = s3b\n"
    m.ctl("unassign", "form", "f9")
    assert m.ctl("assignments").stdout == "chat/g1 = b1\n"
    rows = pg.sql(pgdb, "SELECT name, provider, is_default, is_default_chat,"
                        " managed_by FROM storage_buckets ORDER BY name")
    assert rows == [["b1", "local", "1", "0", "config"],
                    ["s3b", "s3", "0", "1", "bucketctl"]]
    cj = pg.sql(pgdb, "SELECT config_json FROM storage_buckets WHERE"
                      " name = 's3b'")[0][0]
    assert rgw.secret_key not in cj and '"v1:' in cj
    assert pg.sql(pgdb, "SELECT a.context_type, a.context_id, b.name FROM"
                        " assignments a JOIN storage_buckets b ON"
                        " b.id = a.bucket_id") == [["chat", "g1", "b1"]]
    # The sealed secret works: a real S3 round trip through bucket test.
    m.ctl("bucket", "test", "s3b")
    p = m.ctl("bucket", "remove", "b1", check=False)
    assert "managed by" in one_line_error(p) or "config" in p.stderr
    m.ctl("bucket", "remove", "s3b", "--force")
    assert [r[0] for r in pg.sql(pgdb, "SELECT name FROM storage_buckets")] \
        == ["b1"]
    assert json.loads(m.ctl("files", "--json").stdout) == []


def test_mount_index_rows_in_pg(host, backend, rgw, pg, pgdb):
    """Files written, renamed and deleted through a mount on PostgreSQL
    have their index rows in PostgreSQL; the journal stays local."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    d = m.path("s3b")
    for i in range(5):
        with open(os.path.join(d, "f%d.txt" % i), "wb") as f:
            f.write(b"x" * (i + 1))
    os.makedirs(os.path.join(d, "dir"))
    with open(os.path.join(d, "dir", "a.bin"), "wb") as f:
        f.write(b"abc")
    want = {("s3b", "f%d.txt" % i): i + 1 for i in range(5)}
    want[("s3b", "dir/a.bin")] = 3
    assert wait_for(lambda: pg_files(pg, pgdb) == want), pg_files(pg, pgdb)
    os.rename(os.path.join(d, "f0.txt"), os.path.join(d, "g0.txt"))
    os.unlink(os.path.join(d, "f1.txt"))
    os.rename(os.path.join(d, "dir"), os.path.join(d, "dir2"))
    del want[("s3b", "f0.txt")], want[("s3b", "f1.txt")]
    del want[("s3b", "dir/a.bin")]
    want[("s3b", "g0.txt")] = 1
    want[("s3b", "dir2/a.bin")] = 3
    assert wait_for(lambda: pg_files(pg, pgdb) == want), pg_files(pg, pgdb)
    with open(os.path.join(d, "g0.txt"), "rb") as f:
        assert f.read() == b"x"
    assert sorted(os.listdir(d)) == ["dir2", "f2.txt", "f3.txt", "f4.txt",
                                     "g0.txt"]
    # The host-local part: the journal file under cache_dir, empty now.
    local = os.path.join(m.dir, "cache", "local.db")
    assert os.path.exists(local) and not os.path.exists(m.db)
    rows = json.loads(m.ctl("files", "--json").stdout)
    assert sorted((r["key"], r["size"]) for r in rows) == sorted(
        (k, v) for (_, k), v in want.items())


def test_two_hosts_share_the_catalog(host, backend, rgw, pg, pgdb):
    """Two daemons (own configs, cache dirs, mount points) on one
    PostgreSQL database and one RGW: a bucket, default and assignment made
    on one host show on the other's mount; files written on one are in the
    other's index and readable there."""
    b = backend("s3", "shared", default="general")
    a = host([b])
    bb = host([b])
    assert a.cfg != bb.cfg and a.mnt != bb.mnt
    # A new bucket added on host B appears on host A's mount.
    extra = backend("s3", "extra")
    bb.ctl("bucket", "add", "extra", "--provider", "s3", "--bucket-name",
           extra.remote, "--endpoint", rgw.endpoint, "--region", rgw.region,
           "--path-style", "--access-key-id", rgw.access_key,
           "--secret-access-key-file", extra.secret_file)
    assert wait_for(lambda: os.path.isdir(a.path("extra")), 5), \
        os.listdir(a.mnt)
    bb.ctl("assign", "chat", "g2", "extra")
    bb.ctl("defaults", "set", "forms", "extra")

    def read(m, name):
        with open(m.path(name)) as f:
            return f.read()
    assert wait_for(lambda: read(a, ".assignments") == "chat/g2 = extra\n",
                    5), read(a, ".assignments")
    assert wait_for(lambda: "forms = extra" in read(a, ".defaults"), 5)
    # A file written on host A: in the shared index, readable on host B.
    with open(a.path("shared", "from-a.txt"), "wb") as f:
        f.write(b"hello from a")
    rows = json.loads(bb.ctl("files", "--bucket", "shared",
                             "--json").stdout)
    assert [(r["key"], r["size"]) for r in rows] == [("from-a.txt", 12)]
    with open(bb.path("shared", "from-a.txt"), "rb") as f:
        assert f.read() == b"hello from a"
    # Both hosts writing into one folder at once lose no index row.
    procs = []
    for m, tag in ((a, "a"), (bb, "b")):
        script = ("import os\nfor i in range(40):\n"
                  "    with open(os.path.join(%r, '%s%%02d' %% i), 'wb')"
                  " as f:\n        f.write(b'z' * i)\n"
                  % (m.path("shared", "dir"), tag))
        os.makedirs(m.path("shared", "dir"), exist_ok=True)
        procs.append(subprocess.Popen(["/usr/bin/python3", "-c", script]))
    for p in procs:
        assert p.wait(timeout=300) == 0
    n = int(pg.sql(pgdb, "SELECT count(*) FROM files WHERE key LIKE"
                         " 'dir/%'")[0][0])
    assert n == 80


def test_password_from_env(mount, backend, pg, pgdb):
    """database_password = env:VAR works; without the variable the
    config is refused naming the key (and no password is printed)."""
    m = mount([backend("local", "b1")], init=False, start=False, pg=None)
    use_pg(m, pg, pgdb, how="env")
    env = daemon_env()
    env.pop(SECRET_ENV, None)
    p = subprocess.run([BUCKETCTL, "-c", m.cfg, "init"], env=env,
                       capture_output=True, text=True, timeout=60)
    line = one_line_error(p)
    assert "database_password" in line and SECRET_ENV in line
    env[SECRET_ENV] = pg.password
    p = subprocess.run([BUCKETCTL, "-c", m.cfg, "init"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert pg.password not in p.stdout + p.stderr


@pytest.mark.parametrize("uri,what", [
    ("postgresql://bfs:hunter2pw@127.0.0.1:5432/db", "password in the URI"),
    ("postgresql://bfs@127.0.0.1:5432/db?password=hunter2pw",
     "password in the URI"),
    ("postgresql://bfs@127.0.0.1:5432/db?sslmode=bogus", "sslmode"),
    ("postgresql://bfs@127.0.0.1:5432/db?nosuchoption=1", "not a valid"),
    ("postgresql://bfs@127.0.0.1:5432", "no database"),
])
def test_bad_uri_refused(mount, backend, uri, what):
    """A bad postgresql:// URI: bucketctl exits 1 with one line naming the
    config line and key, never echoing a password; the daemon does not
    mount."""
    m = mount([backend("local", "b1")], init=False, start=False, pg=None)
    with open(m.cfg) as f:
        text = f.read().replace("database = bucketfs.db",
                                "database = " + uri)
    with open(m.cfg, "w") as f:
        f.write(text)
    p = m.ctl("bucket", "list", check=False)
    line = one_line_error(p)
    assert "key 'database'" in line and what in line, line
    assert "hunter2pw" not in p.stderr
    d = subprocess.run([BUCKETFS, "-f", m.cfg, m.mnt], capture_output=True,
                       text=True, timeout=60, env=daemon_env())
    assert d.returncode != 0 and not os.path.ismount(m.mnt)
    assert "hunter2pw" not in d.stderr and what in d.stderr


def test_unreachable_database(mount, backend, pg, pgdb):
    """Nothing listening, or a wrong password: one clear line, exit 1, no
    mount."""
    from rgw import free_port
    m = mount([backend("local", "b1")], init=False, start=False, pg=None)
    use_pg(m, pg, pgdb)
    with open(m.cfg) as f:
        good = f.read()
    dead = good.replace(":%d/" % pg.port, ":%d/" % free_port())
    with open(m.cfg, "w") as f:
        f.write(dead)
    line = one_line_error(m.ctl("bucket", "list", check=False))
    assert "cannot connect" in line and "127.0.0.1" in line, line
    d = subprocess.run([BUCKETFS, "-f", m.cfg, m.mnt], capture_output=True,
                       text=True, timeout=60, env=daemon_env())
    assert d.returncode != 0 and not os.path.ismount(m.mnt)
    assert "cannot connect" in d.stderr
    with open(os.path.join(m.dir, "db.password"), "w") as f:
        f.write("wrong-password\n")
    with open(m.cfg, "w") as f:
        f.write(good)
    line = one_line_error(m.ctl("bucket", "list", check=False))
    assert "password authentication failed" in line, line
    assert "wrong-password" not in line


def test_server_restart_reconnects(host, backend, pg, pgdb):
    """A restart of PostgreSQL drops the daemon's and bucketctl's
    connections; the daemon reconnects by itself: files written after it
    are indexed, bucketctl changes still reach the mount."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    with open(m.path("s3b", "before.txt"), "wb") as f:
        f.write(b"1")
    assert wait_for(lambda: ("s3b", "before.txt") in pg_files(pg, pgdb))
    pg.restart()
    with open(m.path("s3b", "after.txt"), "wb") as f:
        f.write(b"22")
    assert wait_for(lambda: pg_files(pg, pgdb) == {
        ("s3b", "before.txt"): 1, ("s3b", "after.txt"): 2}), \
        pg_files(pg, pgdb)
    m.ctl("assign", "chat", "g5", "s3b")

    def assigned():
        with open(m.path(".assignments")) as f:
            return f.read() == "chat/g5 = s3b\n"
    assert wait_for(assigned, 5)
    assert "reconnected" in m.stderr()


def test_migrate_db_round_trip(mount, backend, rgw, pg, pgdb):
    """migrate-db copies a SQLite catalog (a bucketctl bucket with its
    sealed secret, defaults, assignments, the index) into an empty
    PostgreSQL database, counts verified; the switched mount serves the
    same files and the secret still opens; a second run into the now
    non-empty database is refused and changes nothing."""
    s3 = backend("s3", "s3b", default="general")
    extra = backend("s3", "extra")
    m = mount([s3], pg=None)
    m.ctl("bucket", "add", "extra", "--provider", "s3", "--bucket-name",
          extra.remote, "--endpoint", rgw.endpoint, "--region", rgw.region,
          "--path-style", "--access-key-id", rgw.access_key,
          "--secret-access-key-file", extra.secret_file)
    m.ctl("assign", "chat", "g1", "extra")
    m.ctl("defaults", "set", "forms", "extra")
    with open(m.path("s3b", "one.txt"), "wb") as f:
        f.write(b"one")
    os.makedirs(m.path("s3b", "d"))
    with open(m.path("s3b", "d", "two.txt"), "wb") as f:
        f.write(b"two!")
    m.unmount()
    pwfile = os.path.join(m.dir, "db.password")
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pg.password + "\n")
    with open(m.cfg) as f:
        text = f.read()
    with open(m.cfg, "w") as f:
        f.write(text.replace("database = bucketfs.db\n",
                             "database = bucketfs.db\n"
                             "database_password_file = db.password\n"))
    out = m.ctl("migrate-db", pg.uri(pgdb)).stdout
    assert "copied 2 bucket(s), 2 file row(s), 1 assignment(s)" in out, out
    assert "database = " + pg.uri(pgdb) in out
    ids = pg.sql(pgdb, "SELECT id, name FROM storage_buckets ORDER BY name")
    import sqlite3
    con = sqlite3.connect(m.db)
    try:
        want = [list(r) for r in con.execute(
            "SELECT id, name FROM storage_buckets ORDER BY name")]
    finally:
        con.close()
    assert ids == want                   # same ids: the secrets' AAD
    assert pg_files(pg, pgdb) == {("s3b", "one.txt"): 3,
                                  ("s3b", "d/two.txt"): 4}
    # Refused the second time, nothing changed.
    p = m.ctl("migrate-db", pg.uri(pgdb), check=False)
    assert "not empty" in one_line_error(p)
    assert len(pg_files(pg, pgdb)) == 2
    # Switch the config and mount on PostgreSQL.
    with open(m.cfg) as f:
        text = f.read()
    with open(m.cfg, "w") as f:
        f.write(text.replace("database = bucketfs.db\n",
                             "database = %s\n" % pg.uri(pgdb)))
    m.start()
    with open(m.path("s3b", "d", "two.txt"), "rb") as f:
        assert f.read() == b"two!"
    with open(m.path(".assignments")) as f:
        assert f.read() == "chat/g1 = extra\n"
    m.ctl("bucket", "test", "extra")      # the copied sealed secret opens
    p = m.ctl("migrate-db", pg.uri(pgdb), check=False)
    assert "already PostgreSQL" in one_line_error(p)


# ---------------------------------------------------------------- outage

@pytest.fixture
def outage(pg):
    """down() stops the session's PostgreSQL, up() starts it again; the
    fixture starts it again at the end when a test left it stopped."""
    state = {"down": False}

    class Outage:
        @staticmethod
        def down():
            pg.pause()
            state["down"] = True

        @staticmethod
        def up():
            pg.resume()
            state["down"] = False
    yield Outage
    if state["down"]:
        pg.resume()


def db_metrics(m):
    """(bucketfs_database_connected, bucketfs_index_queued) of .metrics."""
    with open(m.path(".metrics")) as f:
        vals = dict(ln.split()[:2] for ln in f.read().splitlines()
                    if ln.startswith(("bucketfs_database_connected ",
                                      "bucketfs_index_queued ")))
    return (int(vals.get("bucketfs_database_connected", -1)),
            int(vals.get("bucketfs_index_queued", -1)))


def kill9(m):
    import signal
    import conftest
    os.kill(m.proc.pid, signal.SIGKILL)
    m.proc.wait(timeout=30)
    m.proc = None
    conftest._live_mounts.discard(m)
    subprocess.run(["fusermount3", "-uz", m.mnt], capture_output=True)


def test_outage_queues_index_rows(host, backend, pg, pgdb, outage):
    """PostgreSQL down: files written through the mount are stored (close
    succeeds, the objects are in the bucket) and readable; their index
    writes (put, rename, delete, chmod) are queued and .metrics says so;
    .buckets still answers; a control-file write fails with EIO and
    bucketctl exits 1 with one line.  Back up: the queued rows are
    replayed in order, once each."""
    import errno
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    with open(m.path("s3b", "old.txt"), "wb") as f:
        f.write(b"old")
    assert wait_for(lambda: ("s3b", "old.txt") in pg_files(pg, pgdb))
    assert wait_for(lambda: db_metrics(m) == (1, 0)), db_metrics(m)
    with open(m.path(".buckets")) as f:
        line = f.read()
    assert " files=1 " in line and "database=" not in line, line
    with open(m.path(".defaults")) as f:
        assert "general = s3b" in f.read()
    outage.down()
    for i in range(5):
        with open(m.path("s3b", "new%d.txt" % i), "wb") as f:
            f.write(b"x" * (i + 1))
        assert s3.read("new%d.txt" % i) == b"x" * (i + 1)
    os.rename(m.path("s3b", "new1.txt"), m.path("s3b", "moved1.txt"))
    os.rename(m.path("s3b", "old.txt"), m.path("s3b", "old-moved.txt"))
    os.unlink(m.path("s3b", "new2.txt"))
    os.chmod(m.path("s3b", "new3.txt"), 0o600)
    # A name written again after its rename: order matters on replay.
    with open(m.path("s3b", "new1.txt"), "wb") as f:
        f.write(b"again")
    with open(m.path("s3b", "new0.txt"), "rb") as f:
        assert f.read() == b"x"
    connected, queued = db_metrics(m)
    assert connected == 0 and queued >= 9, (connected, queued)
    with open(m.path(".buckets")) as f:
        line = f.read()
    # The counts from before the outage, and the database state.
    assert line.startswith("s3b provider=s3 ") and " files=1 " in line and \
        line.endswith(" database=down\n"), line
    with pytest.raises(OSError) as ei:
        with open(m.path(".assignments"), "a") as f:
            f.write("chat/g1 = s3b\n")
    assert ei.value.errno == errno.EIO
    # The last rendering of a control file is still readable.
    with open(m.path(".defaults")) as f:
        assert "general = s3b" in f.read()
    line = one_line_error(m.ctl("bucket", "list", check=False))
    assert "cannot connect" in line or "database" in line, line
    outage.up()
    want = {("s3b", "new0.txt"): 1, ("s3b", "moved1.txt"): 2,
            ("s3b", "new1.txt"): 5, ("s3b", "new3.txt"): 4,
            ("s3b", "new4.txt"): 5, ("s3b", "old-moved.txt"): 3}
    assert wait_for(lambda: pg_files(pg, pgdb) == want, 30), \
        (pg_files(pg, pgdb), m.stderr()[-3000:])
    assert wait_for(lambda: db_metrics(m) == (1, 0), 10), db_metrics(m)
    assert int(pg.sql(pgdb, "SELECT count(*) FROM files")[0][0]) == len(want)
    mode = int(pg.sql(pgdb, "SELECT mode FROM files WHERE key ="
                            " 'new3.txt'")[0][0])
    assert mode & 0o777 == 0o600
    # Replayed once each: the host's replayed id is the queue's length.
    seq = int(pg.sql(pgdb, "SELECT seq FROM bfs_index_replay")[0][0])
    assert seq == queued, (seq, queued)
    assert m.ctl("assignments").stdout.strip() == ""


def test_outage_queue_survives_kill9(host, backend, pg, pgdb, outage):
    """Index rows queued during an outage survive kill -9 of the daemon;
    the restarted daemon (database back) writes them, each once."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    outage.down()
    for i in range(3):
        with open(m.path("s3b", "k%d" % i), "wb") as f:
            f.write(b"k" * (i + 1))
    assert db_metrics(m)[1] == 3
    kill9(m)
    outage.up()
    assert pg_files(pg, pgdb) == {}
    m.start()
    want = {("s3b", "k0"): 1, ("s3b", "k1"): 2, ("s3b", "k2"): 3}
    assert wait_for(lambda: pg_files(pg, pgdb) == want, 30), \
        (pg_files(pg, pgdb), m.stderr()[-3000:])
    assert wait_for(lambda: db_metrics(m) == (1, 0), 10)


# ---------------------------------------------------------------- changes

NOTIFY_BOUND = 3.0   # seconds; the contract says 1 s, the machine is loaded


def notified(m):
    with open(m.path(".metrics")) as f:
        for ln in f.read().splitlines():
            if ln.startswith("bucketfs_database_notifications_total "):
                return int(ln.split()[1])
    return -1


def test_changes_seen_on_other_host(host, backend, pg, pgdb):
    """A file created, rewritten, renamed and deleted through host A's
    mount is seen by host B at once (LISTEN/NOTIFY drops B's cached
    listing and attributes; without it they live 30 s), also right after
    B listed the folder and looked the file up."""
    b = backend("s3", "shared", default="general")
    a = host([b])
    bb = host([b])
    os.makedirs(a.path("shared", "d"))
    with open(a.path("shared", "d", "first.txt"), "wb") as f:
        f.write(b"1")
    assert wait_for(lambda: os.listdir(bb.path("shared", "d")) ==
                    ["first.txt"], 10)
    lat = []

    def seen(pred):
        t0 = time.monotonic()
        ok = wait_for(pred, NOTIFY_BOUND)
        lat.append(time.monotonic() - t0)
        return ok

    def ls():
        return sorted(os.listdir(bb.path("shared", "d")))

    n0 = notified(bb)
    # Created: B listed the folder just before.
    assert ls() == ["first.txt"]
    with open(a.path("shared", "d", "new.txt"), "wb") as f:
        f.write(b"abc")
    assert seen(lambda: ls() == ["first.txt", "new.txt"]), ls()
    # Rewritten: B looked it up just before.
    assert os.stat(bb.path("shared", "d", "new.txt")).st_size == 3
    with open(a.path("shared", "d", "new.txt"), "wb") as f:
        f.write(b"abcdefg")
    assert seen(lambda: os.stat(bb.path("shared", "d", "new.txt")).st_size
                == 7)
    with open(bb.path("shared", "d", "new.txt"), "rb") as f:
        assert f.read() == b"abcdefg"
    # Renamed and deleted.
    os.rename(a.path("shared", "d", "new.txt"),
              a.path("shared", "d", "renamed.txt"))
    assert seen(lambda: ls() == ["first.txt", "renamed.txt"]), ls()
    os.unlink(a.path("shared", "d", "first.txt"))
    assert seen(lambda: ls() == ["renamed.txt"]), ls()
    assert notified(bb) > n0
    print("cross-host latencies (s):", ["%.3f" % x for x in lat])


CATALOG_BOUND = 1.0   # seconds from the change (INTERFACE.md: one second)


def test_catalog_changes_routed_on_other_host(host, backend, pg, pgdb):
    """An assignment (bucketctl assign, a .assignments write) and a default
    (bucketctl defaults set) made on host A change where host B routes
    within one second: the catalog triggers NOTIFY and B's registry
    reloads at once (without them, only B's version poll would)."""
    alpha = backend("s3", "alpha", default="general")
    beta = backend("s3", "beta")
    a = host([alpha, beta])
    bb = host([alpha, beta])

    def routed(*parts):
        return os.getxattr(bb.path(*parts), "user.bucketfs.bucket").decode()
    # B routes (and has looked up) every context below before each change.
    assert routed("@chat", "g1") == "alpha"
    assert routed("@chat", "g2") == "alpha"
    assert routed("@chat", "fresh") == "alpha"
    lat = []

    def within(pred, change):
        change()
        t0 = time.monotonic()
        while not pred():
            assert time.monotonic() - t0 < CATALOG_BOUND, lat
            time.sleep(0.01)
        lat.append(time.monotonic() - t0)
    n0 = notified(bb)
    within(lambda: routed("@chat", "g1") == "beta",
           lambda: a.ctl("assign", "chat", "g1", "beta"))

    def write_assignments():
        with open(a.path(".assignments"), "w") as f:
            f.write("chat/g1 = beta\nchat/g2 = beta\n")
    within(lambda: routed("@chat", "g2") == "beta", write_assignments)
    within(lambda: routed("@chat", "fresh") == "beta",
           lambda: a.ctl("defaults", "set", "chat", "beta"))
    assert notified(bb) >= n0 + 3
    print("cross-host catalog latencies (s):", ["%.3f" % x for x in lat])


def test_rewrite_seen_by_stat_on_other_host(host, backend, pg, pgdb):
    """A rewrite (size change) on host A is seen by stat on host B within
    one second of A's close(), although B kept stat'ing the file all
    through that close: with a PostgreSQL catalog the kernel caches
    attributes 0.3 s (1 s on SQLite), and B's notification drops the
    mount's own at once."""
    b = backend("s3", "shared", default="general")
    a = host([b])
    bb = host([b])
    with open(a.path("shared", "f.txt"), "wb") as f:
        f.write(b"1")
    path_b = bb.path("shared", "f.txt")
    assert wait_for(lambda: os.path.exists(path_b), 10)
    lat = []
    for n in (5, 9, 13):
        stop = threading.Event()

        def keep_stating():
            # B's kernel holds the old attributes as fresh as they can be.
            while not stop.is_set():
                os.stat(path_b)
        t = threading.Thread(target=keep_stating)
        f = open(a.path("shared", "f.txt"), "wb")
        try:
            f.write(b"x" * n)
            t.start()
            time.sleep(0.05)    # a stat or two before the close begins
        finally:
            f.close()
            t0 = time.monotonic()
            stop.set()
            if t.is_alive():
                t.join()
        while os.stat(path_b).st_size != n:
            assert time.monotonic() - t0 < CATALOG_BOUND, lat
            time.sleep(0.01)
        lat.append(time.monotonic() - t0)
    print("cross-host rewrite seen by stat (s):", ["%.3f" % x for x in lat])


def test_watcher_reconnect_drops_caches(host, backend, pg, pgdb):
    """When a host's change watcher loses its connection, it drops every
    cached listing once it listens again: a change it could have missed
    (here an object stored behind every mount's back) shows at once."""
    b = backend("s3", "shared", default="general")
    m = host([b])
    with open(m.path("shared", "one.txt"), "wb") as f:
        f.write(b"1")
    assert os.listdir(m.path("shared")) == ["one.txt"]
    b.put("two.txt", b"22")
    # Cached: the mount does not know of two.txt yet.
    assert os.listdir(m.path("shared")) == ["one.txt"]
    pg.sql(pgdb, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE query = 'LISTEN bfs_changes'")
    assert wait_for(lambda: sorted(os.listdir(m.path("shared"))) ==
                    ["one.txt", "two.txt"], 10)
    assert "change watcher reconnected" in m.stderr()


# ---------------------------------------------------------------- pool

PG_TX_LOCK = 0x62667330   # the advisory lock of every catalog transaction


def hold_tx_lock(pg, db):
    """A psql client that takes the catalog transactions' advisory lock
    and keeps it (until its backend is terminated); the Popen."""
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": pg.password}
    return subprocess.Popen(
        [os.path.join("/usr/lib/postgresql/15/bin", "psql"), "-X", "-At",
         "-h", pg.host, "-p", str(pg.port), "-U", pg.role, "-d", db,
         "-c", "SELECT pg_advisory_lock(%d)" % PG_TX_LOCK,
         "-c", "SELECT pg_sleep(300)"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_blocked_catalog_write_does_not_stall_others(host, backend, pg,
                                                     pgdb):
    """A catalog write stuck in PostgreSQL (its transaction waits for the
    advisory lock another client holds) holds up nothing else: the mount's
    other catalog calls run on other connections of its pool, and the
    stuck one finishes once the lock is free."""
    import threading
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    m.ctl("assign", "chat", "g1", "s3b")

    def assignments():
        with open(m.path(".assignments")) as f:
            return f.read()
    assert wait_for(lambda: assignments() == "chat/g1 = s3b\n", 10)
    with open(m.path("s3b", "stuck.txt"), "wb") as f:
        f.write(b"s")
    holder = hold_tx_lock(pg, pgdb)
    try:
        assert wait_for(lambda: pg.sql(
            pgdb, "SELECT count(*) FROM pg_locks WHERE locktype ="
                  " 'advisory' AND granted")[0][0] == "1", 20)
        done = {}

        def write():
            # The index rename is a transaction: it takes the lock.
            os.rename(m.path("s3b", "stuck.txt"), m.path("s3b", "moved.txt"))
            done["write"] = True
        w = threading.Thread(target=write, daemon=True)
        w.start()
        # The daemon's transaction is waiting in PostgreSQL.
        assert wait_for(lambda: pg.sql(
            pgdb, "SELECT count(*) FROM pg_locks WHERE locktype ="
                  " 'advisory' AND NOT granted")[0][0] == "1", 20)
        got = {}

        def read():
            got["a"] = assignments()
        r = threading.Thread(target=read, daemon=True)
        r.start()
        r.join(30)
        assert got.get("a") == "chat/g1 = s3b\n", got
        assert "write" not in done
    finally:
        # The server keeps a killed client's pg_sleep (and lock) running.
        pg.sql(pgdb, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE"
                     " locktype = 'advisory' AND granted")
        holder.kill()
        holder.wait()
    w.join(60)
    assert done.get("write")
    assert wait_for(lambda: pg_files(pg, pgdb) == {("s3b", "moved.txt"): 1})


def test_upload_catalog_commit_does_not_hold_the_file(host, backend, pg,
                                                    pgdb):
    """The index row of a finished upload goes to PostgreSQL without the
    open file's lock: while another client holds the files table locked
    (the daemon's upsert waits for it), stat and a listing of the file
    being closed answer at once; close returns once the table is free,
    with the row written."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    path = m.path("s3b", "slow.txt")
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": pg.password}
    holder = subprocess.Popen(
        [os.path.join("/usr/lib/postgresql/15/bin", "psql"), "-X", "-At",
         "-h", pg.host, "-p", str(pg.port), "-U", pg.role, "-d", pgdb,
         "-c", "BEGIN; LOCK TABLE files IN EXCLUSIVE MODE;"
               " SELECT pg_sleep(300);"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def files_locks(granted):
        return pg.sql(
            pgdb, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON"
                  " c.oid = l.relation WHERE c.relname = 'files' AND"
                  " l.granted = %s AND l.mode IN ('ExclusiveLock',"
                  " 'RowExclusiveLock')" % ("true" if granted else "false")
        )[0][0]
    done = {}
    w2 = None
    try:
        assert wait_for(lambda: files_locks(True) == "1", 20)

        def write():
            with open(path, "wb") as f:
                f.write(b"x" * 1000)
            done["close"] = True
        w = threading.Thread(target=write, daemon=True)
        w.start()
        # The daemon's upsert of the row waits in PostgreSQL.
        assert wait_for(lambda: files_locks(False) == "1", 30)
        got = {}

        def look():
            got["size"] = os.stat(path).st_size
            got["names"] = os.listdir(m.path("s3b"))
        t = threading.Thread(target=look, daemon=True)
        t.start()
        t.join(20)
        assert got.get("size") == 1000, got
        assert "slow.txt" in got["names"]
        assert "close" not in done

        # A write waits until those rows are in: the journal row the
        # commit deletes is never one a newer write relies on.  (Its own
        # process: a descriptor of the mount open here would be
        # inherited by the psql children below, whose exit flushes it.)
        w2 = subprocess.Popen(
            [sys.executable, "-c", "import sys\n"
             "with open(sys.argv[1], 'r+b', buffering=0) as f:\n"
             "    f.write(b'y' * 10)\n"
             "    print('written', flush=True)\n", path],
            stdout=subprocess.PIPE)
        ready, _, _ = select.select([w2.stdout], [], [], 2)
        assert not ready, "a write went through while the rows committed"
    finally:
        def release():
            pg.sql(pgdb, "SELECT pg_terminate_backend(pid) FROM pg_locks l"
                         " JOIN pg_class c ON c.oid = l.relation WHERE"
                         " c.relname = 'files' AND l.granted AND"
                         " l.mode = 'ExclusiveLock'")
            return pg.sql(pgdb, "SELECT count(*) FROM pg_locks l JOIN"
                                " pg_class c ON c.oid = l.relation WHERE"
                                " c.relname = 'files' AND"
                                " l.mode = 'ExclusiveLock'")[0][0] == "0"
        released = wait_for(release, 20)
        holder.kill()
        holder.wait()
        if not released and w2 is not None:
            w2.kill()
        assert released, "the lock holder outlived pg_terminate_backend"
    w.join(60)
    assert w2.wait(60) == 0
    assert w2.stdout.read() == b"written\n"
    w2.stdout.close()
    assert done.get("close")
    assert wait_for(lambda: pg_files(pg, pgdb) == {("s3b", "slow.txt"): 1000})
    with open(path, "rb") as f:
        assert f.read() == b"y" * 10 + b"x" * 990


def test_outage_context_views_keep_serving(host, backend, pg, pgdb, outage):
    """PostgreSQL down: a context view keeps routing with the catalog the
    mount has: its files read and list, a new file is stored in the
    context's bucket and indexed once the database is back."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    m.ctl("assign", "chat", "g1", "s3b")

    def assigned():
        with open(m.path(".assignments")) as f:
            return f.read() == "chat/g1 = s3b\n"
    assert wait_for(assigned, 10)
    with open(m.path("@chat", "g1", "a.txt"), "wb") as f:
        f.write(b"a")
    outage.down()
    with open(m.path("@chat", "g1", "a.txt"), "rb") as f:
        assert f.read() == b"a"
    with open(m.path("@chat", "g1", "b.txt"), "wb") as f:
        f.write(b"bb")
    assert s3.read("chat/g1/b.txt") == b"bb"
    assert sorted(os.listdir(m.path("@chat", "g1"))) == ["a.txt", "b.txt"]
    outage.up()
    assert wait_for(lambda: pg_files(pg, pgdb) == {
        ("s3b", "chat/g1/a.txt"): 1, ("s3b", "chat/g1/b.txt"): 2}, 30), \
        pg_files(pg, pgdb)


def test_queued_row_renamed_before_replay(host, backend, pg, pgdb):
    """Files written while the catalog was unreachable have their index
    rows queued; once the database is back but before the queue has been
    replayed (here: the replay waits for the catalog lock another client
    holds), a rename, chmod and delete of such files queue behind those
    rows: after the replay the index holds exactly the renamed file (its
    mode set), no row under the old names."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    with open(m.path("s3b", "seed.txt"), "wb") as f:
        f.write(b"s")
    assert wait_for(lambda: ("s3b", "seed.txt") in pg_files(pg, pgdb))
    holder = hold_tx_lock(pg, pgdb)
    try:
        assert wait_for(lambda: pg.sql(
            pgdb, "SELECT count(*) FROM pg_locks WHERE locktype ="
                  " 'advisory' AND granted")[0][0] == "1", 20)
        hpid = pg.sql(pgdb, "SELECT pid FROM pg_locks WHERE locktype ="
                            " 'advisory' AND granted")[0][0]
        # An outage for the mount alone: the holder keeps its session.
        pg.admin_sql("ALTER DATABASE %s ALLOW_CONNECTIONS false" % pgdb)
        pg.admin_sql("SELECT pg_terminate_backend(pid) FROM"
                     " pg_stat_activity WHERE datname = '%s' AND pid <> %s"
                     % (pgdb, hpid))
        for name in ("a.txt", "b.txt"):
            with open(m.path("s3b", name), "wb") as f:
                f.write(b"queued " + name.encode())
        assert wait_for(lambda: db_metrics(m) == (0, 2), 20), db_metrics(m)
        pg.admin_sql("ALTER DATABASE %s ALLOW_CONNECTIONS true" % pgdb)
        # Back, and the replay waits for the lock: the rows stay queued.
        assert wait_for(lambda: pg.sql(
            pgdb, "SELECT count(*) FROM pg_locks WHERE locktype ="
                  " 'advisory' AND NOT granted")[0][0] == "1", 30)
        assert db_metrics(m)[1] == 2, db_metrics(m)
        os.rename(m.path("s3b", "a.txt"), m.path("s3b", "a-moved.txt"))
        os.chmod(m.path("s3b", "a-moved.txt"), 0o600)
        os.unlink(m.path("s3b", "b.txt"))
        assert s3.read("a-moved.txt") == b"queued a.txt"
    finally:
        pg.admin_sql("ALTER DATABASE %s ALLOW_CONNECTIONS true" % pgdb)
        pg.sql(pgdb, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE"
                     " locktype = 'advisory' AND granted")
        holder.kill()
        holder.wait()
    assert wait_for(lambda: db_metrics(m) == (1, 0), 30), db_metrics(m)
    assert pg_files(pg, pgdb) == {("s3b", "seed.txt"): 1,
                                  ("s3b", "a-moved.txt"): 12}
    assert pg.sql(pgdb, "SELECT mode & 511 FROM files WHERE key ="
                        " 'a-moved.txt'") == [[str(0o600)]]


def test_queued_rows_kept_while_catalog_refuses_writes(host, backend, pg,
                                                        pgdb, outage):
    """Rows queued during an outage meet a catalog that is back but refuses
    writes for a while (a read-only standby after a failover): they stay
    queued and are written once it takes writes again — none dropped."""
    s3 = backend("s3", "s3b", default="general")
    m = host([s3])
    assert wait_for(lambda: db_metrics(m) == (1, 0)), db_metrics(m)
    # Sessions opened from now on (the mount's, after the outage) are
    # read-only; its sessions of now end with the outage.
    pg.sql("postgres", "ALTER DATABASE %s SET default_transaction_read_only"
                       " = on" % pgdb)
    try:
        outage.down()
        for i in range(3):
            with open(m.path("s3b", "ro%d.txt" % i), "wb") as f:
                f.write(b"y" * (i + 1))
        assert db_metrics(m)[1] >= 3, db_metrics(m)
        outage.up()
        # Back and connected, but every replay fails: nothing written,
        # nothing dropped.
        assert wait_for(lambda: db_metrics(m)[0] == 1, 30), db_metrics(m)
        assert wait_for(lambda: "read-only" in m.stderr(), 30), \
            m.stderr()[-2000:]
        assert db_metrics(m)[1] >= 3, db_metrics(m)
        assert pg_files(pg, pgdb) == {}
    finally:
        pg.sql("postgres", "ALTER DATABASE %s RESET"
                           " default_transaction_read_only" % pgdb)
    pg.sql("postgres", "SELECT pg_terminate_backend(pid) FROM"
                       " pg_stat_activity WHERE datname = '%s'" % pgdb)
    want = {("s3b", "ro%d.txt" % i): i + 1 for i in range(3)}
    assert wait_for(lambda: pg_files(pg, pgdb) == want, 30), \
        (pg_files(pg, pgdb), m.stderr()[-3000:])
    assert wait_for(lambda: db_metrics(m) == (1, 0), 10), db_metrics(m)
