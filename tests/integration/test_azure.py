"""test_azure.py - what only the azure provider has, against Azurite:
Shared Key refused with a wrong key (`bucket test` shows Azurite's auth
error), presigned SAS URLs (fetched with urllib, refused after expiry),
and the container layout blobfuse2 reads (folder blobs with
hdi_isfolder=true, x-ms-meta-* attributes) surviving a remount.

The file, tree, cache and multipart suites also run on azure (conftest
AZURE_MODULES); these are the azure-specific checks on top.
"""

import errno
import os
import stat
import time
import urllib.error
import urllib.request

import pytest

import helpers


@pytest.fixture
def az(backend, mount):
    b = backend("azure")
    m = mount([b])
    return b, m


def test_bucket_test_ok_and_wrong_key(az, backend, mount, tmp_path):
    b, m = az
    out = m.ctl("bucket", "test", "b1").stdout
    assert "put" in out.lower() and "delete" in out.lower(), out
    # the same container with a wrong (well-formed) key
    bad = backend("azure", "bad", remote=b.remote, create=False)
    with open(bad.secret_file, "w") as f:
        f.write("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25n"
                "LWtleS13cm9uZy0=\n")
    m2 = mount([bad], start=False)
    p = m2.ctl("bucket", "test", "bad", check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "access denied" in p.stderr.lower() or "403" in p.stderr, p.stderr
    assert not any(k.startswith(".bucketfs-probe-")
                   for k in b.keys()), b.keys()


def test_presign_sas_url(az):
    b, m = az
    with open(m.path("b1", "doc.txt"), "wb") as f:
        f.write(b"signed bytes")
    url = m.ctl("presign", "b1/doc.txt", "--expires", "3").stdout.strip()
    assert "sig=" in url and "sp=r" in url and "sr=b" in url, url
    assert urllib.request.urlopen(url, timeout=10).read() == b"signed bytes"
    # read-only: the same signature does not write
    req = urllib.request.Request(url, data=b"x", method="PUT",
                                 headers={"x-ms-blob-type": "BlockBlob"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert b.read("doc.txt") == b"signed bytes"
    time.sleep(5)                    # past se (whole seconds)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert e.value.code == 403


def test_blobfuse2_layout_survives_remount(az):
    b, m = az
    os.makedirs(m.path("b1", "a", "b"))
    with open(m.path("b1", "a", "b", "f.txt"), "wb") as f:
        f.write(b"deep")
    os.chmod(m.path("b1", "a", "b", "f.txt"), 0o640)
    os.symlink("b/f.txt", m.path("b1", "a", "ln"))
    # folders are zero-length blobs "a" and "a/b" with hdi_isfolder=true
    blobs = dict(b.client.list_blobs(b.remote))
    assert blobs["a"].get("hdi_isfolder") == "true", blobs
    assert blobs["a/b"].get("hdi_isfolder") == "true", blobs
    assert "a/" not in blobs and "a/b/" not in blobs, blobs
    assert int(blobs["a/b/f.txt"]["mode"]) == stat.S_IFREG | 0o640
    assert stat.S_ISLNK(int(blobs["a/ln"]["mode"]))
    assert b.read("a/ln") == b"b/f.txt"
    # a marker blob written by another tool reads as a folder too
    assert b.put("s3style/", b"") == 200
    m.remount()
    assert sorted(os.listdir(m.path("b1"))) == ["a", "s3style"]
    assert sorted(os.listdir(m.path("b1", "a"))) == ["b", "ln"]
    assert os.path.isdir(m.path("b1", "s3style"))
    st = os.stat(m.path("b1", "a", "b", "f.txt"))
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_size == 4
    assert os.readlink(m.path("b1", "a", "ln")) == "b/f.txt"
    with open(m.path("b1", "a", "ln"), "rb") as f:
        assert f.read() == b"deep"
    # rmdir of a folder blob removes it
    os.unlink(m.path("b1", "a", "b", "f.txt"))
    os.rmdir(m.path("b1", "a", "b"))
    assert "a/b" not in dict(b.client.list_blobs(b.remote))


def test_bucketctl_add_azure_and_gcs(az, tmp_path):
    b, m = az
    m.ctl("bucket", "add", "az2", "--provider", "azure",
          "--account-name", helpers.AZURITE_ACCOUNT, "--bucket-name",
          b.remote, "--endpoint", b.rgw.endpoint, "--account-key-file",
          b.secret_file)
    out = m.ctl("bucket", "show", "az2").stdout
    assert "provider: azure" in out and helpers.AZURITE_KEY not in out, out
    assert "account_name: devstoreaccount1" in out, out
    assert "account_key: (set)" in out and "sas_token: (not set)" in out, out
    m.ctl("bucket", "test", "az2")
    with open(m.db, "rb") as f:       # sealed like every secret
        assert helpers.AZURITE_KEY.encode() not in f.read()
    sec = tmp_path / "gcs.secret"
    sec.write_text("s3cr3t\n")
    os.chmod(sec, 0o600)
    m.ctl("bucket", "add", "g1", "--provider", "gcs", "--bucket-name",
          "my-gcs", "--access-key-id", "GOOG1E", "--secret-access-key-file",
          str(sec))
    out = m.ctl("bucket", "show", "g1").stdout
    assert "provider: gcs" in out and "auto" in out, out


# ------------------------------------------------- through the fault proxy

MIB = 1 << 20
PART = 8 * MIB


class _ProxiedAzurite:
    """Looks like the azurite fixture to conftest.Backend, but names the
    fault proxy as endpoint; client stays Azurite's own (direct)."""

    def __init__(self, azurite, proxy):
        self.endpoint = proxy.endpoint + "/" + helpers.AZURITE_ACCOUNT
        self.client = azurite.client


@pytest.fixture
def faulty_az(azurite, mount, tmp_path):
    """(proxy, mount factory through it, backend maker).  Teardown (as in
    fault_fixtures.faulty_s3): faults off, the mounts made here unmounted
    with the usual checks (an unmount flushes, which needs the server),
    killed ones force-detached, and only then the proxy stopped."""
    import conftest
    from fault_fixtures import force_detach
    from faultproxy import FaultProxy
    proxy = FaultProxy("127.0.0.1", azurite.port).start()
    server = _ProxiedAzurite(azurite, proxy)
    made = []
    problems = []

    def backend(name="b1"):
        return conftest.Backend("azure", name, str(tmp_path), rgw=server)

    def mnt(backends):
        m = mount(backends, conf_extra="upload_timeout = 5\n")
        made.append(m)
        return m
    try:
        yield proxy, mnt, backend
    finally:
        proxy.passthrough()
        for m in made:
            try:
                if m.proc is not None or m.pid is not None:
                    m.unmount()
            except conftest.MountError as e:
                problems.append(str(e))
            finally:
                force_detach(m.mnt)
        left = proxy.stop()
        if left:
            problems.append("fault proxy threads still alive: %s" % left)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def block_parts(query):
    """Part number of a Put Block request's blockid (azure.c layout:
    16-hex tag, 5-digit part number, '-', MD5 hex), or None."""
    import base64
    import urllib.parse
    q = urllib.parse.parse_qs(query)
    if q.get("comp") != ["block"] or "blockid" not in q:
        return None
    raw = base64.b64decode(q["blockid"][0])
    return int(raw[16:21])


def uncommitted(b, key):
    st, _, body = b.client.request("GET", b.remote, key, query={
        "comp": "blocklist", "blocklisttype": "uncommitted"})
    if st == 404:
        return []
    assert st == 200, body
    import re
    return re.findall(rb"<Name>(.*?)</Name>", body)


def test_kill9_mid_stream_resumes_from_uncommitted_blocks(faulty_az):
    """kill -9 while a large file streams out as Put Block requests: after
    the restart the journaled upload is resumed from Get Block List (the
    MD5 in each block id says which blocks hold the staged bytes), only
    missing blocks are sent, the blob is byte-exact and no uncommitted
    block is left."""
    import hashlib
    import random
    import threading
    import urllib.parse
    from fault_fixtures import kill9
    from helpers import wait_for, wait_stored, close_quietly
    proxy, mnt, backend = faulty_az
    b = backend()
    m = mnt([b])
    head = random.Random(2).randbytes(2 * PART + 5 * MIB)
    more = random.Random(3).randbytes(3 * PART)
    p = m.path("b1", "killed.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, head)
        os.fsync(fd)
        assert b.read("killed.bin") == head
        for o in range(0, len(more), MIB):
            os.write(fd, more[o:o + MIB])
        assert wait_for(lambda: len(uncommitted(b, "killed.bin")) >= 2, 30), \
            "no streamed block on the server:\n" + m.stderr()[-3000:]
        kill9(m)
    finally:
        close_quietly(fd)
    sent = []
    lock = threading.Lock()

    def match(method, target):
        n = block_parts(urllib.parse.urlsplit(target).query) \
            if method == "PUT" else None
        if n is not None:
            with lock:
                sent.append(n)
        return False
    proxy.inject_next("error_500", match=match, count=10 ** 9)
    want = head + more
    m.start()
    got = wait_stored(b, "killed.bin", want, 60)
    assert got is not None and hashlib.sha256(got).hexdigest() == \
        hashlib.sha256(want).hexdigest(), m.stderr()[-3000:]
    import re
    kept = re.findall(r"resuming multipart upload: (\d+) stored part",
                      m.stderr())
    assert kept and int(kept[-1]) >= 2, m.stderr()[-3000:]
    nparts = 5                   # ramp plan: 4 parts of 8 MiB, then 13
    assert len(sent) == len(set(sent)) and \
        len(sent) <= nparts - int(kept[-1]), (kept, sent)
    assert uncommitted(b, "killed.bin") == []
    with open(p, "rb") as f:
        assert f.read() == want


def test_faults_byte_verified(faulty_az):
    """503s, 500s and connection resets on a third of the requests (never
    more than two in a row): every file written, renamed, chmod'ed and
    listed through the mount is stored byte-exact."""
    import hashlib
    import random
    proxy, mnt, backend = faulty_az
    b = backend()
    m = mnt([b])
    proxy.configure(error_rate=0.2, error_codes=(503, 500),
                    reset_before_rate=0.07, reset_after_rate=0.07,
                    max_streak=2)
    files = {"small.txt": random.Random(5).randbytes(3000),
             "mid.bin": random.Random(6).randbytes(3 * MIB + 17),
             "d/big.bin": random.Random(7).randbytes(2 * PART + 123)}
    os.mkdir(m.path("b1", "d"))
    for k, v in files.items():
        with open(m.path("b1", k), "wb") as f:
            f.write(v)
    os.rename(m.path("b1", "mid.bin"), m.path("b1", "d", "moved.bin"))
    files["d/moved.bin"] = files.pop("mid.bin")
    os.chmod(m.path("b1", "small.txt"), 0o600)
    assert sorted(os.listdir(m.path("b1", "d"))) == ["big.bin", "moved.bin"]
    assert proxy.faults() > 0
    proxy.passthrough()
    for k, v in files.items():
        got = b.read(k)
        assert got is not None and hashlib.sha256(got).digest() == \
            hashlib.sha256(v).digest(), k
    assert b.read("mid.bin") is None
    assert int(b.meta("small.txt")["mode"]) == stat.S_IFREG | 0o600
    with open(m.path("b1", "d", "big.bin"), "rb") as f:
        assert f.read() == files["d/big.bin"]


def test_import_indexes_blobs_not_folders(az):
    """`bucketctl import` of a container planted behind the daemon's
    back: every blob is indexed, folder blobs (hdi_isfolder) are not."""
    import json
    b, m = az
    b.put("chat/g1/a.txt", b"hello")
    b.client.put(b.remote, "chat", b"", headers={
        "x-ms-meta-hdi_isfolder": "true"})
    b.put("top.json", b"{}")
    m.ctl("import", "b1")
    rows = json.loads(m.ctl("files", "--bucket", "b1", "--json").stdout)
    assert [r["key"] for r in rows] == ["chat/g1/a.txt", "top.json"], rows
    assert rows[0]["size"] == 5 and rows[0]["content_type"] == "text/plain"


def test_bucketctl_update_provider_to_azure(az, tmp_path):
    """update --provider azure drops what azure does not take (region,
    key id) and the old secret: the new account key is the one used."""
    b, m = az
    sec = tmp_path / "g.secret"
    sec.write_text("not-an-azure-key\n")
    os.chmod(sec, 0o600)
    m.ctl("bucket", "add", "g2", "--provider", "gcs", "--bucket-name",
          "my-gcs", "--access-key-id", "GOOG1E", "--secret-access-key-file",
          str(sec))
    p = m.ctl("bucket", "update", "g2", "--provider", "azure",
              "--account-name", helpers.AZURITE_ACCOUNT, "--bucket-name",
              b.remote, "--endpoint", b.rgw.endpoint, check=False)
    assert p.returncode == 1 and "account-key" in p.stderr, p.stderr
    m.ctl("bucket", "update", "g2", "--provider", "azure",
          "--account-name", helpers.AZURITE_ACCOUNT, "--bucket-name",
          b.remote, "--endpoint", b.rgw.endpoint, "--account-key-file",
          b.secret_file)
    out = m.ctl("bucket", "show", "g2").stdout
    assert "region: -" in out and "access_key_id: -" in out, out
    m.ctl("bucket", "test", "g2")


def container_sas(container, perms="racwdl", seconds=3600):
    """A service SAS for the whole container (sr=c), signed with
    Azurite's key as the 2020-12-06+ string to sign specifies."""
    import base64
    import hashlib
    import hmac
    import urllib.parse
    se = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
    sts = "\n".join([perms, "", se, "/blob/%s/%s" % (helpers.AZURITE_ACCOUNT,
                                                      container),
                     "", "", "", helpers.AZ_VERSION, "c", "", "", "", "", "",
                     "", ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(helpers.AZURITE_KEY),
                                    sts.encode(), hashlib.sha256).digest())
    return "sv=%s&se=%s&sr=c&sp=%s&sig=%s" % (
        helpers.AZ_VERSION, urllib.parse.quote(se, safe=""), perms,
        urllib.parse.quote(sig.decode(), safe=""))


def test_sas_token_instead_of_key(backend, mount, tmp_path):
    """sas_token_file: every request carries the container SAS (no
    Shared Key): write, stream, list, rename, chmod and delete work;
    presign needs the account key and says so."""
    b = backend("azure")
    sas = tmp_path / "b1.sas"
    sas.write_text("?" + container_sas(b.remote) + "\n")
    os.chmod(sas, 0o600)
    b.section = (lambda orig: lambda: orig().replace(
        "account_key_file = %s" % b.secret_file,
        "sas_token_file = %s" % sas))(b.section)
    m = mount([b])
    assert "sas_token_file" in open(m.cfg).read()
    data = os.urandom(9 * MIB + 7)           # > 8 MiB: Put Block path
    with open(m.path("b1", "big.bin"), "wb") as f:
        f.write(data)
    os.mkdir(m.path("b1", "d"))
    os.rename(m.path("b1", "big.bin"), m.path("b1", "d", "big.bin"))
    os.chmod(m.path("b1", "d", "big.bin"), 0o600)
    assert b.read("d/big.bin") == data and b.read("big.bin") is None
    assert int(b.meta("d/big.bin")["mode"]) == stat.S_IFREG | 0o600
    assert os.listdir(m.path("b1")) == ["d"]
    os.unlink(m.path("b1", "d", "big.bin"))
    assert b.read("d/big.bin") is None
    p = m.ctl("presign", "b1/d/x", check=False)
    assert p.returncode == 1, p.stdout
    with open(m.db, "rb") as f:       # the token is sealed
        assert container_sas(b.remote).split("&sig=")[1].encode() not in \
            f.read()
    # a read-only SAS serves reads (a write would stay journaled,
    # retried: a refused upload is never dropped)
    m.unmount()
    sas.write_text(container_sas(b.remote, perms="rl") + "\n")
    m.start()
    assert os.listdir(m.path("b1")) == ["d"]


def test_folder_of_unsafe_blob_names_stats(backend, mount):
    """As on s3 (test_files.py): a folder whose only blob name is unsafe
    (`bad//key`) is listed by its parent, so it stats, as an empty folder
    that rmdir leaves (ENOTEMPTY); the blob stays hidden."""
    b = backend("azure")
    assert b.put("bad//key", b"unsafe") in (200, 201)
    assert b.put("ok.txt", b"ok") in (200, 201)
    m = mount([b])
    d = m.path("b1")
    assert sorted(os.listdir(d)) == ["bad", "ok.txt"]
    assert stat.S_ISDIR(os.stat(os.path.join(d, "bad")).st_mode)
    assert os.listdir(os.path.join(d, "bad")) == []
    try:
        os.rmdir(os.path.join(d, "bad"))
    except OSError as e:
        assert e.errno == errno.ENOTEMPTY
    else:
        raise AssertionError("rmdir of a folder with a hidden blob worked")
    assert "bad//key" in dict(b.client.list_blobs(b.remote))
