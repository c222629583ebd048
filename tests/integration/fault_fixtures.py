"""fault_fixtures.py - fixtures and tools of the reliability tests.

faulty_s3: a FaultProxy (faultproxy.py) in front of the session RGW and a
way to mount buckets through it.  Buckets are made with conftest.Backend
against a stand-in server object whose endpoint is the proxy, so the
daemon's config points at the proxy while the Backend's own client (the
test's view of what is really stored) talks to RGW directly.

Teardown order matters: the `mount` fixture unmounts after this fixture
ends, but an unmount flushes pending uploads, which needs the server.  So
this fixture first ends every fault, unmounts the mounts it made (with
the same checks as conftest), force-detaches mount points of daemons that
were killed (fusermount3 -uz, always), and only then stops the proxy.

Import the fixture into a test module:  from fault_fixtures import faulty_s3
"""

import os
import signal
import subprocess
import urllib.parse

import pytest

import conftest
from faultproxy import FaultProxy

UPLOAD_TIMEOUT = 5          # seconds, the config value of every mount here


class _ProxiedServer:
    """Looks like the rgw fixture to conftest.Backend, but names the proxy
    as endpoint; client stays RGW's own (direct, fault-free)."""

    def __init__(self, rgw, endpoint):
        self.endpoint = endpoint
        self.access_key = rgw.access_key
        self.secret_key = rgw.secret_key
        self.region = rgw.region
        self.client = rgw.client


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


class FaultyS3:
    def __init__(self, proxy, rgw, mount_factory, workdir):
        self.proxy = proxy
        self.rgw = rgw
        self.server = _ProxiedServer(rgw, proxy.endpoint)
        self._mount = mount_factory
        self.workdir = workdir
        self.mounts = []

    def backend(self, name="b1", **extra):
        """A fresh remote bucket whose config section points at the
        proxy; b.client / b.read() look at RGW directly."""
        return conftest.Backend("s3", name, self.workdir, rgw=self.server,
                                **extra)

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


@pytest.fixture
def faulty_s3(rgw, mount, tmp_path):
    """FaultyS3: .proxy (FaultProxy in front of RGW), .backend(name),
    .mount(backends=None, ...) through the proxy, .rgw (direct)."""
    u = urllib.parse.urlsplit(rgw.endpoint)
    proxy = FaultProxy(u.hostname, u.port or 80).start()
    fs = FaultyS3(proxy, rgw, mount, str(tmp_path))
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
