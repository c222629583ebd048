#!/usr/bin/python3
"""rgw.py - a private single-node Ceph cluster with radosgw, for tests.

How it works: everything lives in one private folder (config, monitor and
OSD data, a sparse bluestore block file, logs, admin sockets, pid files), so
the cluster never touches /etc/ceph, /var/lib/ceph or /var/run/ceph and can
run next to any other cluster on the machine.  One monitor listens on a free
loopback port, one OSD keeps its data in bluestore over a sparse file, and
radosgw serves S3 on a second free loopback port.  No cephx (auth none), all
messenger modes crc: the settings and why each is needed are in
DEVELOPERS.md.  The daemons run in the foreground of their own session
(start_new_session), so they outlive the Python process that started them
(scripts/rgw.sh) while their pids are written to DIR/run/*.pid; stop() kills
exactly those pids (after checking /proc/PID/cmdline names this folder, so a
recycled pid is never hit) and removes the folder.

Used as a module by conftest.py (Rgw(...).start() / .stop()) and as a CLI by
scripts/rgw.sh:  rgw.py start DIR [PORT]  |  rgw.py stop DIR
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ACCESS_KEY = "BFSTESTACCESSKEY0001"
SECRET_KEY = "bfsTestSecretKey0000000000000000000000001"
USER_ID = "bfstest"
MARKER = ".bfs-rgw"            # a folder holding this file is ours to wipe
OWNER = "owner.pid"            # the test session owning an automatic cluster
START_TIMEOUT = 120.0          # seconds for the whole start
BLOCK_SIZE = 16 << 30          # sparse bluestore block file


def free_port():
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class RgwError(Exception):
    pass


class Rgw:
    """A private cluster in `root` (a new /tmp folder when None) serving S3
    on `port` (a free one when None).  After start(): endpoint, access_key,
    secret_key, region."""

    def __init__(self, root=None, port=None, owner_pid=None):
        self.root = os.path.abspath(root) if root else None
        self.owner_pid = owner_pid    # reap_orphans() stops it once dead
        self.port = int(port) if port else None
        self.mon_port = None
        self.endpoint = None
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = "us-east-1"
        self._procs = {}

    # ---- paths ----
    def _p(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def conf(self):
        return self._p("ceph.conf")

    # ---- start ----
    def start(self):
        """Starts mon, osd and radosgw, creates the test user.  On failure
        stops whatever started, prints the tail of the logs to stderr and
        raises RgwError (the folder is removed)."""
        if self.root is None:
            self.root = tempfile.mkdtemp(prefix="bfs-rgw-", dir="/tmp")
        else:
            prepare_dir(self.root)
        with open(self._p(MARKER), "w") as f:
            f.write("bucketfs test cluster\n")
        if self.owner_pid:
            with open(self._p(OWNER), "w") as f:
                f.write("%d\n" % self.owner_pid)
        for d in ("run", "log", "mon.a", "osd.0"):
            os.makedirs(self._p(d), exist_ok=True)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            self._start(deadline)
        except BaseException as e:
            tail = self.log_tail()
            self.stop()
            if isinstance(e, RgwError):
                raise RgwError("%s\n%s" % (e, tail)) from None
            raise
        return self

    def _start(self, deadline):
        if self.port is None:
            self.port = free_port()
        elif not port_free(self.port):
            raise RgwError("rgw: port %d is in use" % self.port)
        self.mon_port = free_port()
        while self.mon_port == self.port:
            self.mon_port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        fsid = str(uuid.uuid4())
        self._write_conf(fsid)
        with open(self._p("block"), "wb") as f:
            f.truncate(BLOCK_SIZE)

        self._run(["monmaptool", "--create", "--fsid", fsid,
                   "--addv", "a", "[v2:127.0.0.1:%d]" % self.mon_port,
                   self._p("monmap")], deadline)
        self._run(["ceph-mon", "-c", self.conf, "-i", "a", "--mkfs",
                   "--monmap", self._p("monmap")], deadline)
        self._spawn("mon.a", ["ceph-mon", "-f", "-c", self.conf, "-i", "a"])

        osd_uuid = str(uuid.uuid4())
        out = self._ceph(["osd", "new", osd_uuid], deadline)
        if out.strip() != "0":
            raise RgwError("rgw: 'ceph osd new' gave %r, wanted 0" % out)
        self._run(["ceph-osd", "-c", self.conf, "-i", "0", "--mkfs",
                   "--osd-uuid", osd_uuid], deadline)
        self._spawn("osd.0", ["ceph-osd", "-f", "-c", self.conf, "-i", "0"])
        self._wait_osd_up(deadline)

        self._spawn("client.rgw", ["radosgw", "-f", "-c", self.conf,
                                   "-n", "client.rgw"])
        self._wait_http(deadline)
        self._run(["radosgw-admin", "-c", self.conf, "user", "create",
                   "--uid", USER_ID, "--display-name", "bucketfs tests",
                   "--access-key", self.access_key,
                   "--secret-key", self.secret_key,
                   # a whole suite makes a fresh bucket per test: well over
                   # RGW's default limit of 1,000 per user on a shared cluster
                   "--max-buckets", "100000"], deadline)

    def _write_conf(self, fsid):
        r = self.root
        conf = f"""# private bucketfs test cluster (tests/integration/rgw.py)
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{self.mon_port}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
run dir = {r}/run
admin socket = {r}/run/$name.asok
log file = {r}/log/$name.log
log to stderr = false
err to stderr = true
keyring = {r}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
paxos propose interval = 0.05
mon data avail crit = 1
mon data avail warn = 2
mon osd full ratio = 0.99
mon osd nearfull ratio = 0.98
mon osd backfillfull ratio = 0.985
# no in-memory debug log gathering: ~25% less CPU per request
debug ms = 0/0
debug rgw = 0/0
debug osd = 0/0
debug bluestore = 0/0
debug bluefs = 0/0
debug bdev = 0/0
debug rocksdb = 0/0
debug objclass = 0/0
debug objecter = 0/0
debug rados = 0/0
debug monc = 0/0
debug mon = 0/0
debug paxos = 0/0
debug auth = 0/0
debug finisher = 0/0
debug throttle = 0/0
debug prioritycache = 0/0

