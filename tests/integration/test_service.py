"""test_service.py - running bucketfs like a service.

fstab: `CONFIG MOUNTPOINT fuse.bucketfs _netdev,allow_other 0 0` mounted
through mount(8) and mount.fuse3, both with `mount -t fuse.bucketfs` and
`mount -a -T FSTAB`.  mount.fuse3 runs the program named by the subtype
from a fixed PATH, so each of these tests runs in a private mount
namespace (unshare -m) where the build folder is bind-mounted over
/usr/local/sbin: nothing is installed on the machine and every mount made
in the namespace dies with it.

SIGHUP reloads the config (buckets appear and vanish; a bad new config is
refused, logged, and the old one keeps serving); SIGTERM unmounts after
storing every pending upload.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import conftest


def _ns_script(m, body):
    """Runs body (sh) in a private mount namespace where `bucketfs` is on
    mount.fuse3's PATH.  Returns CompletedProcess."""
    bindir = os.path.join(m.dir, "sbin")
    os.makedirs(bindir, exist_ok=True)
    shutil.copy2(conftest.BUCKETFS, os.path.join(bindir, "bucketfs"))
    script = ("set -e\n"
              "mount --make-rprivate /\n"
              "mount --bind %s /usr/local/sbin\n" % bindir + body)
    return subprocess.run(["unshare", "-m", "sh", "-c", script],
                          capture_output=True, text=True, timeout=90,
                          env=conftest.daemon_env())


@pytest.fixture
def ns_mount(backend, mount):
    b = backend("local", "alpha", default="general")
    m = mount([b], start=False)        # config + bucketctl init, not mounted
    with open(os.path.join(b.path, "seed.txt"), "w") as f:
        f.write("seed\n")
    return m


# Inside the namespace: check the mount, use it, unmount it, and wait for
# the daemon to exit (it must: fusermount/umount ends its loop).
_USE = """
grep -q " {mnt} fuse.bucketfs " /proc/mounts
cat {mnt}/.defaults
cat {mnt}/alpha/seed.txt
echo written > {mnt}/alpha/via-fstab.txt
pid=$(pgrep -f "^(/usr/local/sbin/)?bucketfs {cfg} {mnt}")
test -n "$pid"
umount {mnt}
for i in $(seq 100); do
    kill -0 $pid 2>/dev/null || exit 0
    sleep 0.1
done
echo "daemon still running after umount" >&2
exit 1
"""


def test_mount_t_fuse_bucketfs(ns_mount):
    m = ns_mount
    body = ("mount -t fuse.bucketfs -o _netdev,allow_other %s %s\n"
            % (m.cfg, m.mnt)) + _USE.format(mnt=m.mnt, cfg=m.cfg)
    p = _ns_script(m, body)
    assert p.returncode == 0, p.stdout + p.stderr + m.stderr()
    assert "general = alpha" in p.stdout
    assert "seed" in p.stdout
    with open(os.path.join(m.backends["alpha"].path, "via-fstab.txt")) as f:
        assert f.read() == "written\n"
    assert not os.path.ismount(m.mnt)


def test_fstab_mount_all(ns_mount):
    m = ns_mount
    fstab = os.path.join(m.dir, "fstab")
    with open(fstab, "w") as f:
        f.write("# test fstab\n%s %s fuse.bucketfs _netdev,allow_other 0 0\n"
                % (m.cfg, m.mnt))
    body = "mount -a -T %s\n" % fstab + _USE.format(mnt=m.mnt, cfg=m.cfg)
    p = _ns_script(m, body)
    assert p.returncode == 0, p.stdout + p.stderr + m.stderr()
    assert "general = alpha" in p.stdout
    with open(os.path.join(m.backends["alpha"].path, "via-fstab.txt")) as f:
        assert f.read() == "written\n"


