"""conftest.py - fixtures of the bucketfs integration suite.

The suite mounts the REAL daemon (binaries from $BUCKETFS_BUILD, default
<repo>/build) on a real FUSE mount point, against a real S3 server: a
private Ceph RGW started once per session (rgw.py), or an already running
one named by $BUCKETFS_RGW_ENDPOINT (then it must know the fixed test keys
of rgw.py).  Fixtures:

  rgw        session: the server (endpoint, access_key, secret_key, client)
  azurite    session: an Azurite blob server (azurite.py), started on
             loopback the first time an azure backend is asked for
  provider   "local" | "s3" | "r2", plus "azure" in the modules named in
             AZURE_MODULES and "gcs" (against RGW) in GCS_MODULES; tests
             that take it run once per provider
  backend    factory: backend(provider, name="b1", ...) makes a fresh remote
             bucket (s3, r2; unique name) or folder (local) and returns a
             Backend that knows its config section and reads the stored
             objects behind the daemon's back
  mount      factory: mount([backends], options=..., single=...,
             daemonize=...) writes a config, runs `bucketctl init`, starts
             the daemon and waits for the mount; returns a Mount
  mb         one mounted bucket "b1" of `provider` (the common case)

Teardown unmounts every mount (fusermount3 -u, then -uz when busy), reaps
every daemon (kill -9 after 30 s), and fails the test when a daemon exited
non-zero or its stderr holds a sanitizer report.  Ctrl-C, SIGTERM and
atexit run the same cleanup, and the RGW cluster is always stopped.
"""

import atexit
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import azurite as azurite_mod  # noqa: E402
import helpers  # noqa: E402
import rgw as rgw_mod  # noqa: E402
import pg as pg_mod  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("BUCKETFS_BUILD")
                        or os.path.join(REPO, "build"))
BUCKETFS = os.path.join(BUILD, "bucketfs")
BUCKETCTL = os.path.join(BUILD, "bucketctl")
PROVIDERS = ["local", "s3", "r2"]
# modules whose provider-parametrized tests also run on azure (Azurite)
AZURE_MODULES = {"test_files", "test_caches", "test_badinput", "test_service",
                 "test_azure", "test_xattr", "test_views", "test_perms"}
# modules whose provider-parametrized tests also run on gcs pointed at RGW
# (endpoint override + path_style): the gcs preset through the S3 code
GCS_MODULES = {"test_files"}
MOUNT_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "LeakSanitizer", "WARNING: ThreadSanitizer")

_live_mounts = set()           # Mount objects not yet unmounted
_clusters = []                 # Rgw objects to stop at exit
_azurites = []                 # Azurite servers to stop at exit


def _cleanup_all():
    for m in list(_live_mounts):
        try:
            m.unmount(check=False)
        except Exception:      # at exit: best effort, keep going
            pass
    for c in _clusters + _azurites:
        try:
            c.stop()
        except Exception:
            pass


atexit.register(_cleanup_all)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "memory: peak RSS bounds of the daemon; meaningful only "
        "on a build without sanitizers (skipped on one); `make check` runs "
        "them against build/ with -m memory")
    # SIGTERM/SIGHUP: unwind like Ctrl-C so fixture finalizers unmount and
    # stop the cluster (the default action would skip them and atexit).
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


def daemon_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def need_binaries():
    for b in (BUCKETFS, BUCKETCTL):
        if not os.access(b, os.X_OK):
            pytest.fail("%s not built (make, or set BUCKETFS_BUILD)" % b,
                        pytrace=False)


def sanitized_build():
    """Why the daemon under test is a sanitizer build (ASan, UBSan, TSan
    shadow memory and quarantine inflate its RSS), or None: the Makefile
    sets BUCKETFS_SANITIZED=1 for its sanitizer runs; otherwise the
    binary is searched for the sanitizer runtimes' init symbols."""
    if os.environ.get("BUCKETFS_SANITIZED", "") not in ("", "0"):
        return "BUCKETFS_SANITIZED=%s" % os.environ["BUCKETFS_SANITIZED"]
    try:
        with open(BUCKETFS, "rb") as f:
            data = f.read()
    except OSError:
        return None
    for sym in (b"__asan_init", b"__tsan_init", b"__ubsan_handle_",
                b"__msan_init"):
        if sym in data:
            return "%s is built with %s" % (BUCKETFS, sym.decode())
    return None


