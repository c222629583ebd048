"""test_bucketctl.py - the admin tool against its contract (INTERFACE.md
"bucketctl commands").

Most tests need no daemon and no S3 server: each gets a private folder
with a config file, local buckets and its own database, and runs the real
build/bucketctl through subprocess, checking stdout, the exit status (0
ok, 1 failure with exactly one "bucketctl: ..." line on stderr, 2 usage)
and, where it matters, the database itself (sqlite3, and the raw bytes of
the db and -wal files for secrets).  A bucket pointing at a closed
loopback port stands in for an unreachable S3 service (bucket test fails,
presign still signs).  The last tests use the harness's `rgw` and `mount`
fixtures: a real S3 round trip and a running daemon seeing bucketctl's
changes.
"""

import json
import os
import sqlite3
import stat
import subprocess
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("BUCKETFS_BUILD")
                        or os.path.join(REPO, "build"))
BUCKETCTL = os.path.join(BUILD, "bucketctl")

SECRET = "Sup3rSecretValue-9f8e7d6c5b4a"    # never to be seen anywhere
DEAD_ENDPOINT = "http://127.0.0.1:9"        # discard port: refused
SANITIZER = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def _env(extra=None):
    env = dict(os.environ)
    env.pop("BUCKETFS_CONFIG", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.update(extra or {})
    return env


def run_ctl(args, config=None, input=None, env=None):
    if not os.access(BUCKETCTL, os.X_OK):
        pytest.fail("%s not built (make, or set BUCKETFS_BUILD)" % BUCKETCTL,
                    pytrace=False)
    argv = [BUCKETCTL] + (["-c", config] if config else []) + list(args)
    p = subprocess.run(argv, input=input, capture_output=True, text=True,
                       timeout=60, env=_env(env))
    for pat in SANITIZER:
        assert pat not in p.stderr, p.stderr
    return p


class Ctl:
    """A private config: buckets "media" (local, config, default general
    and chat) and folders for more local buckets."""

    def __init__(self, tmp):
        self.dir = str(tmp)
        self.data = os.path.join(self.dir, "data")
        self.media = os.path.join(self.data, "media")
        self.scratch = os.path.join(self.data, "scratch")
        os.makedirs(self.media)
        os.makedirs(self.scratch)
        self.cfg = os.path.join(self.dir, "bucketfs.conf")
        self.db = os.path.join(self.dir, "bucketfs.db")
        self.key = os.path.join(self.dir, "master.key")
        self.write_config("")

    def write_config(self, extra):
        with open(self.cfg, "w") as f:
            f.write("[bucketfs]\n"
                    "database = bucketfs.db\n"
                    "master_key_file = master.key\n"
                    "\n[bucket media]\n"
                    "provider = local\n"
                    "path = data/media\n"
                    "default = general, chat\n" + extra)

    def __call__(self, *args, input=None, env=None):
        return run_ctl(args, self.cfg, input=input, env=env)

    def ok(self, *args, input=None):
        p = self(*args, input=input)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    def fail(self, *args, input=None, code=1):
        p = self(*args, input=input)
        assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
        if code == 1:
            lines = p.stderr.splitlines()
            assert len(lines) == 1, p.stderr
            assert lines[0].startswith("bucketctl: "), p.stderr
        else:
            assert "usage: bucketctl" in p.stderr, p.stderr
        return p.stderr

    def json(self, *args):
        return json.loads(self.ok(*args, "--json"))

    def add_scratch(self, *extra):
        self.ok("bucket", "add", "scratch", "--provider", "local",
                "--path", self.scratch, *extra)

    def add_s3(self, name="s3b", *extra):
        return self("bucket", "add", name, "--provider", "s3",
                    "--bucket-name", "remote-bkt", "--endpoint", DEAD_ENDPOINT,
                    "--path-style", "--access-key-id", "AKIDTEST",
                    "--secret-access-key-stdin", *extra, input=SECRET + "\n")

    def sql(self, query, *params):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()


def put_file(root, rel, data=b"x"):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def ctl(tmp_path):
    c = Ctl(tmp_path)
    out = c.ok("init")
    assert "created" in out
    return c


# ---------------------------------------------------------------- usage

def test_help_needs_no_config(tmp_path):
    env = {"BUCKETFS_CONFIG": str(tmp_path / "missing.conf")}
    p = run_ctl(["--help"], env=env)
    assert p.returncode == 0 and p.stderr == ""
    for cmd in ("init", "bucket add", "bucket test", "defaults set", "assign",
                "files", "import", "presign", "stats", "pending"):
        assert cmd in p.stdout
    p = run_ctl(["bucket", "add", "--help"], env=env)
    assert p.returncode == 0
    for opt in ("--provider", "--secret-access-key-stdin",
                "--secret-access-key-file", "--path", "--read-only"):
        assert opt in p.stdout
    p = run_ctl(["files", "--help"], env=env)
    assert p.returncode == 0 and "--context" in p.stdout
    assert "chat/ID/" in p.stdout and "default" in p.stdout
    p = run_ctl(["bucket", "--help"], env=env)
    assert p.returncode == 0 and "bucket remove" in p.stdout
    p = run_ctl(["stats", "--help"], env=env)
    assert p.returncode == 0 and "--json" in p.stdout


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["bucket"], ["bucket", "frob"], ["--bogus", "init"],
    ["bucket", "show"], ["bucket", "show", "a", "b"], ["defaults", "set", "x"],
    ["assign", "chat", "1"], ["bucket", "remove", "x", "--frob"],
    ["init", "--json"], ["bucket", "add", "x", "--force"],
    ["bucket", "add", "x", "--read-only=maybe", "--provider", "local"],
])
def test_usage_errors_exit_2(tmp_path, args):
    c = Ctl(tmp_path)
    c.fail(*args, code=2)
    assert not os.path.exists(c.db), "a usage error touched the database"


