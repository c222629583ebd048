"""faultproxy.py - an HTTP/1.1 fault-injecting proxy for the reliability tests.

It sits on 127.0.0.1 between the daemon and the S3 server (stdlib only) and,
changed at any moment from the test thread, either passes requests through
or injects faults: an S3 error answered by the proxy itself (503 SlowDown,
500 InternalError; the request never reaches the server), a connection
reset (SO_LINGER 0 close) before the request is forwarded or after the
server has executed it (the client never sees the answer), a delay before
forwarding, a hang (held until released or the proxy stops), and a full
outage (every new connection and every request on an open one is reset).

How it works: one acceptor thread (selectors, 0.2 s ticks so it sees stop)
and one thread per client connection.  A connection thread reads one
request at a time with HTTP/1.1 framing (Content-Length or
Transfer-Encoding: chunked bodies, Expect: 100-continue answered by the
proxy), decides its fate under the lock, and when forwarding sends it
unchanged over its own keep-alive connection to the server (a fresh one
once more when a reused server connection turns out dead before any
answer byte), then relays the answer with its framing (HEAD, 1xx, 204 and
304 have no body; chunked; Content-Length; else until the server closes).
Requests are held in memory whole (capped at MAX_BODY), answers stream.

Faults hit a fraction of requests drawn from a seeded RNG.  max_streak
bounds how many faults in a row one request signature (method + target)
gets, so a client retrying the same request a bounded number of times
still gets through: the tests check that transient faults never surface,
not that a retry budget can be exhausted (the outage checks that).

Bounded: every socket has a timeout, every wait watches the stop event,
stop() shuts every socket down and joins every thread.
"""

import random
import selectors
import socket
import struct
import threading
import time
from xml.sax.saxutils import escape as xml_escape

MAX_HEAD = 64 * 1024
MAX_BODY = 256 << 20
IO_TIMEOUT = 120.0
CHUNK = 256 * 1024

ERRORS = {
    503: ("Service Unavailable", "SlowDown",
          "Please reduce your request rate."),
    500: ("Internal Server Error", "InternalError",
          "We encountered an internal error. Please try again."),
}


class _Closed(Exception):
    """The peer closed (or reset) its side; end this connection."""


