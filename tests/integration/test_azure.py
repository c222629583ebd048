"""test_azure.py - what only the azure provider has, against Azurite:
Shared Key refused with a wrong key (`bucket test` shows Azurite's auth
error), presigned SAS URLs (fetched with urllib, refused after expiry),
and the container layout blobfuse2 reads (folder blobs with
hdi_isfolder=true, x-ms-meta-* attributes) surviving a remount.

The file, tree, cache and multipart suites also run on azure (conftest
AZURE_MODULES); these are the azure-specific checks on top.
"""

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
