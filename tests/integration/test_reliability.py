"""test_reliability.py - bucketfs under S3 faults, outages and kill -9.

The daemon talks to the session RGW through faultproxy.FaultProxy (fixture
faulty_s3, fault_fixtures.py), which injects 503 SlowDown / 500
InternalError answers, connection resets before and after the server ran
the request, delays, hangs and full outages.  What is checked comes from
INTERFACE.md "File semantics": close() and fsync() return only once the
provider stored the data, a failure is returned there as EIO (within
upload_timeout, 5 s in these configs) and never swallowed, transient
faults are retried and never surface, staged data survives failures and
crashes and reaches the server once it is reachable again (the upload
journal: `bucketctl pending`).  Every byte is checked on RGW directly
(sha256 through helpers.S3Client), and after every fault test the daemon
must still be mounted and serving.

The first tests check the proxy itself: HTTP/1.1 framing against a stub
server, each fault kind against RGW.
"""

import errno
import hashlib
import http.client
import http.server
import json
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import helpers
from helpers import close_quietly, wait_stored
from fault_fixtures import UPLOAD_TIMEOUT, faulty_s3, kill9  # noqa: F401
from faultproxy import FaultProxy

MIB = 1 << 20
SLACK = 3.0                 # seconds over upload_timeout for EIO
LAND_TIMEOUT = 30.0         # seconds for journaled data to reach RGW


def sha(b):
    return hashlib.sha256(b).hexdigest()


def digest(b):
    """Short comparable form of bytes for assertions (no megabyte reprs
    in failure output)."""
    return "absent" if b is None else "%d:%s" % (len(b), sha(b)[:24])


def rbytes(n, seed):
    return random.Random(seed).randbytes(n)


