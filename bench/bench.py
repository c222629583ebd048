#!/usr/bin/python3
"""bench.py - bucketfs against s3fs on the same Ceph RGW, in the same run.

How it works: one private RGW cluster (tests/integration/rgw.py) serves one
S3 bucket.  For every run and every target (bucketfs in single-bucket mode,
s3fs 1.90 with its defaults) each workload gets a FRESH mount (new process,
new config folder, new cache folder) and writes under a FRESH prefix
r<run>/<target>/, so no workload profits from a previous one.  The order of
the two daemons alternates from run to run.  Next to them, "direct" clients
measure what the server itself can do with the fastest plain client for
the job: one curl PUT/GET for the big file, the faster of one curl process
given every URL and python's http.client (both one keep-alive connection)
for serial small PUTs, a python SigV4 client on one keep-alive connection
per thread for parallel work, and `aws s3 cp --recursive` when an aws CLI
works.  The page cache is dropped before every cold read.

  W1  dd bs=1M of one SIZE file into the mount, until close returns
  W2  read it back on a fresh mount (cold), sha256 checked
  W3  1,000 files of 4 KiB created one after another, each closed, into a
      folder that exists on the server and the fresh mount never listed;
      then the same with fsync before each close
  W4  `ls -l` of a folder of 10,000 objects (made directly, in parallel):
      cold on a fresh mount, then again on the same mount
  W5  random 4 KiB reads on the W1 object, 4 jobs, fixed duration (fio, or
      a python os.pread loop with 4 threads when fio is not installable)
  W6  `cp -r` of 200 files of mixed sizes (1 KiB-8 MiB, fixed seed) in,
      then out on a fresh mount; every file's sha256 checked
  W7  the chat application: 16 writers at once, each storing 64 files of
      4 KiB-1 MiB (fixed seed), each closed before the next, into its own
      existing group folder (bucketfs: @chat/ID/); then 16 readers read
      them back cold on a fresh mount, sha256 checked
  W8  `ls -l @chat/w8` of a context of 10,000 files over two buckets after
      a re-assignment (bucketfs only), cold and again

Every workload's data is checked (sha256 against the source, object counts),
a check failure makes the exit status 1; timings never do.  A sampler
thread reads VmHWM/VmRSS of each daemon from /proc every 100 ms and, for
bucketfs, the bytes its cache folder holds (compared with cache_size).

After each run the run's objects are deleted and RGW's garbage collector is
run, so the sparse bluestore file does not fill up.  Every mount is
unmounted and the cluster stopped at the end, also on an error, Ctrl-C or
SIGTERM.  Stdlib only; run with /usr/bin/python3.  Usage: --help.
"""

import argparse
import concurrent.futures as cf
import contextlib
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import helpers  # noqa: E402  (S3Client for setup and checks)
import rgw as rgw_mod  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
BUCKET = "bucketfs-bench"     # a unique name on a shared RGW (--rgw-endpoint)
BUCKET2 = "bucketfs-bench2"   # W8's second bucket
BFS_NAME = "bench"            # the [bucket NAME] section of bucketfs
MOUNT_TIMEOUT = 30.0
EXIT_TIMEOUT = 120.0
S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

FULL = dict(big=GiB, w3_files=1000, w4_objects=10000, w5_seconds=30,
            w6_files=200, w6_max=8 * MiB, w7_writers=16, w7_files=64,
            w7_max=MiB, w8_objects=10000)
SMALL = dict(big=64 * MiB, w3_files=100, w4_objects=1000, w5_seconds=5,
             w6_files=50, w6_max=2 * MiB, w7_writers=16, w7_files=8,
             w7_max=MiB, w8_objects=1000)
# --quick: only proves the harness runs end to end (figures mean nothing)
QUICK = dict(big=8 * MiB, w3_files=20, w4_objects=200, w5_seconds=2,
             w6_files=10, w6_max=512 * 1024, w7_writers=4, w7_files=6,
             w7_max=256 * 1024, w8_objects=200)
W7_MIN = 4096


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class CheckError(Exception):
    """A data check failed (wrong bytes, missing objects, daemon error)."""


# ------------------------------------------------------------ direct S3

def _uri(s, keep_slash):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


