"""fault_fixtures.py - fixtures and tools of the reliability tests.

faulty_s3 / faulty_azure / faulty: a FaultProxy (faultproxy.py) in front
of the session server and a way to mount buckets through it.  faulty_s3
is the RGW one, faulty_azure the Azurite one; faulty runs a test once on
s3 and once on azure, for the tests whose checks mean the same on both.  Buckets are made with
conftest.Backend against a stand-in server object whose endpoint is the
proxy, so the daemon's config points at the proxy while the Backend's own
client (the test's view of what is really stored) talks to the server
directly.

fs.up knows how the provider's multipart uploads look on the wire and on
the server, so one test checks both: on s3 UploadPart PUTs
(?partNumber=N) of an upload made by CreateMultipartUpload, listed with
ListMultipartUploads / ListParts; on azure Put Block PUTs (?comp=block,
the part number inside the block id, src/provider/azure.c) whose upload
is named by the 16-hex tag in every block id, stored as uncommitted
blocks listed with Get Block List.  Azure has no begin request: an
upload begun anew shows as blocks with a tag other than the journaled
id's.

Teardown order matters: the `mount` fixture unmounts after this fixture
ends, but an unmount flushes pending uploads, which needs the server.  So
this fixture first ends every fault, unmounts the mounts it made (with
the same checks as conftest), force-detaches mount points of daemons that
were killed (fusermount3 -uz, always), and only then stops the proxy.

Import the fixtures into a test module:
    from fault_fixtures import faulty, faulty_s3, faulty_azure
"""

import base64
import os
import re
import signal
import subprocess
import threading
import urllib.parse

import pytest

import conftest
import helpers
from faultproxy import FaultProxy

UPLOAD_TIMEOUT = 5          # seconds, the config value of every mount here
FAULT_PROVIDERS = ["s3", "azure"]


class _ProxiedServer:
    """Looks like the rgw / azurite fixture to conftest.Backend, but names
    the proxy as endpoint; client stays the server's own (direct,
    fault-free)."""

    def __init__(self, server, endpoint):
        self.endpoint = endpoint
        self.access_key = getattr(server, "access_key", None)
        self.secret_key = getattr(server, "secret_key", None)
        self.region = getattr(server, "region", None)
        self.client = server.client


def force_detach(mnt):
    """fusermount3 -uz; ignores "not mounted"."""
    subprocess.run(["fusermount3", "-uz", mnt], capture_output=True,
                   timeout=30)


def kill9(m):
    """kill -9 of the foreground daemon of Mount m, reaped, and its mount
    point detached (a dead FUSE mount gives ENOTCONN until then)."""
    assert m.proc is not None, "kill9 needs a foreground (-f) daemon"
    try:
        os.kill(m.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    m.proc.wait(timeout=30)
    m.proc = None           # its status is -9 by design: not a failure
    conftest._live_mounts.discard(m)
    force_detach(m.mnt)


# ------------------------------------------------- multipart, per provider

def _query(target):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(target).query,
                                 keep_blank_values=True)


class S3Uploads:
    """Multipart uploads of S3 (RGW)."""

    def part_number(self, method, target):
        """Part number of an UploadPart request, else None."""
        q = _query(target)
        if method == "PUT" and "partNumber" in q:
            return int(q["partNumber"][0])
        return None

    def is_begin(self, method, target):
        """True for a request that begins an upload."""
        return method == "POST" and "uploads" in _query(target)

    def is_commit(self, method, target):
        return method == "POST" and "uploadId" in _query(target)

    def id_tag(self, upload_id):
        """What list_uploads() names an upload by."""
        return upload_id

    def part_tag(self, method, target):
        """The upload a part request belongs to."""
        return _query(target).get("uploadId", [None])[0]

    def list_uploads(self, b):
        """[(key, id_tag)] of the bucket's uploads in progress."""
        st, _, body = b.client.request("GET", b.remote,
                                       query={"uploads": ""})
        assert st == 200, body
        out = []
        for u in re.findall(rb"<Upload>(.*?)</Upload>", body, re.S):
            k = re.search(rb"<Key>(.*?)</Key>", u).group(1).decode()
            i = re.search(rb"<UploadId>(.*?)</UploadId>", u).group(1)
            out.append((k, i.decode()))
        return out

    def part_sizes(self, b, key, upload_id):
        """{part number: size} stored so far, or None (no upload)."""
        st, _, body = b.client.request("GET", b.remote, key,
                                       query={"uploadId": upload_id})
        if st != 200:
            return None
        return {int(n): int(z) for n, z in re.findall(
            rb"<Part>.*?<PartNumber>(\d+)</PartNumber>.*?<Size>(\d+)"
            rb"</Size>", body, re.S)}


