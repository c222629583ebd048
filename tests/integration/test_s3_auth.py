"""test_s3_auth.py - the server checks what bucketfs signs.

Ceph RGW verifies SigV4 signatures, so a wrong secret must make
`bucketctl bucket test` fail with the server's own error (exit 1, one
line), a mount of such a bucket must report status=error in .buckets and
refuse I/O, and a presigned URL must work until it expires and not after.
"""

import os
import time
import urllib.error
import urllib.request

import pytest

from test_bucketctl import Ctl


def _add(ctl, rgw, prov, remote, secret):
    extra = {"s3": ["--region", rgw.region], "r2": ["--account-id", "test"],
             "gcs": []}[prov]
    p = ctl("bucket", "add", "real", "--provider", prov,
            "--bucket-name", remote, "--endpoint", rgw.endpoint,
            "--path-style", "--access-key-id", rgw.access_key,
            "--secret-access-key-stdin", *extra, input=secret + "\n")
    assert p.returncode == 0, p.stderr


@pytest.fixture
def remote(rgw):
    name = "bfs-auth-%s" % os.urandom(5).hex()
    rgw.client.create_bucket(name)
    yield name
    rgw.client.delete_bucket(name)


@pytest.mark.parametrize("prov", ["s3", "r2", "gcs"])
def test_wrong_secret_bucket_test_fails(tmp_path, rgw, remote, prov):
    ctl = Ctl(tmp_path)
    ctl.ok("init")
    _add(ctl, rgw, prov, remote, rgw.secret_key[:-1] + "X")
    err = ctl.fail("bucket", "test", "real")
    # RGW's answer, mapped: SignatureDoesNotMatch -> access denied.
    assert "put" in err and ("denied" in err or "Signature" in err), err
    assert rgw.client.list_keys(remote) == []

    # The right secret passes the same test (the failure was the secret).
    ctl.ok("bucket", "remove", "real")
    _add(ctl, rgw, prov, remote, rgw.secret_key)
    out = ctl.ok("bucket", "test", "real")
    assert "delete ok" in out


def test_presigned_url_expires(tmp_path, rgw, remote):
    rgw.client.put_ok(remote, "doc/report.txt", b"quarterly")
    ctl = Ctl(tmp_path)
    ctl.ok("init")
    _add(ctl, rgw, "s3", remote, rgw.secret_key)
    url = ctl.ok("presign", "real/doc/report.txt", "--expires", "2").strip()
    assert "X-Amz-Signature=" in url and "X-Amz-Credential=" in url
    assert rgw.secret_key not in url
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"quarterly"
    time.sleep(3.5)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    assert e.value.code == 403
    # A tampered URL is refused too.
    bad = url.replace("doc/report.txt", "doc/other.txt")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=30)
    assert e.value.code in (403, 404)