def write_file(path, data, chunk=MIB):
    """os.open/os.write/os.close; every error propagates (close too)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        for off in range(0, len(data), chunk):
            view = memoryview(data)[off:off + chunk]
            while view:
                n = os.write(fd, view)
                view = view[n:]
    except BaseException:
        close_quietly(fd)
        raise
    os.close(fd)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while True:
            b = os.read(fd, MIB)
            if not b:
                return b"".join(parts)
            parts.append(b)
    finally:
        os.close(fd)


def outage_hits(proxy):
    s = proxy.stats()
    return s.get("outage_requests", 0) + s.get("outage_connections", 0)


def wait_quiet(proxy, quiet=2.0, timeout=UPLOAD_TIMEOUT + 8.0):
    """Waits until the daemon sent nothing to the (down) proxy for quiet
    seconds, at most timeout; returns the seconds waited."""
    t0 = time.monotonic()
    last, since = outage_hits(proxy), time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.2)
        n = outage_hits(proxy)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return time.monotonic() - t0


def describe(got, want):
    if got is None:
        return "absent"
    return "%d bytes sha256 %s (want %d bytes %s)" % (
        len(got), sha(got)[:16], len(want), sha(want)[:16])


def assert_serving(fs, m, bucket="b1"):
    """Faults off: the daemon is alive, mounted and answers
    (helpers.assert_serving, the probe checked on RGW)."""
    fs.proxy.passthrough()
    helpers.assert_serving(m, bucket, m.backends[bucket])


def assert_pending_empty(m, timeout=5.0):
    """`bucketctl pending` empties once the data is stored."""
    end = time.monotonic() + timeout
    while True:
        p = m.ctl("pending")
        if "no pending uploads" in p.stdout or time.monotonic() > end:
            break
        time.sleep(0.3)
    assert "no pending uploads" in p.stdout, \
        "stored, yet still pending:\n" + p.stdout


def helpers_tail(m):
    return "\n".join(m.stderr().splitlines()[-40:])


# ================================================================ the proxy

class _StubHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive stub: echoes request bodies (also chunked ones)
    back with the framing the path asks for."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _answer(self, body):
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
        elif self.path.startswith("/nocontent"):
            self.send_response(204)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def do_PUT(self):
        self._answer(self._body())

    def do_GET(self):
        self._answer(self.path.encode() * 3)

    def do_HEAD(self):
        self._answer(b"x" * 1000)

    def do_DELETE(self):
        self._answer(b"")


@pytest.fixture
def stub_proxy():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={
        "poll_interval": 0.1}, daemon=True)
    t.start()
    proxy = FaultProxy("127.0.0.1", srv.server_address[1]).start()
    try:
        yield proxy
    finally:
        left = proxy.stop()
        srv.shutdown()
        srv.server_close()
        t.join(5)
        assert not left, "proxy threads alive after stop: %s" % left


def test_proxy_http11_framing(stub_proxy):
    proxy = stub_proxy
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        # several requests on ONE client connection (keep-alive)
        c.request("PUT", "/a", body=b"hello" * 1000)
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"hello" * 1000)
        body = rbytes(100000, 1)
        c.request("PUT", "/chunked/b", body=iter([body[:33333],
                                                  body[33333:]]),
                  encode_chunked=True)
        r = c.getresponse()
        assert r.status == 200 and r.read() == body
        c.request("HEAD", "/h")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Content-Length") == "1000"
        assert r.read() == b""
        c.request("DELETE", "/nocontent/x")
        r = c.getresponse()
        assert r.status == 204 and r.read() == b""
        c.request("GET", "/g")
        r = c.getresponse()
        assert r.read() == b"/g/g/g"
    finally:
        c.close()
    assert proxy.stats()["connections"] == 1
    assert proxy.stats()["forwarded"] == 5

    # pipelined requests and Expect: 100-continue on a raw socket
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        s.sendall(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /p2 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while got.count(b"/p2/p2/p2") < 1:
            b = s.recv(65536)
            assert b, "proxy closed a pipelined connection: %r" % got
            got += b
        assert b"/p1/p1/p1" in got
        s.sendall(b"PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"abc")
        got = b""
        while not got.endswith(b"abc"):
            b = s.recv(65536)
            assert b
            got += b
        assert got.startswith(b"HTTP/1.1 200")
    finally:
        s.close()


@pytest.fixture
def rgw_proxy(rgw):
    host, port = rgw.endpoint[len("http://"):].split(":")
    proxy = FaultProxy(host, int(port), seed=7).start()
    client = helpers.S3Client(proxy.endpoint, rgw.access_key,
                              rgw.secret_key, rgw.region)
    bucket = "bfs-proxy-%d" % random.randrange(1 << 30)
    rgw.client.create_bucket(bucket)
    try:
        yield proxy, client, bucket
    finally:
        left = proxy.stop()
        assert not left, "proxy threads alive after stop: %s" % left
        # stopped means stopped: nothing listens any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port),
                                     timeout=2).close()
        rgw.client.delete_bucket(bucket)


def test_proxy_faults_against_rgw(rgw, rgw_proxy):
    proxy, c, bucket = rgw_proxy
    direct = rgw.client
    assert c.put(bucket, "pass", b"through") == 200
    assert c.get(bucket, "pass") == b"through"
    assert proxy.faults() == 0 and proxy.stats()["forwarded"] == 2

    for code, s3code in ((503, b"<Code>SlowDown</Code>"),
                         (500, b"<Code>InternalError</Code>")):
        proxy.configure(error_rate=1.0, error_codes=(code,), max_streak=99)
        st, _, body = c.request("PUT", bucket, "err%d" % code, body=b"x")
        assert st == code and s3code in body
        st, hdrs, body = c.request("HEAD", bucket, "pass")
        assert st == code and body == b""
        assert direct.get(bucket, "err%d" % code) is None, \
            "an injected error must not reach the server"
    s = proxy.stats()
    assert s["error_503"] == 2 and s["error_500"] == 2

    # max_streak: the same request gets at most 2 faults in a row
    proxy.configure(error_rate=1.0, error_codes=(503,), max_streak=2)
    assert [c.put(bucket, "streak", b"s") for _ in range(3)] == \
        [503, 503, 200]

    proxy.configure(reset_before_rate=1.0, max_streak=99)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        c.put(bucket, "before", b"b")
    assert direct.get(bucket, "before") is None

    proxy.configure(reset_after_rate=1.0, max_streak=99)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        c.put(bucket, "after", b"a")
    assert direct.get(bucket, "after") == b"a", \
        "reset after forwarding: the server must have run the request"
    s = proxy.stats()
    assert s["reset_before"] == 1 and s["reset_after"] == 1

    proxy.configure(delay_rate=1.0, delay=0.4)
    t0 = time.monotonic()
    assert c.get(bucket, "pass") == b"through"
    assert time.monotonic() - t0 >= 0.4 and proxy.stats()["delayed"] == 1

    proxy.configure(error_rate=1.0, max_streak=99)
    proxy.inject_next("reset_before",
                      match=lambda m, t: m == "GET" and "/pass" in t)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        c.get(bucket, "pass")
    proxy.passthrough()

    proxy.outage()
    for _ in range(2):
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            c.get(bucket, "pass")
    assert proxy.stats()["outage_connections"] >= 2
    proxy.restore()
    assert c.get(bucket, "pass") == b"through"

    proxy.hang()
    res = []
    t = threading.Thread(target=lambda: res.append(c.get(bucket, "pass")))
    t.start()
    t.join(0.5)
    assert t.is_alive() and not res, "a hung request was answered"
    proxy.restore()
    t.join(10)
    assert res == [b"through"]
    for k in list(direct.list_keys(bucket)):
        direct.delete(bucket, k)


# ================================================================ the daemon

def _mixed_sizes():
    sizes = [0, 1, 17, 4096, 65536, 8 * MIB, 8 * MIB + 1, 20 * MIB,
             20 * MIB + 12345]
    rng = random.Random(60)
    while len(sizes) < 60:
        sizes.append(rng.choice([rng.randrange(1, 4096),
                                 rng.randrange(4096, 300 * 1024),
                                 rng.randrange(300 * 1024, 3 * MIB)]))
    return sizes


def test_transient_faults_never_surface(faulty_s3):
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    # 24% of requests fail: 12% S3 errors (503/500), 6% resets before the
    # server sees the request, 6% resets after it ran it
    fs.proxy.configure(error_rate=0.12, reset_before_rate=0.06,
                       reset_after_rate=0.06, max_streak=2)
    files = {"f%02d.bin" % i: rbytes(n, i)
             for i, n in enumerate(_mixed_sizes())}
    errors = []

    def put(name):
        try:
            write_file(m.path("b1", name), files[name])
        except OSError as e:
            errors.append("%s (%d bytes): %s" % (name, len(files[name]), e))

    with ThreadPoolExecutor(4) as ex:
        list(ex.map(put, sorted(files)))
    s = fs.proxy.stats()
    assert not errors, "a transient fault surfaced at close:\n%s\nproxy " \
        "%s\n%s" % ("\n".join(errors), s, helpers_tail(m))
    assert fs.proxy.faults() >= 0.15 * s["requests"] and \
        fs.proxy.faults() >= 20, "too few faults injected: %s" % s

    # read back through the mount while faults go on (GETs retry too)
    for name in ("f05.bin", "f07.bin", "f08.bin", "f20.bin", "f33.bin"):
        m_path = m.path("b1", name)
        got = read_file(m_path)
        assert digest(got) == digest(files[name]), "%s read through the mount: %s" % (
            name, describe(got, files[name]))
    fs.proxy.passthrough()

    stored = set(b.keys())
    assert stored == set(files), "keys on RGW differ: missing %s, extra %s" \
        % (sorted(set(files) - stored), sorted(stored - set(files)))
    for name, data in sorted(files.items()):
        got = b.read(name)
        assert digest(got) == digest(data), "%s on RGW: %s" % (name, describe(got, data))
    assert_serving(fs, m)


def test_multipart_complete_reset_after_server_ran_it(faulty_s3):
    """The hardest retry: CompleteMultipartUpload executed by the server,
    its answer lost.  The retried Complete finds no upload; the object is
    there all the same, so close must return 0."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    data = rbytes(20 * MIB, 99)
    fs.proxy.inject_next(
        "reset_after",
        match=lambda meth, t: meth == "POST" and "uploadId=" in t)
    write_file(m.path("b1", "big.bin"), data)
    assert fs.proxy.stats().get("reset_after") == 1, \
        "no CompleteMultipartUpload seen: %s" % fs.proxy.stats()
    got = b.read("big.bin")
    assert digest(got) == digest(data), describe(got, data)
    assert_serving(fs, m)