class KeepAlive:
    """A SigV4 S3 client on ONE keep-alive connection (payload
    UNSIGNED-PAYLOAD, as fast clients send it over a trusted link).  Not
    thread-safe: one per thread.  helpers.S3Client opens a connection per
    request, which is right for tests but not for a baseline."""

    def __init__(self, endpoint, ak, sk, region):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port, self.hostport = u.hostname, u.port, u.netloc
        self.ak, self.sk, self.region = ak, sk, region
        self.conn = None

    def _sign(self, method, path, qs, hdrs):
        """Signs hdrs in place; the payload is UNSIGNED-PAYLOAD unless
        hdrs carries its x-amz-content-sha256 already."""
        now = datetime.datetime.now(datetime.timezone.utc)
        amz = now.strftime("%Y%m%dT%H%M%SZ")
        ph = hdrs.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        hdrs.update({"host": self.hostport, "x-amz-date": amz,
                     "x-amz-content-sha256": ph})
        names = sorted(hdrs)
        canon = "\n".join([method, path, qs,
                           "".join("%s:%s\n" % (k, hdrs[k]) for k in names),
                           ";".join(names), ph])
        scope = "%s/%s/s3/aws4_request" % (amz[:8], self.region)
        sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(canon.encode()).hexdigest()])
        k = ("AWS4" + self.sk).encode()
        for part in (amz[:8], self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        hdrs["authorization"] = (
            "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
            "Signature=%s" % (self.ak, scope, ";".join(names), sig))

    def request(self, method, key, query=None, body=None, headers=None):
        """(status, body bytes) of one request; key "BUCKET/K" is encoded
        here.  A dropped keep-alive connection is reopened once."""
        path = "/" + _uri(key, True)
        qs = "&".join("%s=%s" % (_uri(k, False), _uri(v, False))
                      for k, v in sorted((query or {}).items()))
        for attempt in (0, 1):
            hdrs = {k.lower(): v for k, v in (headers or {}).items()}
            self._sign(method, path, qs, hdrs)
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(
                        self.host, self.port, timeout=300)
                self.conn.request(method, path + ("?" + qs if qs else ""),
                                  body=body, headers=hdrs)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise

    def put(self, key, data, headers=None):
        st, body = self.request("PUT", key, body=data, headers=headers)
        if st != 200:
            raise CheckError("PUT %s: HTTP %d %r" % (key, st, body[:200]))

    def get(self, key, rng=None):
        st, body = self.request("GET", key, headers=(
            {"range": "bytes=%d-%d" % rng} if rng else None))
        if st not in (200, 206):
            raise CheckError("GET %s: HTTP %d" % (key, st))
        return body

    def list(self, bucket, prefix):
        """Every key under prefix (ListObjectsV2, 1,000 a page)."""
        keys, token = [], None
        while True:
            q = {"list-type": "2", "max-keys": "1000", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            st, body = self.request("GET", bucket, q)
            if st != 200:
                raise CheckError("list %s: HTTP %d" % (prefix, st))
            root = ET.fromstring(body)
            keys += [c.find(S3NS + "Key").text
                     for c in root.findall(S3NS + "Contents")]
            t = root.find(S3NS + "NextContinuationToken")
            if root.find(S3NS + "IsTruncated").text != "true" or t is None:
                return keys
            token = t.text

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def bfs_like(body):
    """The headers a bucketfs PUT of body carries over plain http besides
    the bytes: the payload's SHA-256 (which the server checks) and the
    s3fs metadata."""
    return {"x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
            "x-amz-meta-mode": "33188", "x-amz-meta-uid": "0",
            "x-amz-meta-gid": "0", "x-amz-meta-mtime": "%d" % time.time()}


class Pool:
    """N threads, each with its own KeepAlive client."""

    def __init__(self, srv, n):
        self.srv, self.n = srv, n
        self.local = threading.local()
        self.clients = []
        self.lock = threading.Lock()

    def client(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = self.srv.keepalive()
            with self.lock:
                self.clients.append(c)
        return c

    def map(self, fn, items):
        with cf.ThreadPoolExecutor(self.n) as ex:
            return list(ex.map(lambda it: fn(self.client(), it), items))

    def close(self):
        for c in self.clients:
            c.close()


# ------------------------------------------------------------ the server

class BenchRgw(rgw_mod.Rgw):
    """The test cluster, plus a garbage collector that frees deleted
    objects at once (the benchmark writes several GiB per run)."""

    def _write_conf(self, fsid):
        super()._write_conf(fsid)
        with open(self.conf, "a") as f:      # [client.rgw] is the last section
            f.write("rgw gc obj min wait = 0\n"
                    "rgw gc processor period = 30\n")

    def keepalive(self):
        return KeepAlive(self.endpoint, self.access_key, self.secret_key,
                         self.region)

    def gc(self):
        subprocess.run(["radosgw-admin", "-c", self.conf, "gc", "process",
                        "--include-all"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)


class ExternalRgw:
    """A server started elsewhere (scripts/rgw.sh, the shared test RGW)
    with rgw.py's fixed keys: nothing to start or stop, no gc."""

    def __init__(self, endpoint):
        self.endpoint = endpoint.rstrip("/")
        self.access_key = rgw_mod.ACCESS_KEY
        self.secret_key = rgw_mod.SECRET_KEY
        self.region = "us-east-1"

    def keepalive(self):
        return KeepAlive(self.endpoint, self.access_key, self.secret_key,
                         self.region)

    def gc(self):
        pass

    def stop(self):
        pass


# ------------------------------------------------------------ mounts

def proc_status(pid):
    """{"VmHWM": kib, "VmRSS": kib} of pid, {} when it is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")
# the server's processes (rgw.py's cluster, or a shared one on this host)
SERVER_COMMS = ("radosgw", "ceph-osd", "ceph-mon", "ceph-mgr")


def proc_cpu(pid):
    """CPU seconds (user + system, all threads) pid has used; 0.0 when
    it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        f = s[s.rindex(")") + 2:].split()
        return (int(f[11]) + int(f[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def server_cpu():
    """CPU seconds used so far by the processes of the S3 server."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() not in SERVER_COMMS:
                    continue
        except OSError:
            continue
        total += proc_cpu(int(d))
    return total


def client_cpu():
    """CPU seconds of this process (every thread) and its reaped
    children (dd, cp, ls, curl, aws)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def tree_bytes(path):
    """Bytes allocated by the files below path (st_blocks)."""
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


LIVE = set()                  # mounts not yet unmounted (for cleanup)


class Mount:
    """One daemon on one fresh mount point in a fresh folder.  Subclasses
    give argv() and prepare().  peak_kib: VmHWM just before unmount (the
    process's peak RSS over its whole life = this workload)."""

    kind = "?"
    crash_at_exit_is_note = False

    def __init__(self, bench, tag, extra="", sections=None):
        self.b = bench
        self.tag = tag
        self.extra = extra          # more [bucket] lines (bucketfs only)
        # bucketfs with context views: [(NAME, remote bucket, prefix,
        # more lines)], mounted without single-bucket mode
        self.sections = sections
        self.dir = tempfile.mkdtemp(prefix="%s-%s-" % (self.kind, tag),
                                    dir=bench.mounts_dir)
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        self.log = os.path.join(self.dir, "daemon.log")
        self.proc = None
        self.peak_kib = 0
        self.cache_peak = 0
        self._stop = threading.Event()
        self._sampler = None
        self.on_prepared = None     # fn(mount) after prepare, before start

    def cache_dir(self):
        return None

    def start(self):
        self.prepare()
        if self.on_prepared:
            self.on_prepared(self)
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err,
                                         start_new_session=True)
        LIVE.add(self)
        end = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                raise CheckError("%s exited %d before mounting: %s" % (
                    self.kind, self.proc.returncode, self.log_tail()))
            if time.monotonic() > end:
                raise CheckError("%s: not mounted after %d s: %s" % (
                    self.kind, MOUNT_TIMEOUT, self.log_tail()))
            time.sleep(0.02)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self):
        cache, n = self.cache_dir(), 0
        while not self._stop.is_set():
            st = proc_status(self.proc.pid)
            self.peak_kib = max(self.peak_kib, st.get("VmHWM", 0))
            if cache and n % 5 == 0:
                self.cache_peak = max(self.cache_peak, tree_bytes(cache))
            n += 1
            self._stop.wait(0.1)

    def log_tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def unmount(self, check=True):
        """fusermount3 -u and reap the daemon (kill after EXIT_TIMEOUT).
        With check, a daemon that did not exit 0 is a CheckError."""
        problem = None
        if self.proc is not None:
            st = proc_status(self.proc.pid)
            self.peak_kib = max(self.peak_kib, st.get("VmHWM", 0))
        cache = self.cache_dir()
        if cache:
            self.cache_peak = max(self.cache_peak, tree_bytes(cache))
        self._stop.set()
        if self._sampler:
            self._sampler.join()
        if os.path.ismount(self.mnt):
            p = subprocess.run(["fusermount3", "-u", self.mnt],
                               capture_output=True, text=True)
            if p.returncode != 0:
                problem = "fusermount3 -u: %s" % p.stderr.strip()
                subprocess.run(["fusermount3", "-uz", self.mnt],
                               capture_output=True)
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
                problem = problem or "did not exit after unmount; killed"
            if rc < 0 and not problem and self.crash_at_exit_is_note:
                # unmounted cleanly, then died: what was written is
                # stored (checked apart), so it is reported, not failed
                self.b.notes.append("%s died by signal %d after a clean "
                                    "unmount (%s)" % (self.kind, -rc,
                                                      self.tag))
            elif rc != 0 and not problem:
                problem = "exited with status %d" % rc
            self.proc = None
        LIVE.discard(self)
        if problem and check:
            raise CheckError("%s: %s\n%s" % (self.kind, problem,
                                             self.log_tail()))

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        self.unmount(check=et is None)
        if et is None and not self.b.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


class S3fsMount(Mount):
    kind = "s3fs"
    # s3fs 1.90 sometimes aborts in its exit path after the unmount
    # (crash fixes in 1.91, s3fs-fuse issue #2005)
    crash_at_exit_is_note = True

    def prepare(self):
        self.pw = os.path.join(self.dir, "passwd")
        fd = os.open(self.pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("%s:%s\n" % (self.b.srv.access_key,
                                 self.b.srv.secret_key))

    def argv(self):
        return ["s3fs", BUCKET, self.mnt, "-f",
                "-o", "url=" + self.b.srv.endpoint,
                "-o", "use_path_request_style", "-o", "sigv4",
                "-o", "endpoint=" + self.b.srv.region,
                "-o", "passwd_file=" + self.pw]


class BucketfsMount(Mount):
    kind = "bucketfs"

    def cache_dir(self):
        return os.path.join(self.dir, "cache")

    def prepare(self):
        srv = self.b.srv
        secret = os.path.join(self.dir, "secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(srv.secret_key + "\n")
        self.cfg = os.path.join(self.dir, "bucketfs.conf")
        with open(self.cfg, "w") as f:
            f.write("[bucketfs]\ndatabase = bucketfs.db\ncache_dir = cache\n"
                    "cache_size = %s\nmaster_key_file = master.key\n"
                    "log_level = warn\n" % self.b.args.cache_size)
            for name, remote, prefix, more in (self.sections or [
                    (BFS_NAME, BUCKET, "", self.extra)]):
                f.write("\n[bucket %s]\nprovider = s3\n"
                        "bucket_name = %s\nendpoint = %s\npath_style = true\n"
                        "region = %s\naccess_key_id = %s\n"
                        "secret_access_key_file = %s\n%s%s"
                        % (name, remote, srv.endpoint, srv.region,
                           srv.access_key, secret,
                           "prefix = %s\n" % prefix if prefix else "",
                           more + self.extra_lines(more)))
        p = subprocess.run([self.ctl_exe(), "-c", self.cfg, "init"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise CheckError("bucketctl init exited %d: %s"
                             % (p.returncode, p.stderr.strip()))

    def extra_lines(self, more):
        """--bfs-extra's lines, but none whose key the section sets
        already (a key twice is a config error)."""
        have = {ln.split("=")[0].strip() for ln in more.splitlines()}
        return "".join(ln for ln in self.b.bfs_extra.splitlines(True)
                       if ln.split("=")[0].strip() not in have)

    def ctl(self, *args):
        """bucketctl -c CONFIG ARGS...; a failure is a CheckError."""
        p = subprocess.run([self.ctl_exe(), "-c", self.cfg] + list(args),
                           capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise CheckError("bucketctl %s exited %d: %s" % (
                " ".join(args), p.returncode, p.stderr.strip()))
        return p.stdout

    def ctl_exe(self):
        return self.b.bucketctl_b if self.target == "bucketfs-b" \
            else self.b.bucketctl

    def argv(self):
        # target "bucketfs-b": the same mount with the --build-b programs
        exe = self.b.bucketfs_b if self.target == "bucketfs-b" \
            else self.b.bucketfs
        if self.sections:
            return [exe, "-f", self.cfg, self.mnt]
        return [exe, "-f", "-o", "bucket=" + BFS_NAME, self.cfg, self.mnt]


# ------------------------------------------------------------ data

def is_bfs(target):
    """bucketfs, or its A/B twin bucketfs-b (--build-b)."""
    return target in ("bucketfs", "bucketfs-b")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def parse_size(s):
    mult = {"K": 1 << 10, "M": MiB, "G": GiB}
    s = s.strip().upper()
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


class Data:
    """The source files, made once in the work folder: the big file
    (random bytes), the W3 contents and the W6 tree (fixed seeds)."""

    def __init__(self, root, sz):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.big = os.path.join(root, "big.bin")
        log("making a %d MiB source file" % (sz["big"] // MiB))
        h, m = hashlib.sha256(), hashlib.md5()
        with open(self.big, "wb") as f:
            left = sz["big"]
            while left:
                b = os.urandom(min(left, 16 * MiB))
                h.update(b)
                m.update(b)
                f.write(b)
                left -= len(b)
        self.big_size, self.big_sha, self.big_md5 = (sz["big"], h.hexdigest(),
                                                     m.hexdigest())
        rnd = random.Random(3)
        self.w3 = [rnd.randbytes(4096) for _ in range(sz["w3_files"])]
        # the same bytes as files, for the one curl process of W3 direct
        self.w3dir = os.path.join(root, "w3src")
        os.makedirs(self.w3dir, exist_ok=True)
        for i, b in enumerate(self.w3):
            with open(os.path.join(self.w3dir, "f%04d" % i), "wb") as f:
                f.write(b)
        # W7: per writer, its files' sizes (log-uniform W7_MIN..w7_max,
        # seed 7) and bytes; kept in memory (about 190 MiB at full size)
        rnd = random.Random(7)
        self.w7 = [[rnd.randbytes(int(W7_MIN * (sz["w7_max"] / W7_MIN) **
                                      rnd.random()))
                    for _ in range(sz["w7_files"])]
                   for _ in range(sz["w7_writers"])]
        self.w7_sha = [[hashlib.sha256(b).hexdigest() for b in w]
                       for w in self.w7]
        self.w7_bytes = sum(len(b) for w in self.w7 for b in w)
        log("W7: %d writers x %d files, %.1f MiB" % (
            sz["w7_writers"], sz["w7_files"], self.w7_bytes / MiB))
        self.w6 = os.path.join(root, "w6src")
        self.w6_files = {}                  # relative path -> sha256
        rnd = random.Random(6)
        total = 0
        lo, hi = 1024, sz["w6_max"]
        for i in range(sz["w6_files"]):
            n = int(lo * (hi / lo) ** rnd.random())    # log-uniform
            rel = "d%d/f%03d.bin" % (i % 4, i)
            os.makedirs(os.path.join(self.w6, "d%d" % (i % 4)), exist_ok=True)
            b = rnd.randbytes(n)
            with open(os.path.join(self.w6, rel), "wb") as f:
                f.write(b)
            self.w6_files[rel] = hashlib.sha256(b).hexdigest()
            total += n
        self.w6_bytes = total
        log("W6 tree: %d files, %.1f MiB" % (len(self.w6_files), total / MiB))


# ------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.sz = dict(QUICK if args.quick else SMALL if args.small
                       else FULL)
        if args.w5_seconds:
            self.sz["w5_seconds"] = args.w5_seconds
        self.work = args.workdir or tempfile.mkdtemp(prefix="bfs-bench-",
                                                     dir="/var/tmp")
        os.makedirs(self.work, exist_ok=True)
        self.mounts_dir = os.path.join(self.work, "mounts")
        os.makedirs(self.mounts_dir, exist_ok=True)
        build = os.path.abspath(args.build)
        self.bucketfs = os.path.join(build, "bucketfs")
        self.bucketctl = os.path.join(build, "bucketctl")
        b = os.path.abspath(args.build_b) if args.build_b else None
        self.bucketfs_b = os.path.join(b, "bucketfs") if b else None
        self.bucketctl_b = os.path.join(b, "bucketctl") if b else None
        # --bfs-extra: more lines for every [bucket] section of bucketfs
        self.bfs_extra = "".join(x.strip() + "\n"
                                 for x in (args.bfs_extra or "").split(";")
                                 if x.strip())
        self.srv = None
        self.results = {}           # (workload, metric, target) -> [values]
        self.rss = {}               # (workload, target) -> [peak KiB]
        # (workload, metric, target) -> [(wall, client, daemon, server)]
        self.cpu_res = {}
        self.cache_peak = 0
        self.errors = []            # (run, target, workload, message)
        self.notes = []
        self.fio = None
        self.aws = None
        self.dropped = None         # drop_caches works (None: not tried)
        self.made_buckets = []

    # ---- bookkeeping ----
    def rec(self, wl, metric, target, value):
        self.results.setdefault((wl, metric, target), []).append(value)
        log("  %-8s %-3s %-14s %s" % (target, wl, metric,
                                      ("%.3f" % value) if isinstance(
                                          value, float) else value))

    @contextlib.contextmanager
    def cpu(self, wl, metric, target, m=None):
        """CPU seconds spent in the with-block by the client (this
        process and its children), the daemon of mount m and the S3
        server's processes, kept beside its wall time: where the time
        of a timed part went."""
        pid = m.proc.pid if m is not None and m.proc is not None else None
        w0, c0, s0 = time.monotonic(), client_cpu(), server_cpu()
        d0 = proc_cpu(pid) if pid else 0.0
        yield
        d1 = proc_cpu(pid) if pid else 0.0
        v = (time.monotonic() - w0, client_cpu() - c0, d1 - d0,
             server_cpu() - s0)
        self.cpu_res.setdefault((wl, metric, target), []).append(v)
        log("  %-8s %-3s %-14s cpu-s client %.2f daemon %.2f server %.2f "
            "(wall %.2f)" % (target, wl, metric, v[1], v[2], v[3], v[0]))

    def rec_mount(self, wl, m):
        self.rss.setdefault((wl, m.target), []).append(m.peak_kib)
        if m.kind == "bucketfs":
            self.cache_peak = max(self.cache_peak, m.cache_peak)

    def mount(self, target, tag, extra="", sections=None):
        if is_bfs(target):
            m = BucketfsMount(self, tag, extra, sections)
        else:
            m = S3fsMount(self, tag)
        m.target = target
        return m

    # ---- setup ----
    def setup(self):
        a = self.args
        if "bucketfs" in self.targets:
            for b in (self.bucketfs, self.bucketctl):
                if not os.access(b, os.X_OK):
                    raise SystemExit("bench: %s is not built (make, or "
                                     "--build DIR, or --targets s3fs,direct)"
                                     % b)
        if "s3fs" in self.targets and not shutil.which("s3fs"):
            raise SystemExit("bench: s3fs is not installed (apt-get install "
                             "s3fs, or --targets bucketfs,direct)")
        if not a.no_fio:
            rc = subprocess.run(["sh", os.path.join(HERE, "deps.sh")]).returncode
            self.fio = shutil.which("fio") if rc == 0 else None
        if not self.fio:
            self.notes.append("W5: fio not available; python os.pread loop "
                              "with 4 threads")
        try:
            p = subprocess.run(["aws", "--version"], capture_output=True,
                               text=True, timeout=60)
            if p.returncode == 0:
                self.aws = (p.stdout + p.stderr).split()[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
        need = self.sz["big"] * 3 + 4 * GiB
        free = shutil.disk_usage(self.work).free
        if free < need:
            raise SystemExit("bench: %s has %d MiB free, the run needs about "
                             "%d MiB" % (self.work, free // MiB, need // MiB))
        # several GiB are written per run; the sparse block file must hold
        # a run's data before the garbage collector frees it
        rgw_mod.BLOCK_SIZE = max(rgw_mod.BLOCK_SIZE,
                                 self.sz["big"] * 8 + 8 * GiB)
        global BUCKET, BUCKET2
        if a.rgw_endpoint:
            # a shared server: buckets of our own, deleted at the end
            self.srv = ExternalRgw(a.rgw_endpoint)
            tag = "%d-%s" % (os.getpid(), os.urandom(3).hex())
            BUCKET, BUCKET2 = "bfs-bench-" + tag, "bfs-bench2-" + tag
            self.notes.append("shared RGW %s: not a quiet server"
                              % a.rgw_endpoint)
        else:
            log("starting RGW in %s" % os.path.join(self.work, "rgw"))
            self.srv = BenchRgw(os.path.join(self.work, "rgw"))
            self.srv.start()
        cl = helpers.S3Client(self.srv.endpoint, self.srv.access_key,
                              self.srv.secret_key)
        for bk in (BUCKET, BUCKET2):
            cl.create_bucket(bk)
            self.made_buckets.append(bk)
        self.data = Data(os.path.join(self.work, "data"), self.sz)

    def teardown(self):
        for m in list(LIVE):
            try:
                m.unmount(check=False)
            except Exception as e:          # best effort, keep going
                log("unmount %s: %s" % (m.mnt, e))
        if self.srv is not None and isinstance(self.srv, ExternalRgw):
            cl = helpers.S3Client(self.srv.endpoint, self.srv.access_key,
                                  self.srv.secret_key)
            for bk in self.made_buckets:
                try:
                    cl.delete_bucket(bk)
                except Exception as e:      # best effort, keep going
                    log("delete bucket %s: %s" % (bk, e))
        if self.srv is not None:
            if not isinstance(self.srv, ExternalRgw):
                log("stopping RGW")
            self.srv.stop()
            self.srv = None
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---- helpers ----
    def k(self, *parts):
        return BUCKET + "/" + "/".join(parts)

    def keys_under(self, prefix):
        c = self.srv.keepalive()
        try:
            return c.list(BUCKET, prefix)
        finally:
            c.close()

    def drop_caches(self):
        """Empties the kernel's page cache before a cold read (as root:
        sync, then 3 > /proc/sys/vm/drop_caches); said once in the notes
        when it cannot."""
        os.sync()
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            self.dropped = True
        except OSError as e:
            if self.dropped is None:
                self.notes.append("page cache not dropped before cold "
                                  "reads: %s" % e)
            self.dropped = False

    def plant_folder(self, folder, bucket=None):
        """folder ("a/b") exists on the server as another client left it:
        a marker for it and each parent (as s3fs makes them) and one older
        file, seed.txt; no mount has listed it."""
        c = self.srv.keepalive()
        try:
            parts = folder.split("/")
            for i in range(1, len(parts) + 1):
                st, body = c.request("PUT", "%s/%s/" % (
                    bucket or BUCKET, "/".join(parts[:i])), body=b"",
                    headers={"content-type": "application/x-directory"})
                if st != 200:
                    raise CheckError("marker %s: HTTP %d" % (folder, st))
            c.put("%s/%s/seed.txt" % (bucket or BUCKET, folder),
                  b"an older file\n")
        finally:
            c.close()

    def check_w3(self, prefix):
        """Every W3 file stored with its bytes (folder markers and the
        planted seed.txt ignored)."""
        keys = sorted(k for k in self.keys_under(prefix) if not
                      k.endswith("/") and not k.endswith("/seed.txt"))
        want = ["%sf%04d" % (prefix, i) for i in range(len(self.data.w3))]
        if keys != want:
            raise CheckError("W3: %d objects under %s, wanted %d"
                             % (len(keys), prefix, len(want)))
        pool = Pool(self.srv, 8)
        try:
            got = pool.map(lambda c, i: c.get(self.k(want[i])),
                           range(len(want)))
        finally:
            pool.close()
        bad = [i for i, b in enumerate(got) if b != self.data.w3[i]]
        if bad:
            raise CheckError("W3: %d objects with wrong bytes (first f%04d)"
                             % (len(bad), bad[0]))

    def check_tree(self, root):
        """The W6 tree at root has every source file with its sha256."""
        bad = [rel for rel, sha in self.data.w6_files.items()
               if not os.path.isfile(os.path.join(root, rel))
               or sha256_file(os.path.join(root, rel)) != sha]
        if bad:
            raise CheckError("W6: %d of %d files missing or wrong (first %s)"
                             % (len(bad), len(self.data.w6_files), bad[0]))

    def timed(self, argv, **kw):
        t = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, **kw)
        dt = time.monotonic() - t
        if p.returncode != 0:
            raise CheckError("%s exited %d: %s" % (" ".join(argv[:3]),
                                                   p.returncode,
                                                   p.stderr.strip()[-500:]))
        return dt, p.stdout

    # ---- the workloads through a mount ----
    def fs_w1(self, t, pre):
        with self.mount(t, "w1") as m:
            os.makedirs(m.path(pre), exist_ok=True)
            with self.cpu("W1", "s", t, m):
                dt, _ = self.timed(["dd", "if=" + self.data.big,
                                    "of=" + m.path(pre, "big"), "bs=1M",
                                    "status=none"])
        self.rec_mount("W1", m)
        self.rec("W1", "s", t, dt)
        self.rec("W1", "MiB/s", t, self.data.big_size / MiB / dt)

    def fs_w2(self, t, pre):
        with self.mount(t, "w2") as m:
            self.drop_caches()
            # The timed read only reads, as the direct `curl -o
            # /dev/null` only receives: hashing 1 GiB costs the client
            # ~1 CPU-s, which on this 2-core machine would be taken from
            # the daemon and the server.  The bytes are checked right
            # after, by hashing what a second read of the same open file
            # gets (the kernel's page cache of the first read).
            buf = bytearray(MiB)
            with self.cpu("W2", "s", t, m):
                t0 = time.monotonic()
                fd = os.open(m.path(pre, "big"), os.O_RDONLY)
                try:
                    n = 0
                    while True:
                        k = os.readv(fd, [buf])
                        if not k:
                            break
                        n += k
                    dt = time.monotonic() - t0
                except BaseException:
                    os.close(fd)
                    raise
            h = hashlib.sha256()
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                while True:
                    b = os.read(fd, MiB)
                    if not b:
                        break
                    h.update(b)
            finally:
                os.close(fd)
        self.rec_mount("W2", m)
        if n != self.data.big_size or h.hexdigest() != self.data.big_sha:
            raise CheckError("W1/W2: read back %d bytes, sha256 %s; wanted "
                             "%d, %s" % (n, h.hexdigest()[:16],
                                         self.data.big_size,
                                         self.data.big_sha[:16]))
        self.rec("W2", "s", t, dt)
        self.rec("W2", "MiB/s", t, n / MiB / dt)

    def w5_fio(self, path, secs):
        """IOPS of fio randread 4k, 4 jobs.  O_DIRECT so the kernel page
        cache does not answer repeats; buffered when the mount refuses
        O_DIRECT (then said in the notes)."""
        base = ["fio", "--name=w5", "--filename=" + path, "--rw=randread",
                "--bs=4k", "--numjobs=4", "--thread", "--time_based",
                "--runtime=%d" % secs, "--ioengine=psync", "--readonly",
                "--group_reporting", "--output-format=json"]
        for direct in ("1", "0"):
            p = subprocess.run(base + ["--direct=" + direct],
                               capture_output=True, text=True,
                               timeout=secs + 120)
            if p.returncode == 0:
                try:
                    j = json.loads(p.stdout[p.stdout.index("{"):])
                except ValueError:
                    raise CheckError("fio: unreadable output: %s"
                                     % p.stdout[:300]) from None
                r = j["jobs"][0]["read"]
                if r.get("io_bytes", 0) == 0:
                    raise CheckError("fio: no bytes read")
                return r["iops"], direct
            err = p.stderr.strip()[-300:]
        raise CheckError("fio failed: %s" % err)

    def w5_pread(self, path, secs, size):
        stop = time.monotonic() + secs
        counts = [0] * 4

        def worker(i):
            rnd = random.Random(50 + i)
            fd = os.open(path, os.O_RDONLY)
            try:
                while time.monotonic() < stop:
                    off = rnd.randrange(size // 4096) * 4096
                    if len(os.pread(fd, 4096, off)) != 4096:
                        raise CheckError("short pread at %d" % off)
                    counts[i] += 1
            finally:
                os.close(fd)
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(worker, range(4)))
        return sum(counts) / secs

    def fs_w5(self, t, pre):
        secs = self.sz["w5_seconds"]
        with self.mount(t, "w5") as m:
            p = m.path(pre, "big")
            if self.fio:
                iops, direct = self.w5_fio(p, secs)
                if direct == "0":
                    self.notes.append("W5 %s: O_DIRECT refused, fio ran "
                                      "buffered" % t)
            else:
                iops = self.w5_pread(p, secs, self.data.big_size)
        self.rec_mount("W5", m)
        self.rec("W5", "IOPS", t, float(iops))

    def fs_w3(self, t, pre):
        """Into a folder that exists on the server and that this fresh
        mount never listed (a chat server restarted, writing into a
        group's folder); then the same with fsync before each close."""
        for sub, sync in (("w3", False), ("w3s", True)):
            self.plant_folder(pre + "/" + sub)
            with self.mount(t, sub) as m, \
                    self.cpu("W3", "s, fsync" if sync else "s", t, m):
                d = m.path(pre, sub)
                t0 = time.monotonic()
                for i, b in enumerate(self.data.w3):
                    with open(os.path.join(d, "f%04d" % i), "wb") as f:
                        f.write(b)
                        if sync:
                            f.flush()
                            os.fsync(f.fileno())
                dt = time.monotonic() - t0
            self.rec_mount("W3", m)
            self.check_w3(pre + "/%s/" % sub)
            sfx = ", fsync" if sync else ""
            self.rec("W3", "s" + sfx, t, dt)
            self.rec("W3", "files/s" + sfx, t, len(self.data.w3) / dt)

    def ls_l(self, wl, path, n):
        """Seconds of `ls -l path`, which must list n entries."""
        dt, out = self.timed(["ls", "-l", path], timeout=1800)
        lines = [x for x in out.splitlines() if not x.startswith("total ")]
        if len(lines) != n:
            raise CheckError("%s: ls -l listed %d entries, wanted %d"
                             % (wl, len(lines), n))
        return dt

    def fs_w4(self, t, folder):
        n = self.sz["w4_objects"]
        with self.mount(t, "w4") as m:
            with self.cpu("W4", "cold s", t, m):
                res = [self.ls_l("W4", m.path(folder), n)]
            res.append(self.ls_l("W4", m.path(folder), n))
        self.rec_mount("W4", m)
        self.rec("W4", "cold s", t, res[0])
        self.rec("W4", "warm s", t, res[1])
        if not is_bfs(t):
            return
        # The opt-in mode that answers ls -l from the listing alone
        # (list_metadata = listing): no HEAD per object, like
        # mountpoint-s3, goofys and rclone.  Fresh mount and database.
        with self.mount(t, "w4l", "list_metadata = listing\n") as m:
            dt = self.ls_l("W4 listing mode", m.path(folder), n)
        self.rec_mount("W4", m)
        self.rec("W4", "cold s, list_metadata = listing", t, dt)

    def fs_w6(self, t, pre, run):
        with self.mount(t, "w6in") as m:
            os.makedirs(m.path(pre), exist_ok=True)
            with self.cpu("W6", "in s", t, m):
                dt_in, _ = self.timed(["cp", "-r", self.data.w6,
                                       m.path(pre, "w6")], timeout=3600)
        self.rec_mount("W6", m)
        out = os.path.join(self.work, "w6out-%s-%d" % (t, run))
        with self.mount(t, "w6out") as m:
            self.drop_caches()
            with self.cpu("W6", "out s", t, m):
                dt_out, _ = self.timed(["cp", "-r", m.path(pre, "w6"), out],
                                       timeout=3600)
        self.rec_mount("W6", m)
        try:
            self.check_tree(out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        mb = self.data.w6_bytes / MiB
        self.rec("W6", "in s", t, dt_in)
        self.rec("W6", "out s", t, dt_out)
        self.rec("W6", "in MiB/s", t, mb / dt_in)
        self.rec("W6", "out MiB/s", t, mb / dt_out)

    def w7_groups(self):
        return ["g%02d" % i for i in range(self.sz["w7_writers"])]

    def fs_w7(self, t, pre):
        """The chat application: every writer at once stores its files,
        each closed before the next, into its own group folder (existing
        on the server, never listed by this fresh mount; bucketfs through
        the context view @chat/ID/, s3fs through the same keys); then as
        many readers read them all back, cold, on another fresh mount."""
        groups = self.w7_groups()
        for g in groups:
            self.plant_folder("%s/chat/%s" % (pre, g))
        # --b-no-views: a bucketfs-b without context views; then both
        # bucketfs targets write through the bucket folder, as s3fs does
        views = is_bfs(t) and not self.args.b_no_views
        sections = [(BFS_NAME, BUCKET, pre + "/",
                     "default = general, chat, forms\n")] if views else None

        def where(m, w, i):
            if views:
                return m.path("@chat", groups[w], "f%02d.bin" % i)
            return m.path(pre, "chat", groups[w], "f%02d.bin" % i)

        def writer(m, w):
            for i, b in enumerate(self.data.w7[w]):
                with open(where(m, w, i), "wb") as f:
                    f.write(b)

        def reader(m, w):
            bad = 0
            for i, sha in enumerate(self.data.w7_sha[w]):
                h = hashlib.sha256()
                with open(where(m, w, i), "rb") as f:
                    while True:
                        b = f.read(MiB)
                        if not b:
                            break
                        h.update(b)
                bad += h.hexdigest() != sha
            return bad
        nfiles = sum(len(w) for w in self.data.w7)
        with self.mount(t, "w7in", sections=sections) as m:
            before = self.requests(m) if views else None
            with self.cpu("W7", "write s", t, m):
                t0 = time.monotonic()
                with cf.ThreadPoolExecutor(len(groups)) as ex:
                    list(ex.map(lambda w: writer(m, w), range(len(groups))))
                dt_in = time.monotonic() - t0
            if views:
                self.note_requests("W7 write", before, self.requests(m),
                                   nfiles)
        self.rec_mount("W7", m)
        self.check_w7(pre + "/chat")
        with self.mount(t, "w7out", sections=sections) as m:
            self.drop_caches()
            before = self.requests(m) if views else None
            with self.cpu("W7", "read s", t, m):
                t0 = time.monotonic()
                with cf.ThreadPoolExecutor(len(groups)) as ex:
                    bad = sum(ex.map(lambda w: reader(m, w),
                                     range(len(groups))))
                dt_out = time.monotonic() - t0
            if views:
                self.note_requests("W7 read", before, self.requests(m),
                                   nfiles)
        self.rec_mount("W7", m)
        if bad:
            raise CheckError("W7: %d files read back with wrong bytes" % bad)
        self.rec_w7(t, dt_in, dt_out)

    def requests(self, m):
        """{op: count} of bucketfs_requests_total in m's .metrics (every
        status); only a mount with control files has it."""
        out = {}
        with open(m.path(".metrics")) as f:
            for line in f:
                if line.startswith('bucketfs_requests_total{op="'):
                    op = line.split('"')[1]
                    out[op] = out.get(op, 0) + int(float(line.split()[-1]))
        return out

    def note_requests(self, what, before, after, nfiles):
        """Requests per file of a bucketfs workload, for the notes."""
        per = {k: (after[k] - before.get(k, 0)) / nfiles for k in after
               if after[k] != before.get(k, 0)}
        self.notes.append("%s, bucketfs requests per file: %s" % (
            what, ", ".join("%s %.2f" % kv for kv in sorted(per.items()))
            or "none"))
        log("  %s: requests per file %s" % (what, per))

    def rec_w7(self, t, dt_in, dt_out):
        mb, n = self.data.w7_bytes / MiB, sum(len(w) for w in self.data.w7)
        self.rec("W7", "write s", t, dt_in)
        self.rec("W7", "write files/s", t, n / dt_in)
        self.rec("W7", "write MiB/s", t, mb / dt_in)
        self.rec("W7", "read s", t, dt_out)
        self.rec("W7", "read MiB/s", t, mb / dt_out)

    def check_w7(self, prefix):
        """Every W7 file is stored (count per group; the bytes are
        checked by the cold read that follows)."""
        keys = set(self.keys_under(prefix + "/"))
        missing = ["%s/%s/f%02d.bin" % (prefix, g, i)
                   for w, g in enumerate(self.w7_groups())
                   for i in range(len(self.data.w7[w]))
                   if "%s/%s/f%02d.bin" % (prefix, g, i) not in keys]
        if missing:
            raise CheckError("W7: %d objects missing (first %s)"
                             % (len(missing), missing[0]))

    def make_w8(self, pre):
        """A context of w8_objects files spread over two buckets after a
        re-assignment: the first half in bucket w8a (BUCKET, where the
        context was routed), the second in w8b (BUCKET2, routed now),
        made directly by 16 threads; the direct figure lists both."""
        n = self.sz["w8_objects"]
        log("W8: creating %d objects in two buckets (16 threads)" % n)
        pool = Pool(self.srv, 16)

        def key(i):
            return "%s/%s/w8%s/chat/w8/o%05d" % (
                BUCKET if i < n // 2 else BUCKET2, pre,
                "a" if i < n // 2 else "b", i)
        try:
            pool.map(lambda c, i: c.put(key(i), b"w8 object %d\n" % i),
                     range(n))
        finally:
            pool.close()
        c = self.srv.keepalive()
        try:
            for bk, half in ((BUCKET, "a"), (BUCKET2, "b")):
                c.list(bk, "%s/w8%s/chat/w8/" % (pre, half))   # warm
            t0 = time.monotonic()
            got = sum(len(c.list(bk, "%s/w8%s/chat/w8/" % (pre, half)))
                      for bk, half in ((BUCKET, "a"), (BUCKET2, "b")))
            dt = time.monotonic() - t0
        finally:
            c.close()
        if got != n:
            raise CheckError("W8: the server lists %d objects, wanted %d"
                             % (got, n))
        self.rec("W8", "cold s", "direct", dt)

    def fs_w8(self, t, pre):
        """`ls -l @chat/w8` on a fresh mount: the routed bucket's live
        listing plus the index rows of the other bucket (bucketctl import
        of both, as files written through a mount have rows), cold and
        again.  bucketfs only: s3fs has no context views."""
        n = self.sz["w8_objects"]
        sections = [("w8a", BUCKET, pre + "/w8a/",
                     "default = general, chat, forms\n"),
                    ("w8b", BUCKET2, pre + "/w8b/", "")]

        def route(m):
            m.ctl("import", "w8a")
            m.ctl("import", "w8b")
            m.ctl("assign", "chat", "w8", "w8b")      # the re-assignment
        m = self.mount(t, "w8", sections=sections)
        m.on_prepared = route
        with m:
            with self.cpu("W8", "cold s", t, m):
                res = [self.ls_l("W8", m.path("@chat", "w8"), n)]
            res.append(self.ls_l("W8", m.path("@chat", "w8"), n))
        self.rec_mount("W8", m)
        self.rec("W8", "cold s", t, res[0])
        self.rec("W8", "warm s", t, res[1])

    # ---- the direct (server limit) figures ----
    def curl(self, *args):
        srv = self.srv
        return ["curl", "-sS", "--aws-sigv4",
                "aws:amz:%s:s3" % srv.region, "--user",
                "%s:%s" % (srv.access_key, srv.secret_key),
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                "-w", "%{http_code} %{size_download}"] + list(args)

    def direct(self, run, pre):
        def want(*wls):
            return not self.args.only or any(w in self.args.only
                                             for w in wls)
        # each part on its own: one that fails loses only its figures;
        # the aws-cli ones (the likeliest to fail) last
        parts = [(("W1", "W2", "W5"), self.direct_big, pre),
                 (("W3",), self.direct_w3, pre),
                 (("W7",), self.direct_w7, pre),
                 (("W4",), self.direct_w4, run),
                 (("W6",), self.direct_w6, pre)]
        if self.aws:
            parts += [(("W1", "W2"), self.aws_big, pre),
                      (("W6",), self.aws_w6, pre)]
        for wls, fn, arg in parts:
            if not want(*wls):
                continue
            try:
                fn(arg)
            except CheckError as e:
                self.errors.append((run, "direct", ",".join(wls), str(e)))
                log("run %d: direct %s FAILED: %s" % (run, ",".join(wls),
                                                       e))

    def direct_big(self, pre):
        t, d, srv = "direct", self.data, self.srv
        url = "%s/%s/%s/big" % (srv.endpoint, BUCKET, pre)
        with self.cpu("W1", "s", t):
            dt, out = self.timed(self.curl("-o", "/dev/null", "-T", d.big,
                                           url))
        if not out.startswith("200"):
            raise CheckError("curl PUT: %s" % out)
        h = helpers.S3Client(srv.endpoint, srv.access_key,
                             srv.secret_key).head(BUCKET, pre + "/big")
        if h is None or h.get("etag", "").strip('"') != d.big_md5:
            raise CheckError("curl PUT: stored ETag %r is not the md5 %s"
                             % (h and h.get("etag"), d.big_md5))
        self.rec("W1", "s", t, dt)
        self.rec("W1", "MiB/s", t, d.big_size / MiB / dt)
        self.drop_caches()
        with self.cpu("W2", "s", t):
            dt, out = self.timed(self.curl("-o", "/dev/null", url))
        if out.split() != ["200", str(d.big_size)]:
            raise CheckError("curl GET: %s" % out)
        self.rec("W2", "s", t, dt)
        self.rec("W2", "MiB/s", t, d.big_size / MiB / dt)
        self.direct_ranged(pre + "/big")

        # W5: ranged 4 KiB GETs, 4 threads, same duration
        secs = self.sz["w5_seconds"]
        stop = time.monotonic() + secs
        key = self.k(pre, "big")

        def reader(i):
            c, rnd, n = srv.keepalive(), random.Random(60 + i), 0
            try:
                while time.monotonic() < stop:
                    off = rnd.randrange(d.big_size // 4096) * 4096
                    if len(c.get(key, (off, off + 4095))) != 4096:
                        raise CheckError("W5 direct: short ranged GET")
                    n += 1
            finally:
                c.close()
            return n
        with cf.ThreadPoolExecutor(4) as ex:
            self.rec("W5", "IOPS", t, sum(ex.map(reader, range(4))) / secs)

    def direct_w3(self, pre):
        t, d, srv = "direct", self.data, self.srv
        # W3: one PUT after another on one keep-alive connection, by the
        # faster of one curl process given every URL and python's
        # http.client; a PUT is stored when it returns, so that figure is
        # the direct one for the fsync variant too
        with self.cpu("W3", "s", "curl"):
            dt_curl = self.w3_curl(pre + "/w3c")
        self.check_w3(pre + "/w3c/")
        c = srv.keepalive()
        try:
            with self.cpu("W3", "s", "python"):
                t0 = time.monotonic()
                for i, b in enumerate(d.w3):
                    c.put(self.k(pre, "w3", "f%04d" % i), b)
                dt_py = time.monotonic() - t0
            # the same PUTs with what a bucketfs PUT carries besides the
            # bytes (W7: w7_put_as_bucketfs)
            with self.cpu("W3", "s, signed payload + metadata", "python"):
                t0 = time.monotonic()
                for i, b in enumerate(d.w3):
                    c.put(self.k(pre, "w3m", "f%04d" % i), b, bfs_like(b))
                self.rec("W3", "s, signed payload + metadata", t,
                         time.monotonic() - t0)
        finally:
            c.close()
        self.check_w3(pre + "/w3/")
        self.rec("W3", "files/s", "curl", len(d.w3) / dt_curl)
        self.rec("W3", "files/s", "python", len(d.w3) / dt_py)
        dt = min(dt_curl, dt_py)
        for sfx in ("", ", fsync"):
            self.rec("W3", "s" + sfx, t, dt)
            self.rec("W3", "files/s" + sfx, t, len(d.w3) / dt)

    def direct_w7(self, pre):
        t, d, srv = "direct", self.data, self.srv
        # W7: as many writers as the mounts get, each PUTting its files
        # one after another on its own keep-alive connection; then GETs
        # the same way, page cache dropped first
        groups = self.w7_groups()

        def w7_put(cl, w):
            for i, b in enumerate(d.w7[w]):
                cl.put(self.k(pre, "w7", groups[w], "f%02d.bin" % i), b)

        def w7_put_as_bucketfs(cl, w):
            # what a bucketfs PUT carries besides the bytes: the payload
            # hash (plain http), the s3fs metadata
            for i, b in enumerate(d.w7[w]):
                cl.put(self.k(pre, "w7s", groups[w], "f%02d.bin" % i), b,
                       bfs_like(b))

        def w7_get(cl, w):
            return sum(hashlib.sha256(cl.get(self.k(
                pre, "w7", groups[w], "f%02d.bin" % i))).hexdigest() != sha
                for i, sha in enumerate(d.w7_sha[w]))
        pool = Pool(srv, len(groups))
        try:
            with self.cpu("W7", "write s", t):
                t0 = time.monotonic()
                pool.map(w7_put, range(len(groups)))
                dt_in = time.monotonic() - t0
            with self.cpu("W7", "write s, signed payload + metadata", t):
                t0 = time.monotonic()
                pool.map(w7_put_as_bucketfs, range(len(groups)))
                self.rec("W7", "write s, signed payload + metadata", t,
                         time.monotonic() - t0)
            self.drop_caches()
            with self.cpu("W7", "read s", t):
                t0 = time.monotonic()
                bad = sum(pool.map(w7_get, range(len(groups))))
                dt_out = time.monotonic() - t0
        finally:
            pool.close()
        if bad:
            raise CheckError("W7 direct: %d files with wrong bytes" % bad)
        self.rec_w7(t, dt_in, dt_out)

    def direct_w4(self, run):
        t, srv = "direct", self.srv
        # W4: what the HEADs of `ls -l` cost the server: one HEAD of every
        # object of the run's W4 folder, 16 at once (a listing's HEADs in
        # bucketfs, BFS_DIR_HEADS: the caller and 15 pool jobs), one
        # keep-alive connection per thread
        folder = "r%d/w4" % run
        keys = [self.k(folder, "o%05d" % i)
                for i in range(self.sz["w4_objects"])]

        def head(cl, key):
            st, _ = cl.request("HEAD", key)
            if st != 200:
                raise CheckError("W4 direct HEAD %s: HTTP %d" % (key, st))
        pool = Pool(srv, 16)
        try:
            with self.cpu("W4", "s, HEAD of each, 16 threads", t):
                t0 = time.monotonic()
                pool.map(head, keys)
                self.rec("W4", "s, HEAD of each, 16 threads", t,
                         time.monotonic() - t0)
        finally:
            pool.close()

    def direct_w6(self, pre):
        t, d, srv = "direct", self.data, self.srv
        # W6: parallel upload and download (10 threads, as awscli's default
        # max_concurrent_requests), then aws s3 cp --recursive if present
        rels = sorted(d.w6_files)

        # first one PUT after another on one connection: what a `cp -r`
        # whose every close() waits for its object can reach at most
        c = srv.keepalive()
        try:
            with self.cpu("W6", "in s, serial PUTs", t):
                t0 = time.monotonic()
                for rel in rels:
                    with open(os.path.join(d.w6, rel), "rb") as f:
                        c.put(self.k(pre, "w6s", rel), f.read())
                self.rec("W6", "in s, serial PUTs", t, time.monotonic() - t0)
        finally:
            c.close()

        def up(cl, rel):
            with open(os.path.join(d.w6, rel), "rb") as f:
                cl.put(self.k(pre, "w6", rel), f.read())

        def down(cl, rel):
            return hashlib.sha256(cl.get(self.k(pre, "w6", rel))).hexdigest()
        pool = Pool(srv, 10)
        try:
            t0 = time.monotonic()
            pool.map(up, rels)
            dt_in = time.monotonic() - t0
            t0 = time.monotonic()
            shas = pool.map(down, rels)
            dt_out = time.monotonic() - t0
        finally:
            pool.close()
        if shas != [d.w6_files[r] for r in rels]:
            raise CheckError("W6 direct: downloaded bytes differ")
        mb = d.w6_bytes / MiB
        self.rec("W6", "in s", t, dt_in)
        self.rec("W6", "out s", t, dt_out)
        self.rec("W6", "in MiB/s", t, mb / dt_in)
        self.rec("W6", "out MiB/s", t, mb / dt_out)

    def direct_ranged(self, key):
        """W2 by the request pattern of bucketfs's block cache: ranged
        GETs of 1 MiB, 6 at once (BFS_RC_WORKERS); and of 8 MiB, to show
        what the size of a request costs this server.  Bytes are
        received and dropped, as by curl -o /dev/null."""
        size = self.data.big_size
        for blk, name in ((MiB, "s, 1 MiB ranged GETs x6"),
                          (8 * MiB, "s, 8 MiB ranged GETs x6")):
            offs = list(range(0, size, blk))

            def get(cl, off):
                b = cl.get(self.k(key), (off, min(off + blk, size) - 1))
                if len(b) != min(blk, size - off):
                    raise CheckError("W2 ranged GET at %d: %d bytes"
                                     % (off, len(b)))
            self.drop_caches()
            pool = Pool(self.srv, 6)
            try:
                with self.cpu("W2", name, "direct"):
                    t0 = time.monotonic()
                    pool.map(get, offs)
                    self.rec("W2", name, "direct", time.monotonic() - t0)
            finally:
                pool.close()

    def aws_env(self):
        return dict(os.environ, AWS_ACCESS_KEY_ID=self.srv.access_key,
                    AWS_SECRET_ACCESS_KEY=self.srv.secret_key,
                    AWS_DEFAULT_REGION=self.srv.region,
                    AWS_CONFIG_FILE=os.path.join(self.work, "no-aws-config"),
                    AWS_SHARED_CREDENTIALS_FILE=os.path.join(
                        self.work, "no-aws-credentials"))

    def aws_big(self, pre):
        """W1/W2 by `aws s3 cp` (multipart upload of 8 MiB parts and
        ranged GETs, 10 at once): a plain client that splits the file as
        a FUSE daemon must."""
        env = self.aws_env()
        url = "s3://%s/%s/aws-big" % (BUCKET, pre)
        base = ["aws", "--endpoint-url", self.srv.endpoint, "s3", "cp",
                "--only-show-errors"]
        with self.cpu("W1", "s", "aws-cli"):
            dt, _ = self.timed(base + [self.data.big, url], env=env,
                               timeout=3600)
        self.rec("W1", "s", "aws-cli", dt)
        self.rec("W1", "MiB/s", "aws-cli", self.data.big_size / MiB / dt)
        self.drop_caches()
        with self.cpu("W2", "s", "aws-cli"):
            dt, _ = self.timed(["sh", "-c", '"$@" > /dev/null', "sh"] + base
                               + [url, "-"], env=env, timeout=3600)
        self.rec("W2", "s", "aws-cli", dt)
        self.rec("W2", "MiB/s", "aws-cli", self.data.big_size / MiB / dt)

    def w3_curl(self, pre):
        """Seconds for one curl process to PUT every W3 file to pre/,
        one after another on its kept-alive connection."""
        cfg = os.path.join(self.work, "w3-curl.cfg")
        with open(cfg, "w") as f:
            for i in range(len(self.data.w3)):
                f.write('upload-file = "%s"\nurl = "%s/%s/%s/f%04d"\n' % (
                    os.path.join(self.data.w3dir, "f%04d" % i),
                    self.srv.endpoint, BUCKET, pre, i))
        argv = self.curl("-K", cfg)
        argv[argv.index("-w") + 1] = "%{http_code}\n"
        dt, out = self.timed(argv, timeout=3600)
        codes = out.split()
        if codes != ["200"] * len(self.data.w3):
            raise CheckError("W3 curl: %d of %d PUTs answered 200" % (
                codes.count("200"), len(self.data.w3)))
        return dt

    def aws_w6(self, pre):
        env = self.aws_env()
        base = ["aws", "--endpoint-url", self.srv.endpoint, "s3", "cp",
                "--recursive", "--only-show-errors"]
        s3url = "s3://%s/%s/aws-w6/" % (BUCKET, pre)
        out = os.path.join(self.work, "aws-out")
        try:
            with self.cpu("W6", "in s", "aws-cli"):
                dt_in, _ = self.timed(base + [self.data.w6 + "/", s3url],
                                      env=env, timeout=3600)
            with self.cpu("W6", "out s", "aws-cli"):
                dt_out, _ = self.timed(base + [s3url, out + "/"], env=env,
                                       timeout=3600)
            self.check_tree(out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        self.rec("W6", "in s", "aws-cli", dt_in)
        self.rec("W6", "out s", "aws-cli", dt_out)

    def make_w4(self, folder):
        n = self.sz["w4_objects"]
        pool = Pool(self.srv, 16)
        log("W4: creating %d objects under %s (16 threads)" % (n, folder))
        try:
            pool.map(lambda c, i: c.put(self.k(folder, "o%05d" % i),
                                        b"w4 object %d\n" % i), range(n))
        finally:
            pool.close()
        c = self.srv.keepalive()
        try:
            c.list(BUCKET, folder + "/")      # warm the bucket index once
            t0 = time.monotonic()
            keys = c.list(BUCKET, folder + "/")
            dt = time.monotonic() - t0
        finally:
            c.close()
        if len(keys) != n:
            raise CheckError("W4: the server lists %d objects, wanted %d"
                             % (len(keys), n))
        self.rec("W4", "cold s", "direct", dt)   # 2nd listing of the run
        self.rec("W4", "cold s, list_metadata = listing", "direct", dt)

    def cleanup_run(self, run):
        keys = [BUCKET + "/" + k for k in self.keys_under("r%d/" % run)]
        c = self.srv.keepalive()
        try:
            keys += [BUCKET2 + "/" + k for k in c.list(BUCKET2, "r%d/" % run)]
        finally:
            c.close()
        log("run %d: deleting %d objects, collecting garbage" % (run,
                                                                len(keys)))
        pool = Pool(self.srv, 16)
        try:
            pool.map(lambda c, k: c.request("DELETE", k), keys)
        finally:
            pool.close()
        self.srv.gc()

    def step(self, run, target, wl, fn, *a):
        if self.args.only and wl not in self.args.only:
            return
        log("run %d: %s %s" % (run, target, wl))
        try:
            fn(*a)
        except CheckError as e:
            self.errors.append((run, target, wl, str(e)))
            log("run %d: %s %s FAILED: %s" % (run, target, wl, e))

    def run(self):
        self.targets = self.args.targets
        self.setup()
        for run in range(1, self.args.runs + 1):
            fs = [t for t in ("bucketfs", "bucketfs-b", "s3fs")
                  if t in self.targets]
            if run % 2 == 0:
                fs.reverse()
            folder = "r%d/w4" % run
            if not self.args.only or "W4" in self.args.only:
                try:
                    self.make_w4(folder)
                except CheckError as e:
                    self.errors.append((run, "direct", "W4", str(e)))
            w8 = None
            if any(map(is_bfs, fs)) and (not self.args.only or
                                     "W8" in self.args.only):
                try:
                    self.make_w8("r%d/w8" % run)
                    w8 = "r%d/w8" % run
                except CheckError as e:
                    self.errors.append((run, "direct", "W8", str(e)))
            for t in fs:
                pre = "r%d/%s" % (run, t)
                self.step(run, t, "W1", self.fs_w1, t, pre)
                self.step(run, t, "W2", self.fs_w2, t, pre)
                self.step(run, t, "W5", self.fs_w5, t, pre)
                self.step(run, t, "W3", self.fs_w3, t, pre)
                self.step(run, t, "W4", self.fs_w4, t, folder)
                self.step(run, t, "W6", self.fs_w6, t, pre, run)
                self.step(run, t, "W7", self.fs_w7, t, pre)
                if is_bfs(t) and w8 and not (t == "bucketfs-b" and
                                             self.args.b_no_views):
                    self.step(run, t, "W8", self.fs_w8, t, w8)
            if "direct" in self.targets:
                log("run %d: direct clients" % run)
                try:
                    self.direct(run, "r%d/direct" % run)
                except CheckError as e:
                    self.errors.append((run, "direct", "-", str(e)))
            self.cleanup_run(run)

    # ---- the report ----
    def report(self):
        def stat(vals):
            if not vals:
                return "-"
            med = statistics.median(vals)
            if len(vals) == 1:
                return fmt(med)
            return "%s [%s-%s]" % (fmt(med), fmt(min(vals)), fmt(max(vals)))

        def fmt(v):
            return "%.0f" % v if v >= 100 else "%.2f" % v if v < 10 \
                else "%.1f" % v

        rows = []
        higher_better = ("MiB/s", "IOPS", "files/s", "files/s, fsync")
        order = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"]
        metrics = []
        for (wl, metric, _t) in self.results:
            if (wl, metric) not in metrics:
                metrics.append((wl, metric))
        metrics.sort(key=lambda x: order.index(x[0]))
        for wl, metric in metrics:
            g = lambda t: self.results.get((wl, metric, t), [])  # noqa: E731
            b, s, bb = g("bucketfs"), g("s3fs"), g("bucketfs-b")
            ratio = "-"
            if b and s and statistics.median(s) > 0:
                ratio = "%.2f" % (statistics.median(b) /
                                  statistics.median(s))
            ab = "-"
            if b and bb and statistics.median(bb) > 0:
                ab = "%.3f" % (statistics.median(b) / statistics.median(bb))
            direct = stat(g("direct"))
            if g("aws-cli"):
                direct += " / aws-cli %s" % stat(g("aws-cli"))
            better = "higher" if metric.endswith(higher_better) else "lower"
            row = [wl, "%s (%s better)" % (metric, better), stat(b),
                   stat(s), ratio, direct]
            if self.bucketfs_b:
                row[3:3] = [stat(bb), ab]
            rows.append(row)
        hdr = ["workload", "metric", "bucketfs med [min-max]",
               "s3fs med [min-max]", "bfs/s3fs", "direct (server limit)"]
        if self.bucketfs_b:
            hdr[3:3] = ["bucketfs-b med [min-max]", "bfs/bfs-b"]
        lines = ["| " + " | ".join(hdr) + " |",
                 "|" + "---|" * len(hdr)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
        lines.append("| peak RSS (VmHWM, MiB) | bucketfs | s3fs | bfs/s3fs |")
        lines.append("|---|---|---|---|")
        for wl in order:
            b = [v / 1024 for v in self.rss.get((wl, "bucketfs"), [])]
            s = [v / 1024 for v in self.rss.get((wl, "s3fs"), [])]
            if not b and not s:
                continue
            ratio = ("%.2f" % (max(b) / max(s))) if b and s and max(s) else "-"
            lines.append("| %s | %s | %s | %s |" % (
                wl, "%.1f" % max(b) if b else "-",
                "%.1f" % max(s) if s else "-", ratio))
        lines.append("")
        if self.cpu_res:
            lines.append("| CPU-s in the timed part (medians) | target | wall "
                         "s | client | daemon | server | busy cores |")
            lines.append("|---|---|---|---|---|---|---|")
            tord = ["bucketfs", "bucketfs-b", "s3fs", "direct", "curl",
                    "python", "aws-cli"]
            for (wl, metric, t) in sorted(
                    self.cpu_res, key=lambda k: (order.index(k[0]), k[1],
                                                 tord.index(k[2]))):
                v = self.cpu_res[(wl, metric, t)]
                med = [statistics.median(x[i] for x in v) for i in range(4)]
                busy = sum(med[1:]) / med[0] if med[0] > 0 else 0.0
                lines.append("| %s %s | %s | %s | %s | %s | %s | %.2f |" % (
                    wl, metric, t, fmt(med[0]), fmt(med[1]),
                    fmt(med[2]) if t in ("bucketfs", "bucketfs-b", "s3fs")
                    else "-", fmt(med[3]), busy))
            lines.append("")
        if "bucketfs" in self.targets:
            cs = parse_size(self.args.cache_size)
            lines.append("bucketfs cache_dir peak: %.1f MiB of cache_size "
                         "%.0f MiB (%s)" % (
                             self.cache_peak / MiB, cs / MiB,
                             "within" if self.cache_peak <= cs else
                             "EXCEEDED"))
            if self.cache_peak > cs:
                self.errors.append((0, "bucketfs", "cache",
                                    "cache_dir peak %d > cache_size %d"
                                    % (self.cache_peak, cs)))
        return "\n".join(lines)

    def machine(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
        return ("%s, %d CPUs (%s), %d MiB RAM, kernel %s"
                % (platform.node(), os.cpu_count(), cpu, mem,
                   platform.release()))


def git_rev():
    """The tree's commit, with "+dirty" when files differ from it."""
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short",
                              "HEAD"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain",
                                "-uno"], capture_output=True, text=True,
                               timeout=30).stdout.strip()
        return (rev or "?") + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def main():
    ap = argparse.ArgumentParser(
        description="bucketfs vs s3fs on a private Ceph RGW (W1-W8).")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", action="store_true",
                    help="small sizes: 64 MiB, 100 files, 1,000 objects")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes that only prove the harness runs "
                    "end to end (8 MiB, 20 files, 200 objects)")
    ap.add_argument("--rgw-endpoint",
                    help="use this running RGW (rgw.py's keys, e.g. "
                    "scripts/rgw.sh) with buckets of its own instead of "
                    "starting one")
    ap.add_argument("--targets", default="bucketfs,s3fs,direct",
                    help="comma list of bucketfs, s3fs, direct")
    ap.add_argument("--only", default="",
                    help="comma list of workloads, e.g. W1,W2")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="folder holding bucketfs and bucketctl")
    ap.add_argument("--build-b", help="A/B: a second build folder whose "
                    "daemon runs every bucketfs workload too, interleaved "
                    "(target bucketfs-b; its bucketctl is not used)")
    ap.add_argument("--b-no-views", action="store_true",
                    help="the --build-b daemon has no context views (a tree "
                    "before them): W7 through bucket folders for both, no "
                    "W8 for bucketfs-b")
    ap.add_argument("--bfs-extra", help="diagnostics: config lines added to "
                    "every [bucket] section of both bucketfs targets, "
                    "';'-separated (e.g. 'list_metadata = listing')")
    ap.add_argument("--cache-size", default="2G",
                    help="bucketfs cache_size (default 2G)")
    ap.add_argument("--w5-seconds", type=int, default=0)
    ap.add_argument("--no-fio", action="store_true",
                    help="W5 with the python pread loop even if fio works")
    ap.add_argument("--workdir", help="work folder (default: new in /var/tmp)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work folder (logs) at the end")
    args = ap.parse_args()
    args.targets = [t for t in args.targets.split(",") if t]
    args.only = [w.upper() for w in args.only.split(",") if w]
    if args.build_b and "bucketfs" in args.targets:
        args.targets.append("bucketfs-b")
    bad = set(args.targets) - {"bucketfs", "bucketfs-b", "s3fs", "direct"}
    if bad or args.runs < 1:
        ap.error("bad --targets %s or --runs" % ",".join(bad))

    def interrupt(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)

    b = Bench(args)
    rev = git_rev()
    t0 = time.monotonic()
    try:
        b.run()
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        b.teardown()
        return 130
    except BaseException:
        b.teardown()
        raise
    b.teardown()
    table = b.report()
    print("\nbucketfs vs s3fs %s on Ceph RGW %s; %d run(s), %s sizes%s"
          % ("1.90", "(shared, %s)" % args.rgw_endpoint if args.rgw_endpoint
             else "(private, loopback)", args.runs,
             "quick" if args.quick else "small" if args.small else "full",
             "; W5 by fio" if b.fio else "; W5 by python pread"))
    print("machine: " + b.machine())
    if "bucketfs" in args.targets:
        print("bucketfs: %s, built %s; tree at start %s" % (
            b.bucketfs, time.strftime("%Y-%m-%d %H:%M", time.localtime(
                os.stat(b.bucketfs).st_mtime)), rev))
    print("command: " + " ".join([os.path.basename(sys.executable)]
                                 + sys.argv))
    if b.bfs_extra:
        print("bucketfs sections had these lines added (--bfs-extra): "
              + "; ".join(b.bfs_extra.splitlines()))
    print("wall time: %.0f s\n" % (time.monotonic() - t0))
    print(table)
    for n in dict.fromkeys(b.notes):
        print("note: " + n)
    for run, t, wl, msg in b.errors:
        print("ERROR run %d %s %s: %s" % (run, t, wl, msg))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": [dict(workload=w, metric=m, target=t,
                                        values=v) for (w, m, t), v in
                                   b.results.items()],
                       "rss_kib": [dict(workload=w, target=t, values=v)
                                   for (w, t), v in b.rss.items()],
                       "cpu_s": [dict(workload=w, metric=m, target=t,
                                      wall_client_daemon_server=v)
                                 for (w, m, t), v in b.cpu_res.items()],
                       "cache_peak": b.cache_peak,
                       "errors": b.errors, "notes": b.notes,
                       "machine": b.machine(), "argv": sys.argv}, f,
                      indent=1)
    return 1 if b.errors else 0


if __name__ == "__main__":
    sys.exit(main())