[mon]
mon data = {r}/mon.$id
mon rocksdb options = write_buffer_size=8388608,compression=kNoCompression

[osd]
osd data = {r}/osd.$id
osd objectstore = bluestore
bluestore block path = {r}/block
bluestore block create = false
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 1073741824
osd op num shards = 4
osd op num threads per shard = 2
osd max object size = 134217728

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port} tcp_nodelay=1
rgw data = {r}/rgw
rgw thread pool size = 64
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw enable ops log = false
rgw max chunk size = 4194304
rgw gc obj min wait = 30
rgw gc processor period = 30
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        os.makedirs(self._p("rgw"), exist_ok=True)

    def _run(self, argv, deadline, timeout=None):
        """Runs a short command; RgwError with its output on failure."""
        left = max(1.0, deadline - time.monotonic())
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               timeout=min(left, timeout or left))
        except subprocess.TimeoutExpired:
            raise RgwError("rgw: timed out: %s" % " ".join(argv)) from None
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode != 0:
            raise RgwError("rgw: %s exited %d:\n%s" % (" ".join(argv),
                                                        p.returncode,
                                                        out[-2000:]))
        return out

    def _ceph(self, args, deadline):
        return self._run(["ceph", "-c", self.conf, "--connect-timeout", "30"]
                         + args, deadline)

    def _spawn(self, name, argv):
        """Starts a daemon in the foreground of its own session; its pid
        goes to run/NAME.pid, its stdout/stderr to log/NAME.out."""
        out = open(self._p("log", name + ".out"), "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True)
        finally:
            out.close()
        self._procs[name] = p
        with open(self._p("run", name + ".pid"), "w") as f:
            f.write("%d\n" % p.pid)

    def _check_alive(self):
        for name, p in self._procs.items():
            rc = p.poll()
            if rc is not None:
                raise RgwError("rgw: %s exited early with status %d"
                               % (name, rc))

    def _wait_osd_up(self, deadline):
        while True:
            self._check_alive()
            out = self._ceph(["osd", "stat"], deadline)
            if "1 up" in out and "1 in" in out:
                return
            if time.monotonic() > deadline:
                raise RgwError("rgw: osd not up: %s" % out.strip())
            time.sleep(0.2)

    def _wait_http(self, deadline):
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(self.endpoint + "/",
                                            timeout=2) as r:
                    r.read()
                return
            except urllib.error.HTTPError:
                return          # any HTTP answer (403 anonymous) is ready
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RgwError("rgw: radosgw does not answer on %s"
                               % self.endpoint)
            time.sleep(0.1)

    # ---- stop ----
    def stop(self):
        """Kills every daemon started (also by an earlier process, through
        the pid files) and removes the folder.  Safe to call twice."""
        for p in self._procs.values():
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
        for p in self._procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._procs = {}
        if self.root and os.path.isdir(self.root):
            stop_dir(self.root)

    def log_tail(self, lines=30):
        """The last lines of every log in the folder, for failure reports."""
        out = []
        logdir = self._p("log") if self.root else None
        if not logdir or not os.path.isdir(logdir):
            return ""
        for name in sorted(os.listdir(logdir)):
            try:
                with open(os.path.join(logdir, name), "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - 8192))
                    text = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            if text:
                out.append("---- %s ----" % name)
                out.extend(text[-lines:])
        return "\n".join(out)


def _pid_is_ours(pid, root):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    return (root + "/ceph.conf") in cmd


def stop_dir(root):
    """Kills the daemons whose pid files are in root/run (when their command
    line names this folder), waits for them to go and removes root, which
    must be one of ours (holds the marker file)."""
    root = os.path.abspath(root)
    if not os.path.exists(os.path.join(root, MARKER)):
        raise RgwError("rgw: %s is not a test cluster folder (no %s)"
                       % (root, MARKER))
    rundir = os.path.join(root, "run")
    pids = []
    if os.path.isdir(rundir):
        for name in os.listdir(rundir):
            if not name.endswith(".pid"):
                continue
            try:
                with open(os.path.join(rundir, name)) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                continue
            if pid > 1 and _pid_is_ours(pid, root):
                pids.append(pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 10
    for pid in pids:
        while _pid_is_ours(pid, root) and time.monotonic() < end:
            try:                 # reap when it is our child
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass
            time.sleep(0.05)
    shutil.rmtree(root, ignore_errors=True)


def reap_orphans(parent="/tmp"):
    """Stops the clusters of test sessions that died without cleaning up
    (SIGKILL): folders bfs-rgw-* in parent whose owner pid is gone.
    Clusters without an owner file (scripts/rgw.sh) are left alone."""
    for name in os.listdir(parent):
        root = os.path.join(parent, name)
        if not name.startswith("bfs-rgw-") or \
                not os.path.exists(os.path.join(root, MARKER)):
            continue
        try:
            with open(os.path.join(root, OWNER)) as f:
                owner = int(f.read().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
            continue                      # owner alive (or pid reused)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            stop_dir(root)
        except (RgwError, OSError):
            pass


def prepare_dir(root):
    """Makes root ready for a new cluster: a stale cluster of ours there is
    stopped and wiped; a non-empty folder that is not ours is refused."""
    if os.path.exists(os.path.join(root, MARKER)):
        stop_dir(root)
    if os.path.isdir(root) and os.listdir(root):
        raise RgwError("rgw: %s exists, is not empty and is not a test "
                       "cluster folder" % root)
    os.makedirs(root, mode=0o700, exist_ok=True)


def main(argv):
    usage = "usage: rgw.py start DIR [PORT] | stop DIR"
    if len(argv) < 2 or argv[0] not in ("start", "stop"):
        print(usage, file=sys.stderr)
        return 2
    try:
        if argv[0] == "start" and len(argv) in (2, 3):
            r = Rgw(argv[1], argv[2] if len(argv) == 3 else None).start()
            print("endpoint=%s" % r.endpoint)
            print("access_key=%s" % r.access_key)
            print("secret_key=%s" % r.secret_key)
            print("region=%s" % r.region)
            return 0
        if argv[0] == "stop" and len(argv) == 2:
            if os.path.exists(argv[1]):
                stop_dir(argv[1])
            return 0
    except (RgwError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