def test_outage_eio_within_upload_timeout_then_lands(faulty_s3):
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    p = m.path("b1", "outage.bin")
    data = rbytes(300 * 1024, 5)
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    closed = False
    try:
        assert os.write(fd, data) == len(data)
        fs.proxy.outage()
        t0 = time.monotonic()
        helpers.expect_errno(errno.EIO, os.fsync, fd)
        took = time.monotonic() - t0
        assert took <= UPLOAD_TIMEOUT + SLACK, \
            "fsync took %.1f s to fail (upload_timeout %d)" % (
                took, UPLOAD_TIMEOUT)
        # the data is kept: the open file still reads it back
        assert digest(os.pread(fd, len(data) + 10, 0)) == digest(data)
        t0 = time.monotonic()
        closed = True
        helpers.expect_errno(errno.EIO, os.close, fd)
        took = time.monotonic() - t0
        assert took <= UPLOAD_TIMEOUT + SLACK, \
            "close took %.1f s to fail (upload_timeout %d)" % (
                took, UPLOAD_TIMEOUT)
    finally:
        if not closed:
            close_quietly(fd)
    # let every retry of close/release run into the outage, so that what
    # lands afterwards can only come from a later (background) retry
    quiet = wait_quiet(fs.proxy)
    assert b.read("outage.bin") is None
    assert outage_hits(fs.proxy) > 0
    pend = m.ctl("pending", check=False)      # asserted below
    fs.proxy.restore()
    got = wait_stored(b, "outage.bin", data, LAND_TIMEOUT)
    assert digest(got) == digest(data), "after the outage the kept data did not reach " \
        "the server within %d s (the outage lasted %.1f s after close): " \
        "%s\n%s" % (LAND_TIMEOUT, quiet, describe(got, data),
                    helpers_tail(m))
    assert digest(read_file(p)) == digest(data)
    assert pend.returncode == 0 and "outage.bin" in pend.stdout, \
        "bucketctl pending during the outage (exit %d):\n%s%s" % (
            pend.returncode, pend.stdout, pend.stderr)
    assert_pending_empty(m)
    assert_serving(fs, m)


