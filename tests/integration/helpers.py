"""helpers.py - a tiny S3 client (AWS SigV4, stdlib only) and test utilities.

The integration tests use it to talk to the S3 server directly, behind the
daemon's back: create buckets, plant objects (also with keys the daemon
must hide), and check that what the mount wrote is really on the server
(bytes, x-amz-meta-* headers, listings).  Path-style addressing only
(http://HOST/BUCKET/KEY), unsigned-payload-free: the payload hash is always
computed, so small test bodies are signed exactly.
"""

import datetime
import errno
import hashlib
import hmac
import http.client
import os
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET

S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(Exception):
    def __init__(self, status, body, what):
        self.status = status
        self.body = body
        super().__init__("%s: HTTP %d %s" % (what, status,
                                             body[:300].decode("utf-8",
                                                               "replace")))


def _uri_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


class S3Client:
    """Signs and sends one request per call on a fresh connection (tests
    are not about throughput; no connection state to go stale)."""

    def __init__(self, endpoint, access_key, secret_key, region="us-east-1"):
        u = urllib.parse.urlsplit(endpoint)
        self.host = u.hostname
        self.port = u.port or 80
        self.hostport = u.netloc
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    def request(self, method, bucket, key=None, query=None, body=b"",
                headers=None, raw_key=False, sink=None):
        """Returns (status, headers dict lower-case, body bytes).  key is
        URI-encoded unless raw_key (then it must already be encoded).
        With sink, a 200 body is passed to sink(chunk) in 1 MiB pieces
        (never held whole) and b"" is returned for it."""
        path = "/" + bucket
        if key is not None:
            path += "/" + (key if raw_key else _uri_encode(key, True))
        query = query or {}
        qs = "&".join("%s=%s" % (_uri_encode(k, False), _uri_encode(v, False))
                      for k, v in sorted(query.items()))
        now = datetime.datetime.now(datetime.timezone.utc)
        amzdate = now.strftime("%Y%m%dT%H%M%SZ")
        date = amzdate[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        hdrs = {"host": self.hostport, "x-amz-date": amzdate,
                "x-amz-content-sha256": payload_hash}
        for k, v in (headers or {}).items():
            hdrs[k.lower()] = str(v).strip()
        signed = sorted(hdrs)
        canon = "\n".join([method, path, qs,
                           "".join("%s:%s\n" % (k, hdrs[k]) for k in signed),
                           ";".join(signed), payload_hash])
        scope = "%s/%s/s3/aws4_request" % (date, self.region)
        sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                         hashlib.sha256(canon.encode("utf-8")).hexdigest()])
        k = _hmac(("AWS4" + self.secret_key).encode("utf-8"), date)
        k = _hmac(k, self.region)
        k = _hmac(k, "s3")
        k = _hmac(k, "aws4_request")
        sig = hmac.new(k, sts.encode("utf-8"), hashlib.sha256).hexdigest()
        hdrs["authorization"] = (
            "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
            "Signature=%s" % (self.access_key, scope, ";".join(signed), sig))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path + ("?" + qs if qs else ""), body=body,
                         headers=hdrs)
            r = conn.getresponse()
            if sink is not None and r.status == 200:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    sink(chunk)
                data = b""
            else:
                data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def _ok(self, what, status, body, want=(200,)):
        if status not in want:
            raise S3Error(status, body, what)

    # ---- buckets ----
    def create_bucket(self, bucket):
        st, _, body = self.request("PUT", bucket)
        self._ok("create bucket " + bucket, st, body)

    def delete_bucket(self, bucket, force=True):
        """Deletes the bucket, first every object in it when force."""
        if force:
            for key in self.list_keys(bucket):
                self.delete(bucket, key)
        st, _, body = self.request("DELETE", bucket)
        self._ok("delete bucket " + bucket, st, body, (204, 404))

    # ---- objects ----
    def put(self, bucket, key, data=b"", headers=None, raw_key=False):
        """PUT; returns the HTTP status (caller decides about refusals)."""
        st, _, body = self.request("PUT", bucket, key, body=data,
                                   headers=headers, raw_key=raw_key)
        return st

    def put_ok(self, bucket, key, data=b"", headers=None):
        st = self.put(bucket, key, data, headers)
        if st != 200:
            raise S3Error(st, b"", "put %s/%s" % (bucket, key))

    def get(self, bucket, key):
        """Object bytes, or None when absent."""
        st, _, body = self.request("GET", bucket, key)
        if st == 404:
            return None
        self._ok("get %s/%s" % (bucket, key), st, body)
        return body

    def get_digest(self, bucket, key):
        """(size, sha256 hex) of an object, streamed (for objects too big
        to hold in memory); None when absent."""
        h = hashlib.sha256()
        n = [0]

        def sink(chunk):
            h.update(chunk)
            n[0] += len(chunk)
        st, _, body = self.request("GET", bucket, key, sink=sink)
        if st == 404:
            return None
        self._ok("get %s/%s" % (bucket, key), st, body)
        return n[0], h.hexdigest()

    def head(self, bucket, key):
        """Headers (lower-case names) or None when absent."""
        st, hdrs, body = self.request("HEAD", bucket, key)
        if st == 404:
            return None
        self._ok("head %s/%s" % (bucket, key), st, body)
        return hdrs

    def delete(self, bucket, key, raw_key=False):
        st, _, body = self.request("DELETE", bucket, key, raw_key=raw_key)
        self._ok("delete %s/%s" % (bucket, key), st, body, (204, 200, 404))

    def list_keys(self, bucket, prefix=""):
        """Every key under prefix (ListObjectsV2, all pages), in order."""
        keys = []
        token = None
        while True:
            # encoding-type=url: a key with a control character would
            # otherwise make the XML invalid (&#1; is not XML 1.0).
            q = {"list-type": "2", "max-keys": "1000", "encoding-type": "url"}
            if prefix:
                q["prefix"] = prefix
            if token:
                q["continuation-token"] = token
            st, _, body = self.request("GET", bucket, query=q)
            self._ok("list " + bucket, st, body)
            root = ET.fromstring(body)
            for c in root.findall(S3NS + "Contents"):
                keys.append(urllib.parse.unquote_plus(
                    c.find(S3NS + "Key").text or ""))
            trunc = root.find(S3NS + "IsTruncated")
            if trunc is None or trunc.text != "true":
                return keys
            token = root.find(S3NS + "NextContinuationToken").text
            if not token:
                raise S3Error(st, body, "list %s: no continuation token"
                              % bucket)