def test_fstab_bad_config_fails_mount(ns_mount):
    m = ns_mount
    with open(m.cfg, "a") as f:
        f.write("\n[bucket beta]\nprovider = local\npath = /nonexistent\n"
                "colour = blue\n")
    body = "mount -t fuse.bucketfs %s %s\n" % (m.cfg, m.mnt)
    p = _ns_script(m, body)
    assert p.returncode != 0
    assert "colour" in p.stderr, p.stderr
    assert not os.path.ismount(m.mnt)


def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_sighup_reloads_config(backend, mount):
    a = backend("local", "alpha")
    m = mount([a])
    assert "alpha" in os.listdir(m.mnt)
    beta = backend("local", "beta", default="chat")
    with open(m.cfg, "a") as f:
        f.write("\n" + beta.section())
    m.proc.send_signal(signal.SIGHUP)
    assert _wait(lambda: "beta" in os.listdir(m.mnt)), os.listdir(m.mnt)
    assert _wait(lambda: "chat = beta" in open(m.path(".defaults")).read())
    with open(m.path("beta", "hello.txt"), "w") as f:
        f.write("hi")
    with open(os.path.join(beta.path, "hello.txt")) as f:
        assert f.read() == "hi"

    # A bad new config: refused with a log line, the old one keeps serving.
    good = open(m.cfg).read()
    with open(m.cfg, "a") as f:
        f.write("\n[bucket gamma]\nprovider = local\npath = %s\nsize = 3\n"
                % beta.path)
    m.proc.send_signal(signal.SIGHUP)
    assert _wait(lambda: "key 'size'" in m.stderr()
                 and "bucketfs.conf:" in m.stderr()), m.stderr()[-2000:]
    time.sleep(0.5)
    names = os.listdir(m.mnt)
    assert "gamma" not in names and "alpha" in names and "beta" in names
    assert m.proc.poll() is None

    # Removing a bucket from the config makes it vanish on the next SIGHUP.
    with open(m.cfg, "w") as f:
        f.write(good.replace(beta.section(), ""))
    os.remove(os.path.join(beta.path, "hello.txt"))
    m.ctl("bucket", "remove", "beta", "--force")
    m.proc.send_signal(signal.SIGHUP)
    assert _wait(lambda: "beta" not in os.listdir(m.mnt)), os.listdir(m.mnt)
    assert m.proc.poll() is None


def test_sigterm_unmounts_after_upload(provider, backend, mount):
    b = backend(provider, "alpha")
    m = mount([b])
    fd = os.open(m.path("alpha", "open.bin"), os.O_WRONLY | os.O_CREAT, 0o640)
    os.write(fd, b"z" * 300000)        # dirty, never closed before SIGTERM
    m.proc.send_signal(signal.SIGTERM)
    rc = m.proc.wait(timeout=60)
    m.proc = None
    try:
        os.close(fd)
    except OSError:
        pass
    assert rc == 0, m.stderr()[-3000:]
    subprocess.run(["fusermount3", "-uz", m.mnt], capture_output=True)
    assert not os.path.ismount(m.mnt)
    assert b.read("open.bin") == b"z" * 300000


def test_daemonized_sees_bucketctl_changes(backend, mount):
    """Without -f the daemon forks after opening the database; it must
    still see bucketctl's changes and its own index writes must land (an
    SQLite connection carried across fork would hold no locks, and the
    next bucketctl would delete the WAL under it)."""
    a = backend("local", "alpha")
    m = mount([a], daemonize=True)
    for i in range(3):
        m.ctl("defaults", "set", "general", "alpha")
        assert _wait(lambda: "general = alpha"
                     in open(m.path(".defaults")).read(), 2.0)
        m.ctl("defaults", "unset", "general")
        assert _wait(lambda: "general =\n"
                     in open(m.path(".defaults")).read(), 2.0)
        with open(m.path("alpha", "f%d.txt" % i), "w") as f:
            f.write("x" * i)
    assert os.path.exists(m.db + "-wal")
    out = m.ctl("files", "--bucket", "alpha").stdout
    for i in range(3):
        assert "f%d.txt" % i in out, out