def sanitizer_reports(text):
    return [line for line in text.splitlines()
            if any(p in line for p in SANITIZER_PATTERNS)]


def tail(text, n=60):
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------- server

class ExternalRgw:
    """A server started elsewhere (scripts/rgw.sh), same fixed keys."""

    def __init__(self, endpoint):
        self.endpoint = endpoint.rstrip("/")
        self.access_key = rgw_mod.ACCESS_KEY
        self.secret_key = rgw_mod.SECRET_KEY
        self.region = "us-east-1"


@pytest.fixture(scope="session")
def rgw():
    ext = os.environ.get("BUCKETFS_RGW_ENDPOINT")
    if ext:
        server = ExternalRgw(ext)
    else:
        rgw_mod.reap_orphans()
        server = rgw_mod.Rgw(owner_pid=os.getpid())
        _clusters.append(server)
        try:
            server.start()
        except rgw_mod.RgwError as e:
            pytest.fail("cannot start the test RGW:\n%s" % e, pytrace=False)
    server.client = helpers.S3Client(server.endpoint, server.access_key,
                                     server.secret_key, server.region)
    try:
        yield server
    finally:
        if not ext:
            server.stop()


@pytest.fixture(scope="session")
def pg():
    """A private PostgreSQL cluster (pg.py) for the whole session, stopped
    and removed at its end, also when tests failed (and at exit)."""
    server = pg_mod.Pg()
    _clusters.append(server)
    try:
        server.start()
    except pg_mod.PgError as e:
        server.stop()
        pytest.fail("cannot start the test PostgreSQL:\n%s" % e,
                    pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """An Azurite blob server on a free loopback port with a private data
    folder; stopped at the end of the session (also on failure)."""
    server = azurite_mod.Azurite(str(tmp_path_factory.mktemp("azurite")))
    _azurites.append(server)
    try:
        server.start()
    except azurite_mod.AzuriteError as e:
        pytest.fail("cannot start Azurite:\n%s" % e, pytrace=False)
    server.client = helpers.AzureClient(server.endpoint)
    try:
        yield server
    finally:
        server.stop()


def unique_bucket_name(tag="t"):
    return "bfs-%s-%s" % (tag, uuid.uuid4().hex[:12])


# ---------------------------------------------------------------- backends

class Backend:
    """One bucket of the config: its section and direct access to its
    stored objects (the S3 server or the local folder).  Keys given to the
    accessors are relative to the bucket's prefix."""

    def __init__(self, provider, name, workdir, rgw=None, remote=None,
                 prefix="", create=True, **extra):
        self.provider = provider
        self.name = name
        self.prefix = prefix
        self.extra = extra          # more config keys (default, read_only)
        self.rgw = rgw
        self.remote = None
        self.path = None
        if provider == "local":
            self.path = os.path.join(workdir, "local-" + name)
            os.makedirs(self.path, exist_ok=True)
        elif provider == "azure":
            self.client = rgw.client
            self.remote = remote or unique_bucket_name(
                name.replace(".", "-").replace("_", "-"))
            if create:
                self.client.create_bucket(self.remote)
            self.secret_file = os.path.join(workdir, "secret-" + name)
            fd = os.open(self.secret_file,
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(helpers.AZURITE_KEY + "\n")
        else:
            self.client = rgw.client
            self.remote = remote or unique_bucket_name(name.replace(".", "-"))
            if create:
                self.client.create_bucket(self.remote)
            self.secret_file = os.path.join(workdir, "secret-" + name)
            fd = os.open(self.secret_file,
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(rgw.secret_key + "\n")

    def section(self):
        """The [bucket NAME] section text."""
        lines = ["[bucket %s]" % self.name, "provider = %s" % self.provider]
        if self.provider == "local":
            lines.append("path = %s" % self.path)
        elif self.provider == "azure":
            lines += ["bucket_name = %s" % self.remote,
                      "endpoint = %s" % self.rgw.endpoint,
                      "account_name = %s" % helpers.AZURITE_ACCOUNT,
                      "account_key_file = %s" % self.secret_file]
        else:
            lines += ["bucket_name = %s" % self.remote,
                      "endpoint = %s" % self.rgw.endpoint,
                      "path_style = true",
                      "access_key_id = %s" % self.rgw.access_key,
                      "secret_access_key_file = %s" % self.secret_file]
            if self.provider == "s3":
                lines.append("region = %s" % self.rgw.region)
            elif self.provider == "r2":
                lines.append("account_id = test")
            # gcs: the preset's region "auto", endpoint and path_style
            # overridden to reach RGW
        if self.prefix:
            lines.append("prefix = %s" % self.prefix)
        for k, v in self.extra.items():
            lines.append("%s = %s" % (k, v))
        return "\n".join(lines) + "\n"

    # ---- direct access ----
    def _local(self, rel):
        return os.path.join(self.path, self.prefix + rel)

    def read(self, rel):
        """The stored bytes of object rel, or None when absent."""
        if self.provider == "local":
            try:
                fd = os.open(self._local(rel), os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                return None
            with os.fdopen(fd, "rb") as f:
                return f.read()
        return self.client.get(self.remote, self.prefix + rel)

    def exists(self, rel):
        if self.provider == "local":
            return os.path.lexists(self._local(rel.rstrip("/")))
        return self.client.head(self.remote, self.prefix + rel) is not None

    def meta(self, rel):
        """x-amz-meta-* headers of rel (s3, r2; x-ms-meta-* on azure),
        names without the prefix: {"mode": "33188", ...}; None when
        absent."""
        h = self.client.head(self.remote, self.prefix + rel)
        if h is None:
            return None
        pfx = "x-ms-meta-" if self.provider == "azure" else "x-amz-meta-"
        return {k[len(pfx):]: v for k, v in h.items() if k.startswith(pfx)
                and k != "x-ms-meta-hdi_isfolder"}

    def headers(self, rel):
        return self.client.head(self.remote, self.prefix + rel)

    def put(self, rel, data=b"", full_key=False):
        """Plants an object behind the daemon's back; returns the HTTP
        status (s3, r2) or 200 (local)."""
        if self.provider == "local":
            p = self._local(rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
            return 200
        key = rel if full_key else self.prefix + rel
        return self.client.put(self.remote, key, data)

    def keys(self):
        """Every stored key under the prefix, relative to it; folders of a
        local bucket appear as "a/" markers like S3 folder markers."""
        if self.provider != "local":
            return [k[len(self.prefix):] for k in
                    self.client.list_keys(self.remote, self.prefix)]
        root = os.path.join(self.path, self.prefix)
        out = []
        for d, dirs, files in os.walk(root):
            rel = os.path.relpath(d, root)
            rel = "" if rel == "." else rel + "/"
            out += [rel + x + "/" for x in dirs]
            out += [rel + x for x in files]
        return sorted(out)


def pytest_generate_tests(metafunc):
    """The provider parametrization: PROVIDERS, plus azure in the modules
    of AZURE_MODULES (a test that parametrizes "provider" itself keeps
    its own list); BUCKETFS_TEST_PROVIDERS=a,b keeps only those."""
    if "provider" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "provider" in (names.split(",") if isinstance(names, str)
                          else names):
            return
    provs = list(PROVIDERS)
    mod = metafunc.module.__name__.rsplit(".", 1)[-1]
    if mod in GCS_MODULES:
        provs.append("gcs")
    if mod in AZURE_MODULES:
        provs.append("azure")
    only = os.environ.get("BUCKETFS_TEST_PROVIDERS")
    if only:
        provs = [p for p in provs if p in only.split(",")]
    metafunc.parametrize("provider", provs)


@pytest.fixture
def backend(request, tmp_path):
    """Factory: backend(provider, name="b1", **config) -> Backend."""
    def make(prov, name="b1", **kw):
        if prov == "azure":
            server = request.getfixturevalue("azurite")
        else:
            server = request.getfixturevalue("rgw") if prov != "local" \
                else None
        return Backend(prov, name, str(tmp_path), rgw=server, **kw)
    return make


# ---------------------------------------------------------------- mounts

class MountError(AssertionError):
    pass


class Mount:
    """A config in a private folder and the daemon mounted from it."""

    def __init__(self, workdir, backends, options=(), single=None,
                 daemonize=False, conf_extra="", pg=None):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.mnt = os.path.join(workdir, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.cfg = os.path.join(workdir, "bucketfs.conf")
        self.db = os.path.join(workdir, "bucketfs.db")
        self.log = os.path.join(workdir, "daemon.stderr")
        self.backends = {b.name: b for b in backends}
        self.options = list(options)
        if single:
            self.options.append("bucket=" + single)
        self.daemonize = daemonize
        self.proc = None
        self.pid = None
        self.runs = 0
        self.pg = pg
        database = "bucketfs.db"
        if pg:
            # BUCKETFS_TEST_DATABASE=postgresql: a fresh PostgreSQL
            # database of the session's cluster instead of the SQLite file.
            self.pgdb = pg.new_database()
            database = "%s\ndatabase_password_file = db.password" % (
                pg.uri(self.pgdb))
            fd = os.open(os.path.join(workdir, "db.password"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pg.password + "\n")
        text = ("[bucketfs]\n"
                "database = " + database + "\n"
                "cache_dir = cache\n"
                "master_key_file = master.key\n"
                "log_level = debug\n" + conf_extra + "\n")
        for b in backends:
            text += "\n" + b.section()
        with open(self.cfg, "w") as f:
            f.write(text)

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def ctl(self, *args, check=True, input=None, timeout=60):
        """Runs bucketctl -c CFG ARGS; CompletedProcess (text)."""
        p = subprocess.run([BUCKETCTL, "-c", self.cfg] + list(args),
                           input=input, capture_output=True, text=True,
                           timeout=timeout, env=daemon_env())
        if check and p.returncode != 0:
            raise MountError("bucketctl %s exited %d:\n%s%s"
                             % (" ".join(args), p.returncode, p.stdout,
                                p.stderr))
        reports = sanitizer_reports(p.stderr)
        if reports:
            raise MountError("bucketctl %s: sanitizer:\n%s"
                             % (" ".join(args), p.stderr))
        return p

    def stderr(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def argv(self):
        a = [BUCKETFS]
        if not self.daemonize:
            a.append("-f")
        for o in self.options:
            a += ["-o", o]
        return a + [self.cfg, self.mnt]

    def start(self):
        """Starts the daemon and waits until the mount is ready."""
        self.runs += 1
        with open(self.log, "a") as f:
            f.write("==== start %d: %s\n" % (self.runs, " ".join(self.argv())))
        err = open(self.log, "ab")
        _live_mounts.add(self)
        try:
            if self.daemonize:
                p = subprocess.run(self.argv(), stdin=subprocess.DEVNULL,
                                   stdout=err, stderr=err, env=daemon_env(),
                                   timeout=MOUNT_TIMEOUT + 10)
                if p.returncode != 0:
                    raise MountError("bucketfs (daemonizing) exited %d:\n%s"
                                     % (p.returncode, tail(self.stderr())))
                if not os.path.ismount(self.mnt):
                    raise MountError("bucketfs (daemonizing) exited 0 but "
                                     "%s is not mounted:\n%s"
                                     % (self.mnt, tail(self.stderr())))
                self.pid = find_daemon_pid(self.cfg)
                return
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err,
                                         env=daemon_env(),
                                         start_new_session=True)
        finally:
            err.close()
        end = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.mnt):
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                _live_mounts.discard(self)
                raise MountError("bucketfs exited %d before mounting:\n%s"
                                 % (rc, tail(self.stderr())))
            if time.monotonic() > end:
                raise MountError("%s not mounted after %d s:\n%s"
                                 % (self.mnt, MOUNT_TIMEOUT,
                                    tail(self.stderr())))
            time.sleep(0.05)

    def unmount(self, check=True):
        """Unmounts and reaps the daemon.  With check, raises MountError
        when the daemon did not exit 0 by itself or reported a sanitizer
        error.  Safe to call when not mounted."""
        problems = []
        if os.path.ismount(self.mnt):
            self._wait_handles_released()
            p = subprocess.run(["fusermount3", "-u", self.mnt],
                               capture_output=True, text=True)
            if p.returncode != 0:
                problems.append("fusermount3 -u failed (%s); used -uz"
                                % p.stderr.strip())
                subprocess.run(["fusermount3", "-uz", self.mnt],
                               capture_output=True)
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
                problems.append("daemon did not exit within %d s of the "
                                "unmount; killed" % EXIT_TIMEOUT)
            if rc != 0 and not problems:
                problems.append("daemon exited with status %d" % rc)
            self.proc = None
        elif self.pid is not None:
            if not wait_pid_gone(self.pid, self.cfg, EXIT_TIMEOUT):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                wait_pid_gone(self.pid, self.cfg, 5)
                problems.append("daemonized daemon did not exit within %d s"
                                " of the unmount; killed" % EXIT_TIMEOUT)
            self.pid = None
        _live_mounts.discard(self)
        reports = sanitizer_reports(self.stderr())
        if reports:
            problems.append("sanitizer reports:\n" + "\n".join(reports))
        if problems and check:
            raise MountError("; ".join(problems) + "\n---- daemon stderr "
                             "(tail) ----\n" + tail(self.stderr(), 80))

    def _wait_handles_released(self, timeout=3.0):
        """Waits (bounded) until the kernel has delivered the RELEASE and
        RELEASEDIR of every handle the test closed: both are sent in the
        background, and one still queued when fusermount3 -u ends the
        session is never processed, so libfuse's own folder handle leaks
        (libfuse issue #647) and LeakSanitizer reports it.  .metrics
        counts open handles, this read's own included; single-bucket
        mounts have no .metrics and skip the wait."""
        path = os.path.join(self.mnt, ".metrics")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                return
            m = re.search(r"^bucketfs_open_handles (\d+)$", text, re.M)
            if not m or int(m.group(1)) <= 1:
                return
            time.sleep(0.02)

    def remount(self):
        self.unmount()
        self.start()

    # ---- the index ----
    def index(self):
        """{(bucket name, key): row dict} from the files table."""
        if self.pg:
            rows = self.pg.sql_json(
                self.pgdb, "SELECT coalesce(json_agg(x), '[]') FROM (SELECT"
                " b.name AS bucket, f.* FROM files f JOIN storage_buckets b"
                " ON b.id = f.bucket_id) x")
            return {(r["bucket"], r["key"]): r for r in rows}
        con = sqlite3.connect(self.db, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            rows = con.execute(
                "SELECT b.name AS bucket, f.* FROM files f "
                "JOIN storage_buckets b ON b.id = f.bucket_id").fetchall()
        finally:
            con.close()
        return {(r["bucket"], r["key"]): dict(r) for r in rows}

    def wait_index(self, pred, timeout=2.0):
        """Polls the index until pred(index) is true; returns the index
        (the last one read, for the assertion message)."""
        end = time.monotonic() + timeout
        while True:
            idx = self.index()
            if pred(idx) or time.monotonic() > end:
                return idx
            time.sleep(0.1)


def find_daemon_pid(cfg):
    """The pid of the daemon: the process whose command line names cfg and
    its mount point (argv[0] is not checked: a wrapper may exec)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        mnt = os.path.join(os.path.dirname(cfg), "mnt").encode()
        if cfg.encode() in args and mnt in args and int(d) != os.getpid():
            return int(d)
    return None


def wait_pid_gone(pid, cfg, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if find_daemon_pid(cfg) != pid:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def mount(tmp_path, request):
    """Factory: mount(backends, options=(), single=None, daemonize=False,
    conf_extra="", init=True, start=True) -> Mount (`bucketctl init` run
    and mounted unless told otherwise).  With BUCKETFS_TEST_DATABASE=
    postgresql each Mount's catalog is a fresh PostgreSQL database."""
    need_binaries()
    made = []
    pgsrv = None
    if os.environ.get("BUCKETFS_TEST_DATABASE") == "postgresql":
        pgsrv = request.getfixturevalue("pg")

    def make(backends, init=True, start=True, **kw):
        if pgsrv and "pg" not in kw:
            kw["pg"] = pgsrv
        m = Mount(str(tmp_path / ("m%d" % len(made))), backends, **kw)
        made.append(m)
        if init:
            m.ctl("init")
        if start:
            m.start()
        return m

    yield make
    problems = []
    for m in made:
        try:
            m.unmount()
        except MountError as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def mb(provider, backend, mount):
    """One bucket "b1" of the parametrized provider, mounted.  Attributes:
    m (Mount), b (Backend), dir (the bucket's folder in the mount)."""
    b = backend(provider)
    m = mount([b])

    class MB:
        pass
    r = MB()
    r.m, r.b, r.dir = m, b, m.path("b1")
    r.provider = provider
    r.p = lambda *parts: os.path.join(r.dir, *parts)
    return r