class AzureUploads:
    """Put Block uploads of Azure (Azurite): block id = base64 of tag (16
    hex) + part number (5 digits) + "-" + MD5 hex; upload id
    "az1:TAG:..."."""

    @staticmethod
    def _decode(b64):
        raw = base64.b64decode(b64)
        return raw[:16].decode(), int(raw[16:21])

    def part_number(self, method, target):
        q = _query(target)
        if method == "PUT" and q.get("comp") == ["block"] and \
                "blockid" in q:
            return self._decode(q["blockid"][0])[1]
        return None

    def is_begin(self, method, target):
        return False            # nothing goes on the wire

    def is_commit(self, method, target):
        return method == "PUT" and _query(target).get("comp") == \
            ["blocklist"]

    def id_tag(self, upload_id):
        """The tag of an upload id "az1:TAG:..." (a bare tag: itself)."""
        return upload_id.split(":")[1] if ":" in upload_id else upload_id

    def part_tag(self, method, target):
        q = _query(target)
        return self._decode(q["blockid"][0])[0] if "blockid" in q else None

    def _blocks(self, b, key):
        """[(tag, part number, size)] of key's uncommitted blocks."""
        st, _, body = b.client.request("GET", b.remote, key, query={
            "comp": "blocklist", "blocklisttype": "uncommitted"})
        if st == 404:
            return []
        assert st == 200, body
        unc = re.search(rb"<UncommittedBlocks>(.*?)</UncommittedBlocks>",
                        body, re.S)
        out = []
        for n, z in re.findall(rb"<Block><Name>(.*?)</Name><Size>(\d+)"
                               rb"</Size></Block>",
                               unc.group(1) if unc else b"", re.S):
            tag, num = self._decode(n)
            out.append((tag, num, int(z)))
        return out

    def list_uploads(self, b):
        """[(blob, tag)] of every upload with uncommitted blocks (blobs
        never committed are listed with include=uncommittedblobs)."""
        names = set()
        marker = None
        while True:
            q = {"restype": "container", "comp": "list",
                 "include": "uncommittedblobs"}
            if marker:
                q["marker"] = marker
            st, _, body = b.client.request("GET", b.remote, query=q)
            assert st == 200, body
            names |= {n.decode() for n in
                      re.findall(rb"<Name>(.*?)</Name>", body)}
            nm = re.search(rb"<NextMarker>(.+?)</NextMarker>", body)
            if not nm:
                break
            marker = nm.group(1).decode()
        return sorted({(n, tag) for n in names
                       for tag, _, _ in self._blocks(b, n)})

    def part_sizes(self, b, key, upload_id):
        tag = self.id_tag(upload_id)
        got = {num: size for t, num, size in self._blocks(b, key)
               if t == tag}
        return got or None


UPLOADS = {"s3": S3Uploads(), "azure": AzureUploads()}