def test_config_from_env_then_missing(tmp_path):
    c = Ctl(tmp_path)
    p = run_ctl(["bucket", "list"], env={"BUCKETFS_CONFIG": c.cfg})
    assert p.returncode == 0, p.stderr
    assert "media" in p.stdout
    p = run_ctl(["-c", str(tmp_path / "nope.conf"), "bucket", "list"])
    assert p.returncode == 1
    assert len(p.stderr.splitlines()) == 1 and "nope.conf" in p.stderr


def test_config_error_names_file_line_key(tmp_path):
    c = Ctl(tmp_path)
    c.write_config("colour = blue\n")
    err = c.fail("bucket", "list")
    assert "bucketfs.conf:9: key 'colour'" in err


# ---------------------------------------------------------------- init

def test_init_creates_and_is_idempotent(tmp_path):
    c = Ctl(tmp_path)
    out = c.ok("init")
    assert "created master key file" in out and "created database" in out
    assert stat.S_IMODE(os.stat(c.key).st_mode) == 0o600
    with open(c.key, "rb") as f:
        key = f.read()
    assert c.sql("SELECT name, managed_by FROM storage_buckets") == \
        [("media", "config")]
    out = c.ok("init")
    assert "created" not in out
    with open(c.key, "rb") as f:
        assert f.read() == key
    assert len(c.sql("SELECT id FROM storage_buckets")) == 1


def test_config_buckets_visible_without_init(tmp_path):
    c = Ctl(tmp_path)
    rows = c.json("bucket", "list")
    assert [r["name"] for r in rows] == ["media"]
    assert rows[0]["managed_by"] == "config"


# ---------------------------------------------------------------- buckets