# ---------------------------------------------------------------- tools

def expect_errno(codes, fn, *args, **kw):
    """Calls fn and asserts it fails with an OSError whose errno is in
    codes (an int or a tuple)."""
    if isinstance(codes, int):
        codes = (codes,)
    try:
        fn(*args, **kw)
    except OSError as e:
        assert e.errno in codes, "%s: errno %s (%s), wanted %s" % (
            getattr(fn, "__name__", fn), e.errno, errno.errorcode.get(
                e.errno), [errno.errorcode[c] for c in codes])
        return e
    raise AssertionError("%s%r succeeded, wanted %s" % (
        getattr(fn, "__name__", fn), args,
        [errno.errorcode[c] for c in codes]))


def run(*argv, check=True, **kw):
    """Runs an ordinary tool (cp, mv, ls...); CompletedProcess (text)."""
    p = subprocess.run(list(argv), capture_output=True, text=True,
                       timeout=kw.pop("timeout", 120), **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(argv),
                                                    p.returncode, p.stderr))
    return p


def ls_a(path):
    """Names readdir() gives for path, including . and .. (ls -a -1 -f:
    unsorted, nothing filtered, one per line; quoting off)."""
    p = run("ls", "-a", "-1", "-f", "--quoting-style=literal", path)
    return p.stdout.split("\n")[:-1]