class PartCounter:
    """Counts the part requests the daemon sends through the proxy (a
    targeted fault whose match never fires).  parts(): part numbers seen,
    in order; tags(): the uploads they belong to; fail: part numbers to
    answer with 500; uploads: requests that began an upload."""

    def __init__(self, fs):
        self.up = fs.up
        self.lock = threading.Lock()
        self.seen = []
        self.seen_tags = set()
        self.fail = set()
        self.uploads = 0
        fs.proxy.inject_next("error_500", match=self._match, count=10 ** 9)

    def _match(self, method, target):
        with self.lock:
            if self.up.is_begin(method, target):
                self.uploads += 1
            n = self.up.part_number(method, target)
            if n is not None:
                if n in self.fail:
                    return True
                self.seen.append(n)
                self.seen_tags.add(self.up.part_tag(method, target))
        return False

    def parts(self):
        with self.lock:
            return list(self.seen)

    def tags(self):
        with self.lock:
            return set(self.seen_tags)

    def reset(self):
        with self.lock:
            self.seen = []
            self.seen_tags = set()
            self.uploads = 0


# ------------------------------------------------------------- the fixture

class FaultyStore:
    """provider ("s3" | "azure"), proxy, up (S3Uploads | AzureUploads),
    backend(name, **extra), mount(backends=None, ...)."""

    def __init__(self, provider, proxy, server, endpoint, mount_factory,
                 workdir):
        self.provider = provider
        self.proxy = proxy
        self.direct = server
        self.rgw = server               # the name older tests use
        self.server = _ProxiedServer(server, endpoint)
        self.up = UPLOADS[provider]
        self._mount = mount_factory
        self.workdir = workdir
        self.mounts = []

    def backend(self, name="b1", **extra):
        """A fresh remote bucket whose config section points at the
        proxy; b.client / b.read() look at the server directly."""
        return conftest.Backend(self.provider, name, self.workdir,
                                rgw=self.server, **extra)

    def mount(self, backends=None, conf_extra="", **kw):
        """Mounts backends (default: one new bucket "b1") through the
        proxy with upload_timeout = UPLOAD_TIMEOUT."""
        if backends is None:
            backends = [self.backend()]
        m = self._mount(backends, conf_extra="upload_timeout = %d\n"
                        % UPLOAD_TIMEOUT + conf_extra, **kw)
        self.mounts.append(m)
        return m

    def teardown(self):
        problems = []
        self.proxy.passthrough()
        for m in self.mounts:
            if m.proc is None and m.pid is None:
                force_detach(m.mnt)          # killed, or never restarted
                continue
            try:
                m.unmount()
            except conftest.MountError as e:
                problems.append(str(e))
            finally:
                force_detach(m.mnt)
        return problems



def _faulty(provider, request, mount, tmp_path):
    if provider == "azure":
        server = request.getfixturevalue("azurite")
        proxy = FaultProxy("127.0.0.1", server.port).start()
        endpoint = proxy.endpoint + "/" + helpers.AZURITE_ACCOUNT
    else:
        server = request.getfixturevalue("rgw")
        u = urllib.parse.urlsplit(server.endpoint)
        proxy = FaultProxy(u.hostname, u.port or 80).start()
        endpoint = proxy.endpoint
    fs = FaultyStore(provider, proxy, server, endpoint, mount, str(tmp_path))
    problems = []
    try:
        yield fs
    finally:
        try:
            problems = fs.teardown()
        finally:
            left = proxy.stop()
            if left:
                problems.append("fault proxy threads still alive after "
                                "stop: %s" % left)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def faulty_s3(request, mount, tmp_path):
    """FaultyStore on s3: .proxy (FaultProxy in front of RGW),
    .backend(name), .mount(backends=None, ...) through the proxy, .rgw
    (direct)."""
    yield from _faulty("s3", request, mount, tmp_path)


@pytest.fixture
def faulty_azure(request, mount, tmp_path):
    """FaultyStore on azure: the proxy in front of Azurite."""
    yield from _faulty("azure", request, mount, tmp_path)


@pytest.fixture(params=FAULT_PROVIDERS)
def faulty(request, mount, tmp_path):
    """FaultyStore on each of FAULT_PROVIDERS in turn (s3 on RGW, azure
    on Azurite)."""
    yield from _faulty(request.param, request, mount, tmp_path)