def test_bucket_list_text_and_json(ctl):
    ctl.add_scratch("--description", "scratch \"space\"")
    assert ctl.add_s3("s3b", "--prefix", "app1").returncode == 0
    out = ctl.ok("bucket", "list").splitlines()
    assert out[0].split() == ["NAME", "PROVIDER", "REMOTE", "DEFAULTS",
                              "FILES", "BYTES", "MANAGED_BY"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["media"] == ["media", "local", ctl.media, "general,chat",
                             "0", "0", "config"]
    assert rows["scratch"][1:] == ["local", ctl.scratch, "-", "0", "0",
                                   "bucketctl"]
    assert rows["s3b"][1:4] == ["s3", "remote-bkt/app1/", "-"]
    for js in (ctl.json("bucket", "list"),
               json.loads(ctl.ok("--json", "bucket", "list"))):
        by = {r["name"]: r for r in js}
        assert set(by) == {"media", "scratch", "s3b"}
        m = by["media"]
        for k in ("id", "name", "description", "provider", "remote",
                  "is_default", "is_default_chat", "is_default_forms",
                  "files", "bytes", "managed_by"):
            assert k in m
        assert m["is_default"] is True and m["is_default_chat"] is True
        assert m["is_default_forms"] is False
        assert by["scratch"]["description"] == "scratch \"space\""
        assert by["scratch"]["managed_by"] == "bucketctl"
        assert by["s3b"]["remote"] == "remote-bkt/app1/"


def test_bucket_show(ctl):
    assert ctl.add_s3().returncode == 0
    out = ctl.ok("bucket", "show", "s3b")
    kv = dict(line.split(": ", 1) for line in out.splitlines())
    assert kv["provider"] == "s3" and kv["bucket_name"] == "remote-bkt"
    assert kv["endpoint"] == DEAD_ENDPOINT and kv["path_style"] == "true"
    assert kv["region"] == "us-east-1"
    assert kv["access_key_id"] == "AKIDTEST"
    assert kv["secret_access_key"] == "(set)"
    assert kv["managed_by"] == "bucketctl"
    kv = dict(line.split(": ", 1)
              for line in ctl.ok("bucket", "show", "media").splitlines())
    assert kv["secret_access_key"] == "(not set)"
    assert kv["path"] == ctl.media and kv["managed_by"] == "config"
    js = ctl.json("bucket", "show", "s3b")
    assert js["name"] == "s3b" and js["secret_access_key"] == "(set)"
    assert SECRET not in json.dumps(js)
    ctl.fail("bucket", "show", "nosuch")


def test_add_local_makes_path_absolute_and_checks_it(ctl):
    os.makedirs(os.path.join(ctl.dir, "rel"))
    p = subprocess.run([BUCKETCTL, "-c", ctl.cfg, "bucket", "add", "rel",
                        "--provider", "local", "--path", "rel"],
                       cwd=ctl.dir, capture_output=True, text=True,
                       env=_env())
    assert p.returncode == 0, p.stderr
    assert ctl.json("bucket", "show", "rel")["path"] == \
        os.path.join(ctl.dir, "rel")
    ctl.fail("bucket", "add", "gone", "--provider", "local", "--path",
             os.path.join(ctl.dir, "missing"))
    put_file(ctl.dir, "afile")
    ctl.fail("bucket", "add", "file", "--provider", "local", "--path",
             os.path.join(ctl.dir, "afile"))
    ctl.fail("bucket", "add", "nopath", "--provider", "local")


@pytest.mark.parametrize("name", ["Upper", "_under", "a/b", ".hidden",
                                  "@meta", "x" * 64, ""])
def test_add_refuses_bad_names(ctl, name):
    err = ctl.fail("bucket", "add", name, "--provider", "local", "--path",
                   ctl.scratch)
    if name[:1] in (".", "@"):
        assert "reserved" in err
    assert not ctl.sql("SELECT 1 FROM storage_buckets WHERE name = ?", name)


def test_add_refuses_bad_settings(ctl):
    ctl.fail("bucket", "add", "x", "--provider", "ftp", code=2)
    ctl.fail("bucket", "add", "x", "--path", ctl.scratch, code=2)
    err = ctl.fail("bucket", "add", "x", "--provider", "s3")
    assert "--bucket-name" in err
    ctl.fail("bucket", "add", "x", "--provider", "r2", "--bucket-name", "b")
    ctl.fail("bucket", "add", "x", "--provider", "s3", "--bucket-name", "b",
             "--endpoint", "ftp://nope")
    ctl.fail("bucket", "add", "x", "--provider", "s3", "--bucket-name", "b",
             "--access-key-id", "AK")          # key id without secret
    ctl.fail("bucket", "add", "x", "--provider", "local", "--path",
             ctl.scratch, "--bucket-name", "b")
    ctl.add_scratch()
    ctl.fail("bucket", "add", "scratch", "--provider", "local", "--path",
             ctl.scratch)
    ctl.fail("bucket", "add", "media", "--provider", "local", "--path",
             ctl.scratch)
    assert sorted(r[0] for r in ctl.sql("SELECT name FROM storage_buckets")) \
        == ["media", "scratch"]


@pytest.mark.parametrize("form", [["--secret-access-key=%s" % SECRET],
                                  ["--secret-access-key", SECRET],
                                  ["--secret=%s" % SECRET]])
def test_secret_never_taken_from_argv(ctl, form):
    err = ctl.fail("bucket", "add", "s3x", "--provider", "s3",
                   "--bucket-name", "b", "--access-key-id", "AK", *form,
                   code=2)
    assert SECRET not in err
    assert not ctl.sql("SELECT 1 FROM storage_buckets WHERE name = 's3x'")


def db_bytes(ctl):
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            with open(ctl.db + suffix, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def test_secret_from_stdin_is_sealed(ctl):
    p = ctl.add_s3()
    assert p.returncode == 0, p.stderr
    assert SECRET not in p.stdout + p.stderr
    ctl.ok("bucket", "update", "s3b", "--description", "still sealed")
    ctl.ok("bucket", "list")
    raw = db_bytes(ctl)
    assert b"remote-bkt" in raw          # the row is really in there
    assert SECRET.encode() not in raw
    (cj,) = ctl.sql("SELECT config_json FROM storage_buckets WHERE name='s3b'")[0]
    assert SECRET not in cj and "v1:" in cj
    for args in (["bucket", "show", "s3b"], ["bucket", "list"]):
        assert SECRET not in ctl.ok(*args) + ctl.ok(*args, "--json")
    assert "(set)" in ctl.ok("bucket", "show", "s3b")
    # The stored secret still opens: presign signs with it.
    assert "X-Amz-Signature=" in ctl.ok("presign", "s3b/k")


def test_secret_stdin_edge_cases(ctl):
    p = ctl("bucket", "add", "e", "--provider", "s3", "--bucket-name", "b",
            "--access-key-id", "AK", "--secret-access-key-stdin", input="")
    assert p.returncode == 1 and "empty" in p.stderr
    p = ctl("bucket", "add", "e", "--provider", "s3", "--bucket-name", "b",
            "--access-key-id", "AK", "--secret-access-key-stdin",
            input="two\nlines\n")
    assert p.returncode == 1
    assert not ctl.sql("SELECT 1 FROM storage_buckets WHERE name = 'e'")


def test_secret_file_must_be_private(ctl):
    path = os.path.join(ctl.dir, "secret")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(path, 0o644)
    args = ["bucket", "add", "s3f", "--provider", "s3", "--bucket-name", "b",
            "--access-key-id", "AK", "--secret-access-key-file", path]
    err = ctl.fail(*args)
    assert "secret" in err and SECRET not in err
    os.chmod(path, 0o600)
    ctl.ok(*args)
    assert ctl.json("bucket", "show", "s3f")["secret_access_key"] == "(set)"
    assert SECRET.encode() not in db_bytes(ctl)
    ctl.fail("bucket", "add", "s3g", "--provider", "s3", "--bucket-name", "b",
             "--access-key-id", "AK", "--secret-access-key-file", path,
             "--secret-access-key-stdin", code=2)


def test_update_changes_only_given_options(ctl):
    ctl.add_scratch("--description", "before")
    ctl.ok("bucket", "update", "scratch", "--read-only")
    js = ctl.json("bucket", "show", "scratch")
    assert js["read_only"] is True and js["description"] == "before"
    assert js["path"] == ctl.scratch
    ctl.ok("bucket", "update", "scratch", "--read-only=false",
           "--description", "after")
    js = ctl.json("bucket", "show", "scratch")
    assert js["read_only"] is False and js["description"] == "after"
    ctl.ok("bucket", "update", "scratch", "--description", "")
    assert ctl.json("bucket", "show", "scratch")["description"] is None
    ctl.fail("bucket", "update", "scratch", code=2)       # nothing to change
    ctl.fail("bucket", "update", "nosuch", "--description", "x")
    ctl.fail("bucket", "update", "scratch", "--path",
             os.path.join(ctl.dir, "missing"))
    assert ctl.json("bucket", "show", "scratch")["path"] == ctl.scratch


def test_config_managed_refused(ctl):
    before = ctl.sql("SELECT * FROM storage_buckets")
    err = ctl.fail("bucket", "update", "media", "--description", "x")
    assert "config" in err
    err = ctl.fail("bucket", "remove", "media")
    assert "config" in err
    err = ctl.fail("bucket", "remove", "media", "--force")
    assert "config" in err
    assert ctl.sql("SELECT * FROM storage_buckets") == before


def test_remove_refusals_and_force(ctl):
    ctl.add_scratch()
    put_file(ctl.scratch, "chat/g1/a.txt", b"hello")
    put_file(ctl.scratch, "b.png", b"png")
    ctl.ok("import", "scratch")
    # Held by index rows.
    err = ctl.fail("bucket", "remove", "scratch")
    assert "2" in err and "force" in err
    ctl.ok("defaults", "set", "forms", "scratch")
    ctl.ok("assign", "chat", "g1", "scratch")
    ctl.ok("assign", "form", "f1", "media")
    err = ctl.fail("bucket", "remove", "scratch")
    assert "forms" in err and "chat/g1" in err
    assert ctl.json("bucket", "show", "scratch")["files"] == 2
    out = ctl.ok("bucket", "remove", "scratch", "--force")
    assert "removed" in out
    assert not ctl.sql("SELECT 1 FROM storage_buckets WHERE name='scratch'")
    assert ctl.sql("SELECT count(*) FROM files") == [(0,)]
    assert ctl.ok("assignments") == "form/f1 = media\n"
    assert ctl.ok("defaults") == "general = media\nchat = media\nforms =\n"
    # Never the remote objects.
    assert os.path.exists(os.path.join(ctl.scratch, "chat/g1/a.txt"))
    assert os.path.exists(os.path.join(ctl.scratch, "b.png"))
    ctl.fail("bucket", "remove", "scratch")               # gone now


def test_remove_unreferenced(ctl):
    ctl.add_scratch()
    assert ctl.ok("bucket", "remove", "scratch").startswith("removed")
    assert [r["name"] for r in ctl.json("bucket", "list")] == ["media"]


def test_bucket_test_local(ctl):
    ctl.add_scratch()
    out = ctl.ok("bucket", "test", "scratch").splitlines()
    steps = [line.split()[0] for line in out if line.endswith(" ms")]
    assert steps[-4:] == ["put", "get", "list", "delete"]
    for line in out:
        if line.endswith(" ms"):
            w = line.split()
            assert w[1] == "ok" and float(w[2]) >= 0.0
    assert os.listdir(ctl.scratch) == []        # the probe is gone
    ctl.ok("bucket", "update", "scratch", "--read-only")
    out = ctl.ok("bucket", "test", "scratch")
    assert "list ok" in out and "put ok" not in out
    ctl.fail("bucket", "test", "nosuch")


def test_bucket_test_probe_under_prefix(ctl):
    ctl.add_scratch("--prefix", "sub/")
    ctl.ok("bucket", "test", "scratch")
    assert os.listdir(ctl.scratch) in ([], ["sub"])
    if os.listdir(ctl.scratch):
        assert os.listdir(os.path.join(ctl.scratch, "sub")) == []


def test_bucket_test_unreachable(ctl):
    assert ctl.add_s3().returncode == 0
    err = ctl.fail("bucket", "test", "s3b")
    assert "put" in err and "failed" in err
    assert SECRET not in err


# ---------------------------------------------------------------- defaults

def test_defaults(ctl):
    assert ctl.ok("defaults") == "general = media\nchat = media\nforms =\n"
    ctl.add_scratch()
    assert ctl.ok("defaults", "set", "forms", "scratch").strip() == \
        "forms = scratch"
    ctl.ok("defaults", "set", "general", "scratch")
    assert ctl.ok("defaults") == \
        "general = scratch\nchat = media\nforms = scratch\n"
    assert ctl.json("defaults") == {"general": "scratch", "chat": "media",
                                    "forms": "scratch"}
    assert json.loads(ctl.ok("--json", "defaults"))["forms"] == "scratch"
    ctl.ok("defaults", "unset", "forms")
    assert ctl.ok("defaults").splitlines()[2] == "forms ="
    ctl.fail("defaults", "set", "bogus", "scratch")
    ctl.fail("defaults", "set", "chat", "nosuch")
    ctl.fail("defaults", "unset", "bogus")
    assert ctl.ok("defaults") == "general = scratch\nchat = media\nforms =\n"
    (row,) = ctl.sql("SELECT is_default, is_default_chat, is_default_forms "
                     "FROM storage_buckets WHERE name = 'scratch'")
    assert row == (1, 0, 0)


# ---------------------------------------------------------------- assignments

def test_assignments(ctl):
    ctl.add_scratch()
    assert ctl.ok("assignments") == ""
    assert ctl.json("assignments") == []
    ctl.ok("assign", "form", "f-9", "media")
    ctl.ok("assign", "chat", "zeta", "scratch")
    ctl.ok("assign", "chat", "alpha_1", "media")
    assert ctl.ok("assignments") == ("chat/alpha_1 = media\n"
                                     "chat/zeta = scratch\n"
                                     "form/f-9 = media\n")
    js = ctl.json("assignments")
    assert [(a["context_type"], a["context_id"], a["bucket"]) for a in js] == \
        [("chat", "alpha_1", "media"), ("chat", "zeta", "scratch"),
         ("form", "f-9", "media")]
    ctl.ok("assign", "chat", "zeta", "media")           # reassign
    ctl.ok("unassign", "chat", "alpha_1")
    assert ctl.ok("assignments") == "chat/zeta = media\nform/f-9 = media\n"
    ctl.fail("assign", "chat", "bad id", "media")
    ctl.fail("assign", "chat", "x" * 129, "media")
    ctl.fail("assign", "group", "g", "media")
    ctl.fail("assign", "chat", "g", "nosuch")
    ctl.fail("unassign", "chat", "bad/id")
    assert ctl.sql("SELECT count(*) FROM assignments") == [(2,)]


# ---------------------------------------------------------------- files, import

def test_import_and_files(ctl):
    ctl.add_scratch()
    put_file(ctl.scratch, "chat/g1/a.txt", b"hello")
    put_file(ctl.scratch, "chat/g2/b.pdf", b"%PDF")
    put_file(ctl.scratch, "form/f1/c.png", b"png!")
    put_file(ctl.scratch, "top.json", b"{}")
    os.makedirs(os.path.join(ctl.scratch, "emptydir"))
    out = ctl.ok("import", "scratch")
    assert "4" in out
    rows = ctl.json("files", "--bucket", "scratch")
    assert [r["key"] for r in rows] == ["chat/g1/a.txt", "chat/g2/b.pdf",
                                        "form/f1/c.png", "top.json"]
    r = rows[0]
    for k in ("bucket", "key", "size", "etag", "content_type", "mode", "uid",
              "gid", "mtime", "created_at", "updated_at"):
        assert k in r
    assert r["bucket"] == "scratch" and r["size"] == 5
    assert r["content_type"] == "text/plain"
    assert rows[1]["content_type"] == "application/pdf"
    assert stat.S_ISREG(r["mode"])
    assert abs(r["mtime"] - os.stat(os.path.join(ctl.scratch,
                                                 "chat/g1/a.txt")).st_mtime) < 2
    # Import again: rows updated, not duplicated.
    put_file(ctl.scratch, "top.json", b'{"a": 1}')
    ctl.ok("import", "scratch")
    assert ctl.sql("SELECT count(*) FROM files") == [(4,)]
    assert ctl.sql("SELECT size FROM files WHERE key = 'top.json'") == [(8,)]
    # Text listing.
    out = ctl.ok("files").splitlines()
    assert out[0].split() == ["BUCKET", "KEY", "SIZE", "MODE", "MTIME",
                              "CONTENT_TYPE"]
    assert len(out) == 5 and out[1].split()[:3] == ["scratch",
                                                    "chat/g1/a.txt", "5"]
    # Filters.
    assert [r["key"] for r in ctl.json("files", "--prefix", "chat/")] == \
        ["chat/g1/a.txt", "chat/g2/b.pdf"]
    assert ctl.json("files", "--bucket", "media") == []
    ctl.fail("files", "--bucket", "nosuch")
    ctl.fail("import", "nosuch")


def test_import_progress_on_a_tty(ctl):
    """Progress goes to stderr only when it is a terminal."""
    import pty
    ctl.add_scratch()
    for i in range(30):
        put_file(ctl.scratch, "d/f%02d.txt" % i, b"x" * i)
    p = ctl("import", "scratch")
    assert p.returncode == 0 and p.stderr == ""
    assert "30 objects" in p.stdout
    master, slave = pty.openpty()
    try:
        p = subprocess.run([BUCKETCTL, "-c", ctl.cfg, "import", "scratch"],
                           stdout=subprocess.PIPE, stderr=slave, text=True,
                           env=_env(), timeout=60)
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
    assert p.returncode == 0
    assert b"\rimported 30 objects" in seen
    assert ctl.sql("SELECT count(*) FROM files") == [(30,)]


def test_files_context(ctl):
    ctl.add_scratch()
    put_file(ctl.media, "chat/g1/in-media.txt")
    put_file(ctl.media, "form/f1/form-in-media.txt")
    put_file(ctl.scratch, "chat/g1/in-scratch.txt")
    put_file(ctl.scratch, "chat/g10/other.txt")
    put_file(ctl.scratch, "form/f1/form.txt")
    ctl.ok("import", "media")
    ctl.ok("import", "scratch")
    # Every bucket holding the context's files (files stored before a
    # re-routing stay where they are); "chat/g10/" is not under "chat/g1/".
    keys = [(r["bucket"], r["key"])
            for r in ctl.json("files", "--context", "chat/g1")]
    assert keys == [("media", "chat/g1/in-media.txt"),
                    ("scratch", "chat/g1/in-scratch.txt")]
    # Routing does not change what is listed...
    ctl.ok("assign", "chat", "g1", "scratch")
    keys = [(r["bucket"], r["key"])
            for r in ctl.json("files", "--context", "chat/g1")]
    assert keys == [("media", "chat/g1/in-media.txt"),
                    ("scratch", "chat/g1/in-scratch.txt")]
    # ...--bucket limits it.
    keys = [(r["bucket"], r["key"]) for r in
            ctl.json("files", "--context", "chat/g1", "--bucket", "scratch")]
    assert keys == [("scratch", "chat/g1/in-scratch.txt")]
    keys = [r["key"] for r in ctl.json("files", "--context", "form/f1")]
    assert keys == ["form/f1/form-in-media.txt", "form/f1/form.txt"]
    out = ctl.ok("files", "--context", "form/f1", "--bucket", "scratch")
    assert "form/f1/form.txt" in out and "in-media" not in out
    ctl.fail("files", "--context", "chat", code=2)
    ctl.fail("files", "--context", "room/1", code=2)
    ctl.fail("files", "--context", "chat/bad id", code=2)


def test_import_under_prefix(ctl):
    ctl.add_scratch("--prefix", "app1/")
    put_file(ctl.scratch, "app1/x/y.txt", b"12")
    put_file(ctl.scratch, "outside.txt", b"no")
    ctl.ok("import", "scratch")
    assert [r["key"] for r in ctl.json("files")] == ["app1/x/y.txt"]
    assert [r["key"] for r in ctl.json("files", "--prefix", "x/")] == \
        ["app1/x/y.txt"]
    assert ctl.json("files", "--prefix", "app1/") == []


def test_stats(ctl):
    ctl.add_scratch()
    put_file(ctl.scratch, "chat/g1/a", b"12345")
    put_file(ctl.scratch, "chat/g2/b", b"1")
    put_file(ctl.scratch, "form/f1/c", b"12")
    put_file(ctl.scratch, "chat/d", b"123")            # no ID folder: general
    put_file(ctl.scratch, "e", b"1234")
    ctl.ok("import", "scratch")
    out = ctl.ok("stats").splitlines()
    assert out[0].split() == ["BUCKET", "FILES", "BYTES", "CHAT", "FORM",
                              "GENERAL"]
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert rows["scratch"] == ["5", "15", "2", "1", "2"]
    assert rows["media"] == ["0", "0", "0", "0", "0"]
    (js,) = ctl.json("stats", "scratch")
    assert js["bucket"] == "scratch" and js["files"] == 5 and js["bytes"] == 15
    assert js["by_context"] == {"chat": {"files": 2, "bytes": 6},
                                "form": {"files": 1, "bytes": 2},
                                "general": {"files": 2, "bytes": 7}}
    assert len(ctl.json("stats")) == 2
    ctl.fail("stats", "nosuch")


# ---------------------------------------------------------------- presign

def test_presign(ctl):
    assert ctl.add_s3("s3b", "--prefix", "app1/").returncode == 0
    url = ctl.ok("presign", "s3b/dir/file.txt", "--expires", "60").strip()
    assert url.startswith(DEAD_ENDPOINT + "/remote-bkt/app1/dir/file.txt?")
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
    assert "AKIDTEST" in url and SECRET not in url
    assert "X-Amz-Expires=3600" in ctl.ok("presign", "s3b/f")
    assert "X-Amz-Expires=604800" in ctl.ok("presign", "s3b/f", "--expires",
                                            "604800")
    for bad in ("0", "604801", "-5", "10x"):
        ctl.fail("presign", "s3b/f", "--expires", bad, code=2)
    ctl.fail("presign", "s3b", code=2)
    ctl.fail("presign", "nosuch/f")
    ctl.fail("presign", "s3b/a/../b")
    err = ctl.fail("presign", "media/a.txt")
    assert err.strip() == \
        "bucketctl: presign is not supported by the local provider"


# ---------------------------------------------------------------- keys

def test_wrong_master_key(ctl):
    assert ctl.add_s3().returncode == 0
    with open(ctl.key, "w") as f:
        f.write("ab" * 32 + "\n")
    err = ctl.fail("presign", "s3b/k")
    assert "master key" in err
    ctl.fail("bucket", "test", "s3b")
    ctl.ok("bucket", "list")          # listing needs no key
    os.chmod(ctl.key, 0o644)
    err = ctl.fail("presign", "s3b/k")
    assert "master.key" in err
    os.unlink(ctl.key)
    err = ctl.fail("presign", "s3b/k")
    assert "init" in err


def test_config_secret_needs_key(tmp_path):
    c = Ctl(tmp_path)
    c.write_config("\n[bucket cfgs3]\nprovider = s3\nbucket_name = b\n"
                   "endpoint = %s\naccess_key_id = AK\n"
                   "secret_access_key = env:BFS_TEST_SECRET\n" % DEAD_ENDPOINT)
    env = {"BFS_TEST_SECRET": SECRET}
    p = c("bucket", "list", env=env)          # no key yet: cannot seal
    assert p.returncode == 1 and "init" in p.stderr
    assert c("init", env=env).returncode == 0
    p = c("bucket", "list", env=env)
    assert p.returncode == 0 and "cfgs3" in p.stdout
    assert SECRET.encode() not in db_bytes(c)
    p = c("presign", "cfgs3/x", env=env)
    assert p.returncode == 0 and "X-Amz-Signature=" in p.stdout


# ---------------------------------------------------------------- misc

def journal_row(ctl, bucket, key, age, size=10, attempts=0, error=None,
                etag=None):
    """Inserts an upload journal row as the daemon would, `age` seconds old."""
    import time
    now = int(time.time())
    con = sqlite3.connect(ctl.db, timeout=10)
    try:
        with con:
            con.execute(
                "INSERT INTO upload_journal (bucket_id, key, staging_path,"
                " base_etag, size, mode, uid, gid, mtime, created_at,"
                " updated_at, attempts, last_error) SELECT id, ?, ?, ?, ?,"
                " 33188, 1000, 1000, 1700000000, ?, ?, ?, ? FROM"
                " storage_buckets WHERE name = ?",
                (key, "/var/cache/bucketfs/stage/" + key.replace("/", "_"),
                 etag, size, now - age, now - age // 2, attempts, error,
                 bucket))
    finally:
        con.close()


def test_pending_empty(ctl):
    assert ctl.ok("pending") == "no pending uploads\n"
    assert ctl.json("pending") == []


def test_pending_lists_journal(ctl):
    ctl.add_scratch()
    journal_row(ctl, "scratch", "b/new.txt", 125)
    journal_row(ctl, "media", "chat/g1/a.bin", 7300, size=123456, attempts=3,
                error="upload failed: connection refused\nretrying", etag='"e1"')
    journal_row(ctl, "media", "late.txt", 5)
    out = ctl.ok("pending").splitlines()
    assert out[0].split() == ["BUCKET", "KEY", "SIZE", "AGE", "ATTEMPTS",
                              "LAST_ERROR"]
    # Oldest first; the error on one line.
    rows = [line.split(None, 5) for line in out[1:]]
    assert [r[:5] for r in rows] == [
        ["media", "chat/g1/a.bin", "123456", "2h", "3"],
        ["scratch", "b/new.txt", "10", "2m", "0"],
        ["media", "late.txt", "10", rows[2][3], "0"]]
    assert rows[0][5] == "upload failed: connection refused retrying"
    assert rows[1][5] == "-" and rows[2][5] == "-"
    assert rows[2][3] in ("5s", "6s", "7s")
    assert out[0].index("KEY") == out[1].index("chat/g1/a.bin")
    j = ctl.json("pending")
    assert [e["key"] for e in j] == ["chat/g1/a.bin", "b/new.txt", "late.txt"]
    e = j[0]
    assert set(e) == {"id", "bucket", "key", "staging_path", "base_etag",
                      "size", "mode", "uid", "gid", "mtime", "created_at",
                      "updated_at", "age_seconds", "attempts", "last_error"}
    assert e["bucket"] == "media" and e["size"] == 123456
    assert e["staging_path"] == "/var/cache/bucketfs/stage/chat_g1_a.bin"
    assert e["base_etag"] == '"e1"' and e["attempts"] == 3
    assert e["last_error"] == "upload failed: connection refused\nretrying"
    assert e["mode"] == 33188 and e["uid"] == 1000 and e["mtime"] == 1700000000
    assert 7300 <= e["age_seconds"] <= 7310
    assert e["updated_at"] - e["created_at"] == 3650
    assert j[1]["base_etag"] is None and j[1]["last_error"] is None
    # Listing is read-only.
    assert len(ctl.sql("SELECT * FROM upload_journal")) == 3


def test_remove_refused_while_pending(ctl):
    ctl.add_scratch()
    journal_row(ctl, "scratch", "doc.txt", 30)
    journal_row(ctl, "scratch", "img.png", 20)
    err = ctl.fail("bucket", "remove", "scratch")
    assert "bucket scratch has 2 pending uploads" in err and "force" in err
    assert ctl.sql("SELECT count(*) FROM upload_journal") == [(2,)]
    assert "scratch" in ctl.ok("pending")
    out = ctl.ok("bucket", "remove", "scratch", "--force")
    assert out.startswith("removed bucket scratch (dropped 2 pending uploads "
                          "(never uploaded), 0 index rows")
    assert ctl.sql("SELECT count(*) FROM upload_journal") == [(0,)]
    assert ctl.ok("pending") == "no pending uploads\n"


@pytest.mark.parametrize("args", [["bucket", "list"], ["bucket", "show", "media"],
                                  ["defaults"], ["assignments"], ["files"],
                                  ["stats"], ["stats", "media"], ["pending"]])
def test_json_before_and_after(ctl, args):
    a = json.loads(ctl.ok("--json", *args))
    b = json.loads(ctl.ok(*args, "--json"))
    assert a == b


def test_listing_sync_writes_nothing(ctl):
    ctl.add_scratch()
    before = ctl.sql("SELECT id, updated_at, config_json FROM storage_buckets")
    con = sqlite3.connect(ctl.db)
    v0 = con.execute("PRAGMA data_version").fetchone()[0]
    for args in (["bucket", "list"], ["defaults"], ["files"], ["stats"],
                 ["pending"]):
        ctl.ok(*args)
    v1 = con.execute("PRAGMA data_version").fetchone()[0]
    con.close()
    assert v0 == v1, "a read-only command wrote to the database"
    assert ctl.sql("SELECT id, updated_at, config_json FROM storage_buckets") \
        == before


# ---------------------------------------------------------------- real S3

@pytest.mark.parametrize("prov", ["s3", "r2"])
def test_s3_roundtrip(ctl, rgw, prov):
    """add with the secret on stdin, test, import, presign a real GET."""
    remote = "bfs-ctl-%s-%s" % (prov, os.urandom(5).hex())
    rgw.client.create_bucket(remote)
    try:
        rgw.client.put_ok(remote, "pre/chat/g1/hello.txt", b"hello world")
        rgw.client.put_ok(remote, "pre/x/y.bin", b"\0" * 100)
        rgw.client.put_ok(remote, "elsewhere.txt", b"not imported")
        extra = ["--region", rgw.region] if prov == "s3" else \
            ["--account-id", "test"]
        p = ctl("bucket", "add", "real", "--provider", prov,
                "--bucket-name", remote, "--endpoint", rgw.endpoint,
                "--path-style", "--prefix", "pre/", "--access-key-id",
                rgw.access_key, "--secret-access-key-stdin", *extra,
                input=rgw.secret_key + "\n")
        assert p.returncode == 0, p.stderr
        assert rgw.secret_key.encode() not in db_bytes(ctl)
        out = ctl.ok("bucket", "test", "real")
        for step in ("put", "get", "list", "delete"):
            assert "%s ok" % step in out
        assert not [k for k in rgw.client.list_keys(remote)
                    if ".bucketfs-probe-" in k]
        ctl.ok("import", "real")
        rows = ctl.json("files", "--bucket", "real")
        assert [(r["key"], r["size"]) for r in rows] == \
            [("pre/chat/g1/hello.txt", 11), ("pre/x/y.bin", 100)]
        assert rows[0]["content_type"] == "text/plain"
        (st,) = ctl.json("stats", "real")
        assert st["by_context"]["chat"]["files"] == 1
        url = ctl.ok("presign", "real/chat/g1/hello.txt", "--expires",
                     "120").strip()
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.read() == b"hello world"
        ctl.ok("bucket", "remove", "real", "--force")
        assert rgw.client.get(remote, "pre/x/y.bin") == b"\0" * 100
    finally:
        rgw.client.delete_bucket(remote)


# ---------------------------------------------------------------- daemon

def test_daemon_sees_bucketctl_changes(mount, backend):
    """A running daemon picks up defaults, assignments and new buckets
    within a second; files written through the mount are in `files`."""
    import time
    b1, b2 = backend("local", "b1"), backend("local", "b2")
    m = mount([b1])
    p = m.ctl("bucket", "add", "b2", "--provider", "local", "--path", b2.path)
    assert p.returncode == 0
    m.ctl("defaults", "set", "general", "b2")
    m.ctl("assign", "chat", "g7", "b1")
    want_d = "general = b2\n"
    want_a = "chat/g7 = b1\n"
    end = time.monotonic() + 3
    while time.monotonic() < end:
        with open(m.path(".defaults")) as f:
            d = f.read()
        with open(m.path(".assignments")) as f:
            a = f.read()
        if d.startswith(want_d) and a == want_a and os.path.isdir(m.path("b2")):
            break
        time.sleep(0.1)
    assert d.startswith(want_d) and a == want_a
    assert os.path.isdir(m.path("b2"))
    with open(m.path("b2", "note.txt"), "w") as f:
        f.write("abc")
    rows = json.loads(m.ctl("files", "--bucket", "b2", "--json").stdout)
    assert [(r["key"], r["size"]) for r in rows] == [("note.txt", 3)]