class _Reader:
    """Buffered reads from one socket with framing helpers."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        try:
            data = self.sock.recv(CHUNK)
        except (OSError, ValueError) as e:
            raise _Closed(str(e)) from None
        if not data:
            raise _Closed("eof")
        self.buf += data

    def pending(self):
        return len(self.buf)

    def line(self, cap=MAX_HEAD):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return out
            if len(self.buf) > cap:
                raise _Closed("line too long")
            self._fill()

    def head(self):
        """Bytes up to and including the blank line (raw)."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                out = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return out
            if len(self.buf) > MAX_HEAD:
                raise _Closed("head too long")
            self._fill()

    def exact(self, n, sink):
        """Passes exactly n bytes to sink(bytes)."""
        while n > 0:
            if not self.buf:
                self._fill()
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def until_eof(self, sink):
        while True:
            if self.buf:
                sink(bytes(self.buf))
                self.buf.clear()
            try:
                self._fill()
            except _Closed:
                return

    def chunked(self, sink):
        """Passes a chunked body (sizes, data, trailers) to sink raw."""
        while True:
            ln = self.line()
            sink(ln)
            try:
                size = int(ln.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Closed("bad chunk size %r" % ln) from None
            if size == 0:
                while True:          # trailers up to the blank line
                    t = self.line()
                    sink(t)
                    if t == b"\r\n":
                        return
            self.exact(size + 2, sink)


def _parse_head(raw):
    """(first line parts, {lower name: value}) of a request/answer head."""
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    hdrs = {}
    for ln in lines[1:]:
        if not ln:
            continue
        k, _, v = ln.partition(":")
        k = k.strip().lower()
        v = v.strip()
        hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
    return first, hdrs


def _is_chunked(hdrs):
    return "chunked" in hdrs.get("transfer-encoding", "").lower()


def _reset(sock):
    """Closes with SO_LINGER 0: the peer gets a TCP RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """proxy = FaultProxy(upstream_host, upstream_port).start();
    proxy.endpoint is "http://127.0.0.1:PORT".  Change behaviour at any
    time with configure(), inject_next(), passthrough(), outage(), hang(),
    restore();
    read counters with stats(); stop() ends everything."""

    def __init__(self, upstream_host, upstream_port, seed=1):
        self.upstream = (upstream_host, int(upstream_port))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._release = threading.Event()    # set: hung requests go on
        self._release.set()
        self._hold_match = None              # hold(): requests to hold
        self._hold_go = threading.Event()
        self._hold_go.set()
        self._rng = random.Random(seed)
        self._threads = set()
        self._socks = set()
        self._streak = {}
        self._targeted = []
        self._counts = {}
        self._listener = None
        self._acceptor = None
        self.port = None
        self.endpoint = None
        self.passthrough()

    # ------------------------------------------------------------ control
    def configure(self, error_rate=0.0, error_codes=(503, 500),
                  reset_before_rate=0.0, reset_after_rate=0.0,
                  delay_rate=0.0, delay=0.0, max_streak=2):
        """Sets the fault mix (fractions of requests, drawn in that order:
        injected error, reset before forwarding, reset after forwarding;
        delay_rate is drawn on its own).  Ends an outage or a hang."""
        if error_rate + reset_before_rate + reset_after_rate > 1.0:
            raise ValueError("fault rates add up to more than 1")
        for c in error_codes:
            if c not in ERRORS:
                raise ValueError("no canned answer for %d" % c)
        with self._lock:
            self._cfg = dict(error_rate=error_rate,
                             error_codes=tuple(error_codes),
                             reset_before_rate=reset_before_rate,
                             reset_after_rate=reset_after_rate,
                             delay_rate=delay_rate, delay=delay,
                             max_streak=max_streak)
            self._outage = False
            self._streak.clear()
            self._targeted = []
            self._hold_match = None
        self._release.set()
        self._hold_go.set()

    def inject_next(self, action, match=None, count=1):
        """Targeted faults: the next `count` requests for which
        match(method, target) is true (any request when match is None)
        get `action` ("error_503", "error_500", "reset_before",
        "reset_after") whatever the fault mix says."""
        if action not in ("error_503", "error_500", "reset_before",
                          "reset_after"):
            raise ValueError("unknown action %r" % action)
        with self._lock:
            self._targeted.append([action, match, count])

    def passthrough(self):
        """No faults at all (also ends an outage or a hang)."""
        self.configure()

    def outage(self):
        """Full outage: every new connection and every request on an open
        connection is reset, until restore()/configure()/passthrough()."""
        with self._lock:
            self._outage = True

    def hang(self):
        """Every request from now on is held before forwarding until
        restore() (or stop()); then it goes on as configured."""
        self._release.clear()

    def hold(self, match):
        """Requests for which match(method, target) is true are held
        (after their body arrived, before forwarding) until release();
        stats()["held"] counts them.  Other requests go on."""
        with self._lock:
            self._hold_match = match
            self._hold_go.clear()

    def release(self):
        """Lets held requests (and later matching ones) go on."""
        with self._lock:
            self._hold_match = None
        self._hold_go.set()

    def restore(self):
        """Ends an outage and releases hung requests; the fault mix stays."""
        with self._lock:
            self._outage = False
        self._release.set()

    def stats(self):
        """Counters: requests, forwarded, error_503, error_500,
        reset_before, reset_after, delayed, hung, outage_requests,
        outage_connections, connections (a copy)."""
        with self._lock:
            return dict(self._counts)

    def faults(self):
        """Injected faults so far (errors + resets, outage excluded)."""
        s = self.stats()
        return sum(s.get(k, 0) for k in ("error_503", "error_500",
                                         "reset_before", "reset_after"))

    def _count(self, name, n=1):
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    # ------------------------------------------------------------ life
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        s.setblocking(False)
        self._listener = s
        self.port = s.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          name="faultproxy-accept",
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout=10.0):
        """Ends every connection and thread; returns the names of threads
        still alive after timeout (empty when clean)."""
        self._stop.set()
        self._release.set()
        self._hold_go.set()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        end = time.monotonic() + timeout
        if self._acceptor is not None:
            self._acceptor.join(max(0.0, end - time.monotonic()))
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
        return [t.name for t in threads + [self._acceptor]
                if t is not None and t.is_alive()]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, sock):
        with self._lock:
            self._socks.add(sock)

    def _untrack(self, sock):
        with self._lock:
            self._socks.discard(sock)

    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                if not sel.select(0.2):
                    continue
                try:
                    conn, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    if self._stop.is_set():
                        return
                    continue
                with self._lock:
                    out = self._outage
                    if not out:
                        self._counts["connections"] = \
                            self._counts.get("connections", 0) + 1
                if out:
                    self._count("outage_connections")
                    _reset(conn)
                    continue
                conn.setblocking(True)
                conn.settimeout(IO_TIMEOUT)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                t = threading.Thread(target=self._serve, args=(conn,),
                                     name="faultproxy-conn", daemon=True)
                with self._lock:
                    self._threads.add(t)
                    self._socks.add(conn)
                t.start()
        finally:
            sel.close()

    # ------------------------------------------------------------ serving
    def _decide(self, method, target):
        """The fate of one request: (action, delay seconds)."""
        with self._lock:
            self._counts["requests"] = self._counts.get("requests", 0) + 1
            if self._outage:
                return "outage", 0.0
            for t in self._targeted:
                if t[2] > 0 and (t[1] is None or t[1](method, target)):
                    t[2] -= 1
                    return t[0], 0.0
            c = self._cfg
            sig = (method, target)
            r = self._rng.random()
            action = "forward"
            edge = c["error_rate"]
            if r < edge:
                action = "error"
            elif r < edge + c["reset_before_rate"]:
                action = "reset_before"
            elif r < edge + c["reset_before_rate"] + c["reset_after_rate"]:
                action = "reset_after"
            if action != "forward":
                if self._streak.get(sig, 0) >= c["max_streak"]:
                    action = "forward"
                    self._streak.pop(sig, None)
                else:
                    if len(self._streak) > 100000:
                        self._streak.clear()
                    self._streak[sig] = self._streak.get(sig, 0) + 1
            else:
                self._streak.pop(sig, None)
            if action == "error":
                action = "error_%d" % self._rng.choice(c["error_codes"])
            delay = 0.0
            if c["delay_rate"] and self._rng.random() < c["delay_rate"]:
                delay = c["delay"]
            return action, delay

    def _serve(self, conn):
        up = None
        try:
            rd = _Reader(conn)
            while not self._stop.is_set():
                up = self._one(conn, rd, up)
        except _Closed:
            pass
        finally:
            for s in (conn, up):
                if s is not None:
                    self._untrack(s)
                    try:
                        s.close()
                    except OSError:
                        pass
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _one(self, conn, rd, up):
        """Serves one request of conn; returns the server connection to
        keep (or None).  Raises _Closed when conn is done."""
        try:
            head = rd.head()
        except _Closed:
            raise
        first, hdrs = _parse_head(head)
        if len(first) != 3:
            raise _Closed("bad request line")
        method, target = first[0], first[1]
        action, delay = self._decide(method, target)
        if action in ("outage", "reset_before"):
            self._count("outage_requests" if action == "outage"
                        else "reset_before")
            self._untrack(conn)
            _reset(conn)
            raise _Closed(action)
        expect = "100-continue" in hdrs.get("expect", "").lower()
        if expect:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = bytearray()

        def keep(b):
            if len(body) + len(b) > MAX_BODY:
                raise _Closed("request body over MAX_BODY")
            body.extend(b)
        if _is_chunked(hdrs):
            rd.chunked(keep)
        elif "content-length" in hdrs:
            rd.exact(int(hdrs["content-length"]), keep)
        if action.startswith("error_"):
            code = int(action[6:])
            self._count(action)
            conn.sendall(self._error_answer(code, method, target))
            return up
        if not self._release.is_set():
            self._count("hung")
            while not self._release.wait(0.2):
                if self._stop.is_set():
                    raise _Closed("stopped")
            with self._lock:
                if self._outage:
                    self._counts["outage_requests"] = \
                        self._counts.get("outage_requests", 0) + 1
                    self._socks.discard(conn)
                    _reset(conn)
                    raise _Closed("outage")
        with self._lock:
            held = self._hold_match is not None and \
                self._hold_match(method, target)
        if held:
            self._count("held")
            while not self._hold_go.wait(0.2):
                if self._stop.is_set():
                    raise _Closed("stopped")
        if delay > 0:
            self._count("delayed")
            if self._stop.wait(delay):
                raise _Closed("stopped")
        req = head + bytes(body)
        sink = (lambda b: None) if action == "reset_after" else conn.sendall
        # Counted before the answer reaches the client, so a client that
        # reads stats() right after its response sees this request.
        self._count("forwarded")
        up = self._forward(req, method, up, sink)
        if action == "reset_after":
            self._count("reset_after")
            self._untrack(conn)
            _reset(conn)
            raise _Closed("reset_after")
        return up

    def _connect_up(self):
        s = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(s)
        return s

    def _drop_up(self, up):
        if up is not None:
            self._untrack(up)
            try:
                up.close()
            except OSError:
                pass

    def _forward(self, req, method, up, sink):
        """Sends req to the server and relays the answer to sink; returns
        the server connection when it stays usable, else None."""
        for attempt in (1, 2):
            reused = up is not None
            if up is None:
                try:
                    up = self._connect_up()
                except OSError as e:
                    raise _Closed("server: %s" % e) from None
            urd = _Reader(up)
            try:
                up.sendall(req)
                while True:
                    head = urd.head()
                    first, hdrs = _parse_head(head)
                    status = int(first[1]) if len(first) > 1 else 0
                    if 100 <= status < 200:
                        continue         # interim (100 Continue): drop
                    break
            except (_Closed, OSError) as e:
                self._drop_up(up)
                up = None
                if reused and attempt == 1 and not urd.pending():
                    continue             # stale keep-alive: once more
                raise _Closed("server: %s" % e) from None
            break
        sink(head)
        close = "close" in hdrs.get("connection", "").lower()
        try:
            if method == "HEAD" or status in (204, 304):
                pass
            elif _is_chunked(hdrs):
                urd.chunked(sink)
            elif "content-length" in hdrs:
                urd.exact(int(hdrs["content-length"]), sink)
            else:
                urd.until_eof(sink)
                close = True
        except _Closed:
            self._drop_up(up)
            raise
        if close:
            self._drop_up(up)
            return None
        return up

    @staticmethod
    def _error_answer(code, method, target):
        reason, s3code, msg = ERRORS[code]
        res = xml_escape(target.split("?", 1)[0])
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s'
                '</Code><Message>%s</Message><Resource>%s</Resource>'
                '<RequestId>faultproxy</RequestId></Error>'
                % (s3code, msg, res)).encode()
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                "Content-Length: %d\r\nx-amz-request-id: faultproxy\r\n"
                "\r\n" % (code, reason, 0 if method == "HEAD"
                          else len(body)))
        return head.encode() + (b"" if method == "HEAD" else body)
