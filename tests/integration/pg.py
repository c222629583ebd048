#!/usr/bin/python3
"""pg.py - a private PostgreSQL cluster for tests.

How it works: initdb builds a cluster in a fresh private folder (mkdtemp
under /tmp, handed to the unprivileged user `nobody`, since PostgreSQL
refuses to run as root); the server runs as that user, listens on a free
loopback port only (and on a unix socket inside the folder), with
scram-sha-256 password authentication for every connection.  start()
creates the test role (LOGIN, CREATEDB) and waits until it can log in;
new_database() makes a fresh database owned by it for each test.  stop()
stops the server (pg_ctl stop -m immediate, then a kill of the
postmaster pid it recorded, after checking its /proc cmdline names this
folder) and removes the folder; conftest.py calls it from a finalizer and
at exit, so it also runs when a test fails.

Queries from tests go through psql (-At, one value per line), with the
password in PGPASSWORD of that child only.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from rgw import free_port

PG_BIN = "/usr/lib/postgresql/15/bin"
RUN_AS = "nobody"
SUPERUSER = "bfs_admin"
ROLE = "bfs"
START_TIMEOUT = 60.0


class PgError(Exception):
    pass


def available():
    """True when the PostgreSQL server binaries are installed."""
    return all(os.access(os.path.join(PG_BIN, b), os.X_OK)
               for b in ("initdb", "pg_ctl", "postgres", "psql"))


class Pg:
    """After start(): host, port, role, password, root."""

    def __init__(self):
        self.root = None
        self.port = None
        self.host = "127.0.0.1"
        self.role = ROLE
        self.password = "pw-" + uuid.uuid4().hex
        self.admin_password = "adm-" + uuid.uuid4().hex
        self.user = pwd.getpwnam(RUN_AS)
        self.started = False
        self.opts = ""

    # ---- running things as the cluster's user ----
    def _demote(self):
        os.setgid(self.user.pw_gid)
        os.setgroups([])
        os.setuid(self.user.pw_uid)

    def _env(self):
        env = {"PATH": "/usr/bin:/bin", "HOME": self.root, "LANG": "C",
               "LC_ALL": "C"}
        return env

    def _run(self, argv, timeout=60):
        p = subprocess.run(argv, capture_output=True, text=True,
                           preexec_fn=self._demote, env=self._env(),
                           timeout=timeout, cwd=self.root)
        if p.returncode != 0:
            raise PgError("%s exited %d:\n%s%s" % (" ".join(argv),
                                                   p.returncode, p.stdout,
                                                   p.stderr))
        return p

    @property
    def data(self):
        return os.path.join(self.root, "data")

    def start(self):
        if not available():
            raise PgError("PostgreSQL 15 is not installed (%s); run "
                          "scripts/deps.sh test" % PG_BIN)
        self.root = tempfile.mkdtemp(prefix="bfs-pg-")
        os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.root, 0o700)
        pwfile = os.path.join(self.root, "admin.pw")
        with open(pwfile, "w") as f:
            f.write(self.admin_password + "\n")
        os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data,
                   "-U", SUPERUSER, "--pwfile", pwfile,
                   "--auth", "scram-sha-256", "-E", "UTF8",
                   "--locale", "C", "--no-sync"], timeout=120)
        os.unlink(pwfile)
        end = time.monotonic() + START_TIMEOUT
        while True:
            self.port = free_port()
            opts = ("-c listen_addresses=127.0.0.1 -c port=%d "
                    "-c unix_socket_directories=%s -c fsync=off "
                    "-c max_connections=100 -c shared_buffers=16MB"
                    % (self.port, self.root))
            try:
                self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                           "-l", os.path.join(self.root, "server.log"),
                           "-w", "-t", "60", "-o", opts, "start"],
                          timeout=90)
                self.opts = opts
                break
            except PgError:
                # The port may have been taken meanwhile; retry a new one.
                if time.monotonic() > end:
                    raise PgError("postgres did not start:\n" + self.log())
        self.started = True
        self.admin_sql("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'"
                       % (ROLE, self.password))
        return self

    def restart(self):
        """Restarts the server (every client connection is dropped)."""
        # -l again: without it the new server would write to our pipes.
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                   "-l", os.path.join(self.root, "server.log"),
                   "-m", "fast", "-w", "-t", "60", "restart"], timeout=90)

    def pause(self):
        """Stops the server (fast shutdown: clients are disconnected) and
        keeps its data and port for resume(); stop() still cleans up."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                   "-m", "fast", "-w", "-t", "60", "stop"], timeout=90)

    def resume(self):
        """Starts the paused server again on the same port."""
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                   "-l", os.path.join(self.root, "server.log"),
                   "-w", "-t", "60", "-o", self.opts, "start"], timeout=90)

    def log(self):
        try:
            with open(os.path.join(self.root, "server.log"),
                      errors="replace") as f:
                return f.read()[-4000:]
        except (OSError, TypeError):
            return ""

    # ---- SQL ----
    def _psql(self, sql, user, password, db):
        env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": password,
               "PGCONNECT_TIMEOUT": "10"}
        p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-At",
                            "-v", "ON_ERROR_STOP=1", "-h", self.host,
                            "-p", str(self.port), "-U", user, "-d", db,
                            "-c", sql], capture_output=True, text=True,
                           env=env, timeout=60)
        if p.returncode != 0:
            raise PgError("psql %r: %s" % (sql, p.stderr.strip()))
        return p.stdout

    def admin_sql(self, sql, db="postgres"):
        return self._psql(sql, SUPERUSER, self.admin_password, db)

    def sql(self, db, sql):
        """Runs sql in db as the test role; rows as lists of strings."""
        out = self._psql(sql, ROLE, self.password, db)
        return [line.split("|") for line in out.splitlines() if line]

    def sql_json(self, db, sql):
        """One JSON value (sql selects exactly one), parsed."""
        return json.loads(self._psql(sql, ROLE, self.password, db))

    def new_database(self, tag="t"):
        name = "%s_%s" % (tag, uuid.uuid4().hex[:12])
        self.admin_sql("CREATE DATABASE %s OWNER %s" % (name, ROLE))
        return name

    def uri(self, db, sslmode="disable"):
        return "postgresql://%s@%s:%d/%s?sslmode=%s" % (
            self.role, self.host, self.port, db, sslmode)

    # ---- stop ----
    def _postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if self.data.encode() not in f.read():
                    return None
            return pid
        except (OSError, ValueError):
            return None

    def stop(self):
        if not self.root:
            return
        if self.started:
            try:
                self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data,
                           "-m", "immediate", "-w", "-t", "30", "stop"],
                          timeout=60)
            except (PgError, subprocess.TimeoutExpired):
                pid = self._postmaster_pid()
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