def wait_for(cond, timeout, step=0.2):
    """Calls cond until it returns a true value or timeout seconds have
    passed; returns its last value (falsy on time-out)."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def wait_stored(b, key, want, timeout):
    """Polls the backend b until object key holds want; returns the last
    bytes seen (None when absent)."""
    seen = [None]

    def landed():
        seen[0] = b.read(key)
        return seen[0] == want

    wait_for(landed, timeout, step=0.5)
    return seen[0]


def close_quietly(*fds):
    """os.close of each fd that is not None, ignoring OSError: for a
    finally: after kill -9 of the daemon (ENOTCONN) or an expected EIO."""
    for fd in fds:
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            pass


def assert_serving(m, bucket="b1", backend=None):
    """The daemon of Mount m is alive, still mounted and serves: a stat of
    the root, a listing, a small write that close() stores (checked on the
    server through backend, when given), a read back and an unlink.  The
    last assertion of every fault and bad-input test."""
    if m.proc is not None:
        rc = m.proc.poll()
        assert rc is None, "daemon exited %s:\n%s" % (
            rc, "\n".join(m.stderr().splitlines()[-40:]))
    assert os.path.ismount(m.mnt), "mount point %s gone" % m.mnt
    os.stat(m.mnt)
    os.listdir(m.path(bucket))
    probe = m.path(bucket, ".serving-probe")
    data = b"still serving\n"
    with open(probe, "wb") as f:
        f.write(data)
    if backend is not None:
        assert backend.read(".serving-probe") == data, \
            "probe closed but not stored on the server"
    with open(probe, "rb") as f:
        assert f.read() == data
    os.unlink(probe)
    if backend is not None:
        assert not backend.exists(".serving-probe")


# ---------------------------------------------------------------- azure

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented well-known key of devstoreaccount1 (not a secret)
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6"
               "tq/K1SZFPTOtr/KBHBeksoGMGw==")
AZ_VERSION = "2021-08-06"


class AzureClient:
    """A tiny Azure Blob client (Shared Key, stdlib only) with the same
    methods as S3Client, so a Backend can plant and check blobs behind the
    daemon's back.  Containers stand for buckets.  Folder blobs (zero
    length, metadata hdi_isfolder=true, as blobfuse2 and bucketfs write
    them) are listed as "name/" like S3 folder markers."""

    def __init__(self, endpoint, account=AZURITE_ACCOUNT, key=AZURITE_KEY,
                 keepalive=False):
        """keepalive: one persistent connection per thread (bulk fills);
        otherwise a fresh connection per request."""
        import threading
        self.keepalive = keepalive
        self._tls = threading.local()
        u = urllib.parse.urlsplit(endpoint)
        self.host = u.hostname
        self.port = u.port or 80
        self.base = u.path.rstrip("/")           # "/devstoreaccount1"
        self.account = account
        self.key = key

    def sign(self, method, path, query, hdrs):
        std = ["content-encoding", "content-language", "content-length",
               "content-md5", "content-type", "date", "if-modified-since",
               "if-match", "if-none-match", "if-unmodified-since", "range"]
        vals = []
        for h in std:
            v = hdrs.get(h, "")
            if h == "content-length" and v == "0":
                v = ""
            vals.append(v)
        xms = "".join("%s:%s\n" % (k, hdrs[k]) for k in sorted(hdrs)
                      if k.startswith("x-ms-"))
        res = "/%s%s" % (self.account, path)
        for k in sorted(query):
            res += "\n%s:%s" % (k.lower(), query[k])
        sts = method + "\n" + "\n".join(vals) + "\n" + xms + res
        import base64
        sig = base64.b64encode(hmac.new(base64.b64decode(self.key),
                                        sts.encode("utf-8"),
                                        hashlib.sha256).digest()).decode()
        return "SharedKey %s:%s" % (self.account, sig)

    def request(self, method, container, key=None, query=None, body=b"",
                headers=None, sink=None):
        path = self.base + "/" + container
        if key is not None:
            path += "/" + _uri_encode(key, True)
        query = query or {}
        qs = "&".join("%s=%s" % (_uri_encode(k, False), _uri_encode(v, False))
                      for k, v in sorted(query.items()))
        hdrs = {"x-ms-date": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                           time.gmtime()),
                "x-ms-version": AZ_VERSION}
        for k, v in (headers or {}).items():
            hdrs[k.lower()] = str(v).strip()
        if method in ("PUT", "POST") or body:
            hdrs["content-length"] = str(len(body))
        hdrs["authorization"] = self.sign(method, path, query, hdrs)
        if self.keepalive and sink is None:
            return self._keepalive(method, path + ("?" + qs if qs else ""),
                                   body, hdrs)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path + ("?" + qs if qs else ""), body=body,
                         headers=hdrs)
            r = conn.getresponse()
            if sink is not None and r.status == 200:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    sink(chunk)
                data = b""
            else:
                data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def _keepalive(self, method, target, body, hdrs):
        for attempt in (1, 2):
            conn = getattr(self._tls, "conn", None)
            if conn is None:
                conn = self._tls.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=60)
            try:
                conn.request(method, target, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in
                                  r.getheaders()}, data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._tls.conn = None
                if attempt == 2:
                    raise

    def _ok(self, what, status, body, want=(200,)):
        if status not in want:
            raise S3Error(status, body, what)

    def create_bucket(self, container):
        st, _, body = self.request("PUT", container,
                                   query={"restype": "container"})
        self._ok("create container " + container, st, body, (201,))

    def delete_bucket(self, container, force=True):
        st, _, body = self.request("DELETE", container,
                                   query={"restype": "container"})
        self._ok("delete container " + container, st, body, (202, 404))

    def put(self, container, key, data=b"", headers=None, raw_key=False):
        h = {"x-ms-blob-type": "BlockBlob"}
        # s3fs-style names as another tool would write them on Azure
        h.update({("x-ms-meta-" + k[11:] if k.lower().startswith(
            "x-amz-meta-") else k): v for k, v in (headers or {}).items()})
        st, _, _ = self.request("PUT", container, key, body=data, headers=h)
        return 200 if st == 201 else st

    def put_ok(self, container, key, data=b"", headers=None):
        st = self.put(container, key, data, headers)
        if st != 200:
            raise S3Error(st, b"", "put %s/%s" % (container, key))

    def get(self, container, key):
        st, _, body = self.request("GET", container, key)
        if st == 404:
            return None
        self._ok("get %s/%s" % (container, key), st, body)
        return body

    def get_digest(self, container, key):
        h = hashlib.sha256()
        n = [0]

        def sink(chunk):
            h.update(chunk)
            n[0] += len(chunk)
        st, _, body = self.request("GET", container, key, sink=sink)
        if st == 404:
            return None
        self._ok("get %s/%s" % (container, key), st, body)
        return n[0], h.hexdigest()

    def head_blob(self, container, key):
        st, hdrs, body = self.request("HEAD", container, key)
        if st == 404:
            return None
        self._ok("head %s/%s" % (container, key), st, body)
        return hdrs

    def head(self, container, key):
        """Headers of key; a folder key "a/" is the folder blob "a"
        (hdi_isfolder) or an "a/" marker blob.  None when absent."""
        if key.endswith("/") and len(key) > 1:
            h = self.head_blob(container, key[:-1])
            if h is not None and h.get("x-ms-meta-hdi_isfolder") == "true":
                return h
        return self.head_blob(container, key)

    def delete(self, container, key, raw_key=False):
        st, _, body = self.request("DELETE", container, key)
        self._ok("delete %s/%s" % (container, key), st, body, (202, 404))

    def list_blobs(self, container, prefix=""):
        """[(name, metadata dict)] of every blob under prefix."""
        out = []
        marker = None
        while True:
            q = {"restype": "container", "comp": "list",
                 "include": "metadata", "maxresults": "5000"}
            if prefix:
                q["prefix"] = prefix
            if marker:
                q["marker"] = marker
            st, _, body = self.request("GET", container, query=q)
            self._ok("list " + container, st, body)
            root = ET.fromstring(body)
            for b in root.iter("Blob"):
                md = b.find("Metadata")
                meta = {c.tag.lower(): c.text or "" for c in md} \
                    if md is not None else {}
                out.append((b.find("Name").text or "", meta))
            nm = root.find("NextMarker")
            marker = nm.text if nm is not None else None
            if not marker:
                return out

    def list_keys(self, container, prefix=""):
        return sorted(n + "/" if m.get("hdi_isfolder") == "true" else n
                      for n, m in self.list_blobs(container, prefix))