def test_hung_server_eio_within_upload_timeout(faulty_s3):
    """A server that accepts and never answers: close must still fail
    with EIO within upload_timeout, not after curl's minute-long stall
    timeout times the retry attempts."""
    fs = faulty_s3
    m = fs.mount()
    p = m.path("b1", "hung.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"held by a hung server\n")
    fs.proxy.hang()
    res = {}

    def closer():
        t0 = time.monotonic()
        try:
            os.close(fd)
            res["rc"] = 0
        except OSError as e:
            res["rc"] = e.errno
        res["took"] = time.monotonic() - t0

    t = threading.Thread(target=closer)
    t.start()
    t.join(UPLOAD_TIMEOUT + SLACK + 2)
    hung = t.is_alive()
    fs.proxy.restore()           # releases whatever the proxy held
    t.join(120)
    assert not hung, "close() still blocked %.0f s after the server hung " \
        "(upload_timeout %d); it returned %s after %.1f s once released" % (
            UPLOAD_TIMEOUT + SLACK + 2, UPLOAD_TIMEOUT, res.get("rc"),
            res.get("took", -1))
    assert res["rc"] == errno.EIO and \
        res["took"] <= UPLOAD_TIMEOUT + SLACK, res
    assert_serving(fs, m)


def test_kill9_after_fsync_data_on_server(faulty_s3):
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    data = rbytes(9 * MIB, 9)           # multipart
    small = b"synced before the crash\n"
    fd = os.open(m.path("b1", "synced.bin"), os.O_CREAT | os.O_WRONLY, 0o600)
    fd2 = os.open(m.path("b1", "small.txt"), os.O_CREAT | os.O_WRONLY,
                  0o644)
    try:
        os.write(fd, data)
        os.write(fd2, small)
        os.fsync(fd)
        os.fsync(fd2)
        kill9(m)
    finally:
        close_quietly(fd, fd2)
    got = b.read("synced.bin")
    assert digest(got) == digest(data), describe(got, data)
    assert b.read("small.txt") == small
    assert int(b.meta("synced.bin")["mode"]) & 0o7777 == 0o600
    m.start()
    assert digest(read_file(m.path("b1", "synced.bin"))) == digest(data)
    assert_serving(fs, m)


def test_kill9_unsynced_staged_data_recovered(faulty_s3):
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    data = rbytes(2 * MIB + 7, 11)
    write_file(m.path("b1", "before.txt"), b"closed earlier\n")
    fd = os.open(m.path("b1", "staged.bin"), os.O_CREAT | os.O_WRONLY,
                 0o644)
    try:
        assert os.write(fd, data) == len(data)   # reached the daemon
        kill9(m)
    finally:
        close_quietly(fd)
    pend = m.ctl("pending", check=False)      # asserted below
    m.start()
    got = wait_stored(b, "staged.bin", data, LAND_TIMEOUT)
    assert digest(got) == digest(data), "staged, unsynced data of a killed daemon did not " \
        "reach the server within %d s of the restart (journal recovery): " \
        "%s\n%s" % (LAND_TIMEOUT, describe(got, data), helpers_tail(m))
    assert digest(read_file(m.path("b1", "staged.bin"))) == digest(data)
    assert b.read("before.txt") == b"closed earlier\n"
    assert pend.returncode == 0 and "staged.bin" in pend.stdout, \
        "bucketctl pending after the kill (exit %d):\n%s%s" % (
            pend.returncode, pend.stdout, pend.stderr)
    assert_pending_empty(m)
    assert_serving(fs, m)


def test_kill9_after_eio_data_recovered(faulty_s3):
    """close() gave EIO ("data kept"), then the daemon dies: the next
    start finds the row (with the failure recorded: the failure path's
    durable commit ran) and the staged bytes, and stores them.  Since
    create/write journal lazily and a successful upload no longer fsyncs
    the staging file, the EIO path is what makes kept data durable."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    data = rbytes(700 * 1024 + 3, 13)
    p = m.path("b1", "kept.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o640)
    closed = False
    try:
        assert os.write(fd, data) == len(data)
        fs.proxy.outage()
        closed = True
        helpers.expect_errno(errno.EIO, os.close, fd)
    finally:
        if not closed:
            close_quietly(fd)
    pend = m.ctl("pending", "--json", check=False)     # asserted below
    kill9(m)
    fs.proxy.restore()
    assert b.read("kept.bin") is None
    rows = json.loads(pend.stdout) if pend.returncode == 0 else None
    assert rows and [r["key"] for r in rows] == ["kept.bin"] and \
        rows[0]["attempts"] >= 1 and rows[0]["last_error"] and \
        rows[0]["size"] == len(data), \
        "bucketctl pending after EIO (exit %d):\n%s%s" % (
            pend.returncode, pend.stdout, pend.stderr)
    m.start()
    got = wait_stored(b, "kept.bin", data, LAND_TIMEOUT)
    assert digest(got) == digest(data), "data kept after EIO did not " \
        "reach the server within %d s of a restart after kill -9: %s\n%s" \
        % (LAND_TIMEOUT, describe(got, data), helpers_tail(m))
    assert int(b.meta("kept.bin")["mode"]) & 0o7777 == 0o640
    assert_pending_empty(m)
    assert_serving(fs, m)


def test_parallel_writers_and_readers(faulty_s3):
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    d = m.path("b1", "shared")
    os.mkdir(d)
    fs.proxy.configure(error_rate=0.06, reset_before_rate=0.03,
                       reset_after_rate=0.03, max_streak=2)
    nwriters, nreaders, per_writer = 8, 8, 5
    lock = threading.Lock()
    done = {}                   # name -> data, once closed
    errors = []
    writers_left = [nwriters]
    reads = [0]

    def writer(w):
        rng = random.Random(1000 + w)
        try:
            for i in range(per_writer):
                name = "w%d-%d.bin" % (w, i)
                data = rng.randbytes(rng.choice(
                    [rng.randrange(1, 8192), rng.randrange(8192, 2 * MIB)]))
                write_file(os.path.join(d, name), data, chunk=64 * 1024)
                with lock:
                    done[name] = data
        except OSError as e:
            errors.append("writer %d: %s" % (w, e))
        finally:
            with lock:
                writers_left[0] -= 1

    def reader(r):
        rng = random.Random(r)
        try:
            while True:
                with lock:
                    finished = writers_left[0] == 0
                    names = sorted(done)
                listed = set(os.listdir(d))
                missing = set(names) - listed
                if missing:
                    errors.append("reader %d: closed files not listed: %s"
                                  % (r, sorted(missing)))
                    return
                if names:
                    name = rng.choice(names)
                    got = read_file(os.path.join(d, name))
                    if got != done[name]:
                        errors.append("reader %d: %s: %s" % (
                            r, name, describe(got, done[name])))
                        return
                    with lock:
                        reads[0] += 1
                if finished:
                    return
                time.sleep(0.01)
        except OSError as e:
            errors.append("reader %d: %s" % (r, e))

    threads = [threading.Thread(target=writer, args=(w,))
               for w in range(nwriters)]
    threads += [threading.Thread(target=reader, args=(r,))
                for r in range(nreaders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "threads stuck"
    assert not errors, "\n".join(errors[:20])
    assert len(done) == nwriters * per_writer and reads[0] >= nreaders
    fs.proxy.passthrough()
    assert sorted(os.listdir(d)) == sorted(done)
    for name, data in sorted(done.items()):
        got = b.read("shared/" + name)
        assert digest(got) == digest(data), "%s on RGW: %s" % (name, describe(got, data))
    assert_serving(fs, m)


def test_folder_rename_during_upload_no_resurrection(faulty_s3):
    """A folder renamed while a background upload of a file in it is on
    the wire (the close gave up with EIO, the job goes on): the upload
    must not bring the source folder back (the object under the old key,
    its index row).  The rename waits for the running job and no job
    starts while it moves (fence.c).  (While a close still waits, libfuse
    itself keeps the rename of the folder out.)"""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    data = b"written in d, lands in e\n" * 100
    os.mkdir(m.path("b1", "d"))
    fd = os.open(m.path("b1", "d", "f"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    fs.proxy.hold(lambda method, target: method == "PUT" and
                  target.split("?")[0].endswith("/d/f"))
    res = {}

    def renamer():
        try:
            os.rename(m.path("b1", "d"), m.path("b1", "e"))
            res["rename"] = 0
        except OSError as e:
            res["rename"] = e.errno

    tr = None
    try:
        try:
            os.close(fd)
            res["close"] = 0
        except OSError as e:
            res["close"] = e.errno       # EIO: gave up, job still running
        assert fs.proxy.stats().get("held", 0) >= 1, res
        tr = threading.Thread(target=renamer)
        tr.start()
        # the rename may wait for the held upload (it should); give it
        # the time to run meanwhile if it does not
        tr.join(2)
    finally:
        fs.proxy.release()
        if tr is not None:
            tr.join(60)
    assert res == {"close": errno.EIO, "rename": 0}, res
    assert helpers.wait_for(lambda: b.keys() == ["e/", "e/f"], 30), b.keys()
    assert b.read("e/f") == data
    assert sorted(os.listdir(m.path("b1"))) == ["e"]
    assert os.listdir(m.path("b1", "e")) == ["f"]
    idx = m.wait_index(lambda i: ("b1", "e/f") in i)
    assert ("b1", "d/f") not in idx, idx
    assert_serving(fs, m)


def test_stat_not_blocked_by_download_for_write(faulty_s3):
    """The first write to an existing object downloads it into the
    staging file; that download runs without the file's lock, so a
    listing and stat of its folder do not wait for the server (here: a
    GET the proxy holds) while the writer does."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    data = rbytes(2 * MIB, 21)
    b.put("dl.bin", data)
    p = m.path("b1", "dl.bin")
    fd = os.open(p, os.O_RDWR)
    res = {}

    def writer():
        try:
            res["write"] = os.pwrite(fd, b"X", 5)
        except OSError as e:
            res["write"] = -e.errno

    def stater():
        # a listing always reaches the daemon (nothing listed before);
        # it asks the open file for its attributes
        res["list"] = sorted(os.listdir(m.path("b1")))
        res["size"] = os.stat(p).st_size

    fs.proxy.hold(lambda method, target: method == "GET" and
                  target.split("?")[0].endswith("/dl.bin"))
    tw = threading.Thread(target=writer)
    ts = None
    try:
        tw.start()
        assert helpers.wait_for(lambda: fs.proxy.stats().get("held", 0) >= 1,
                                20), "the download never reached the proxy"
        ts = threading.Thread(target=stater)
        ts.start()
        ts.join(20)
        blocked = ts.is_alive()
    finally:
        fs.proxy.release()
        tw.join(60)
        if ts is not None:
            ts.join(60)
    try:
        assert not blocked, "stat waited for the writer's download"
        assert res["list"] == ["dl.bin"] and res["size"] == len(data), res
        assert res["write"] == 1, res
    finally:
        os.close(fd)
    want = data[:5] + b"X" + data[6:]
    assert b.read("dl.bin") == want
    assert_serving(fs, m)


def test_listing_not_blocked_by_chmod_copy(faulty_s3):
    """chmod of a clean file held open copies the object onto itself on
    S3 (new metadata); that copy runs without the file's lock, so a
    listing of its folder does not wait for the server (a PUT the proxy
    holds) meanwhile, and the mode lands."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    b.put("ch.bin", b"same bytes\n")
    p = m.path("b1", "ch.bin")
    fd = os.open(p, os.O_RDONLY)
    res = {}

    def chmoder():
        try:
            os.chmod(p, 0o600)
            res["chmod"] = 0
        except OSError as e:
            res["chmod"] = e.errno

    def lister():
        res["list"] = sorted(os.listdir(m.path("b1")))

    fs.proxy.hold(lambda method, target: method == "PUT" and
                  target.split("?")[0].endswith("/ch.bin"))
    tc = threading.Thread(target=chmoder)
    tl = None
    try:
        tc.start()
        assert helpers.wait_for(lambda: fs.proxy.stats().get("held", 0) >= 1,
                                20), "the copy never reached the proxy"
        tl = threading.Thread(target=lister)
        tl.start()
        tl.join(20)
        blocked = tl.is_alive()
    finally:
        fs.proxy.release()
        tc.join(60)
        if tl is not None:
            tl.join(60)
        os.close(fd)
    assert not blocked, "the listing waited for chmod's copy"
    assert res == {"chmod": 0, "list": ["ch.bin"]}, res
    assert int(b.meta("ch.bin")["mode"]) & 0o777 == 0o600
    assert b.read("ch.bin") == b"same bytes\n"
    assert_serving(fs, m)
