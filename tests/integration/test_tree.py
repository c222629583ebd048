"""test_tree.py - the mount tree, control files, modes of starting.

The root of a mount lists the bucket folders and the four control files;
.defaults / .assignments read and write as INTERFACE.md describes; .buckets
has one line per bucket; single-bucket mode (-o bucket=NAME) shows one
bucket at the root; a bad config makes the daemon refuse to start and name
file, line and key; without -f the daemon returns 0 only once mounted.
"""

import errno
import os
import re
import stat
import subprocess

import pytest

from helpers import expect_errno, wait_for
import conftest

CONTROL = {".defaults", ".assignments", ".buckets", ".metrics"}
BUCKETS_LINE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*) "
                          r"provider=(?P<provider>local|s3|r2) "
                          r"remote=(?P<remote>\S*) status=(?P<status>ok|error)"
                          r" files=(?P<files>\d+) bytes=(?P<bytes>\d+)$")


def read_text(path):
    with open(path) as f:
        return f.read()


def write_ctl(path, text):
    """One write() call holding the whole text, like `echo ... > FILE`."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def defaults_lines(m):
    """The three .defaults lines, trailing blanks dropped ('chat =')."""
    text = read_text(m.path(".defaults"))
    assert text.endswith("\n"), repr(text)
    return [line.rstrip() for line in text.splitlines()]


def buckets_lines(m):
    text = read_text(m.path(".buckets"))
    out = {}
    for line in text.splitlines():
        mt = BUCKETS_LINE.match(line)
        assert mt, "bad .buckets line: %r" % line
        out[mt["name"]] = mt.groupdict()
    return out


# ------------------------------------------------------------- the root

def test_root_lists_buckets_and_control_files(backend, mount):
    m = mount([backend("local", "alpha"), backend("local", "beta")])
    assert set(os.listdir(m.mnt)) == {"alpha", "beta"} | CONTROL
    for b in ("alpha", "beta"):
        assert stat.S_ISDIR(os.stat(m.path(b)).st_mode)
    for c in CONTROL:
        assert stat.S_ISREG(os.stat(m.path(c)).st_mode), c
    # .buckets and .metrics are read-only
    for c in (".buckets", ".metrics"):
        expect_errno((errno.EACCES, errno.EPERM, errno.EROFS), open,
                     m.path(c), "w")


def test_defaults_file(backend, mount):
    a = backend("local", "alpha", default="general, chat")
    b = backend("local", "beta", default="forms")
    m = mount([a, b])
    assert defaults_lines(m) == ["general = alpha", "chat = alpha",
                                 "forms = beta"]


def test_defaults_unset_and_write(backend, mount):
    m = mount([backend("local", "alpha"), backend("local", "beta")])
    assert defaults_lines(m) == ["general =", "chat =", "forms ="]
    write_ctl(m.path(".defaults"), "# comment\n\nchat = beta\n")
    assert defaults_lines(m) == ["general =", "chat = beta", "forms ="]
    # `>` and `>>` both update; unmentioned roles stay
    with open(m.path(".defaults"), "a") as f:
        f.write("general = alpha\n")
    assert defaults_lines(m) == ["general = alpha", "chat = beta", "forms ="]
    # all-or-nothing: one bad line fails the whole write
    for bad in ("forms = alpha\nchat = nosuch\n", "colour = alpha\n",
                "forms alpha\n"):
        expect_errno(errno.EINVAL, write_ctl, m.path(".defaults"), bad)
    assert defaults_lines(m) == ["general = alpha", "chat = beta", "forms ="]
    write_ctl(m.path(".defaults"), "chat =\n")
    assert defaults_lines(m) == ["general = alpha", "chat =", "forms ="]
    # bucketctl sees it, and the daemon sees bucketctl within one second
    assert "alpha" in m.ctl("defaults").stdout
    m.ctl("defaults", "set", "forms", "beta")
    assert wait_for(lambda: defaults_lines(m)[2] == "forms = beta", 1.5), \
        defaults_lines(m)


def test_assignments_file(backend, mount):
    m = mount([backend("local", "alpha"), backend("local", "beta")])
    assert read_text(m.path(".assignments")) == ""
    write_ctl(m.path(".assignments"),
              "form/f-1 = beta\nchat/g_2 = alpha\nchat/a1 = beta\n")
    assert read_text(m.path(".assignments")).splitlines() == \
        ["chat/a1 = beta", "chat/g_2 = alpha", "form/f-1 = beta"]
    expect_errno(errno.EINVAL, write_ctl, m.path(".assignments"),
                 "chat/ok = alpha\nchat/bad id = alpha\n")
    write_ctl(m.path(".assignments"), "chat/g_2 =\n")
    assert read_text(m.path(".assignments")).splitlines() == \
        ["chat/a1 = beta", "form/f-1 = beta"]


def test_buckets_file(backend, mount):
    loc = backend("local", "alpha")
    s3 = backend("s3", "remote1")
    r2 = backend("r2", "remote2")
    m = mount([loc, s3, r2])
    lines = buckets_lines(m)
    assert set(lines) == {"alpha", "remote1", "remote2"}
    assert lines["alpha"]["provider"] == "local"
    assert (lines["remote1"]["provider"], lines["remote1"]["remote"]) == \
        ("s3", s3.remote)
    assert (lines["remote2"]["provider"], lines["remote2"]["remote"]) == \
        ("r2", r2.remote)
    assert all(v["status"] == "ok" for v in lines.values()), lines
    assert lines["alpha"]["files"] == "0" and lines["alpha"]["bytes"] == "0"
    with open(m.path("alpha", "x.txt"), "wb") as f:
        f.write(b"12345")
    with open(m.path("remote1", "y.txt"), "wb") as f:
        f.write(b"123")
    lines = wait_for(lambda: (lambda ls: ls if ls["alpha"]["files"] == "1"
                              and ls["remote1"]["bytes"] == "3" else None)(
                                  buckets_lines(m)), 2.0) or buckets_lines(m)
    assert (lines["alpha"]["files"], lines["alpha"]["bytes"]) == ("1", "5")
    assert (lines["remote1"]["files"], lines["remote1"]["bytes"]) == \
        ("1", "3")


def test_buckets_status_error(backend, mount):
    """A bucket whose remote bucket does not exist still mounts (the daemon
    starts), fails its operations, and shows status=error."""
    ok = backend("local", "alpha")
    bad = backend("s3", "missing", create=False)
    m = mount([ok, bad])
    with pytest.raises(OSError):
        os.listdir(m.path("missing"))
    lines = wait_for(lambda: buckets_lines(m)["missing"]["status"] ==
                     "error" and buckets_lines(m), 2.0)
    assert lines, buckets_lines(m)
    assert buckets_lines(m)["alpha"]["status"] == "ok"


METRIC_LINE = re.compile(r"^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*"
                         r"(\{[^}]*\})? -?[0-9.eE+-]+(\s+\d+)?|NaN|)$")


def test_metrics_file(backend, mount):
    m = mount([backend("local", "alpha")])
    with open(m.path("alpha", "f.txt"), "wb") as f:
        f.write(b"x" * 100)
    os.listdir(m.path("alpha"))
    text = read_text(m.path(".metrics"))
    samples = []
    for line in text.splitlines():
        assert METRIC_LINE.match(line), "bad metrics line: %r" % line
        if line and not line.startswith("#"):
            samples.append(line)
    assert samples, text
    assert any(re.search(r"\s[1-9][0-9.eE+]*$", s) for s in samples), text


def test_control_file_sizes(backend, mount):
    """stat of a control file gives the size a read of it returns (the
    size is kept from the last rendering for the kernel's attribute
    timeout, so it may lag a change by that much, never a read)."""
    m = mount([backend("local", "alpha")])
    with open(m.path("alpha", "f.txt"), "wb") as f:
        f.write(b"x" * 100)
    for c in (".buckets", ".defaults", ".assignments"):
        p = m.path(c)
        data = read_text(p)
        assert data or c == ".assignments", c
        assert wait_for(lambda: os.stat(p).st_size == len(
            read_text(p).encode()), 10), (c, os.stat(p).st_size, data)
    names = {e.name: e.stat().st_size for e in os.scandir(m.mnt)}
    assert names[".buckets"] == len(read_text(m.path(".buckets")).encode())


# ------------------------------------------------------------- modes

@pytest.mark.parametrize("prov", conftest.PROVIDERS)
def test_single_bucket_mode(prov, backend, mount):
    b = backend(prov, "alpha")
    b.put("pre.txt", b"pre")
    other = backend("local", "beta")
    m = mount([b, other], single="alpha")
    assert sorted(os.listdir(m.mnt)) == ["pre.txt"]
    for c in CONTROL:
        assert not os.path.lexists(m.path(c))
    with open(m.path("new.txt"), "wb") as f:
        f.write(b"new")
    assert b.read("new.txt") == b"new"
    assert os.listdir(other.path) == []
    idx = m.wait_index(lambda i: ("alpha", "new.txt") in i)
    assert ("alpha", "new.txt") in idx


def test_single_bucket_unknown_name(backend, mount):
    m = mount([backend("local", "alpha")], single="nosuch", start=False)
    p = subprocess.run(m.argv(), capture_output=True, text=True, timeout=30,
                       env=conftest.daemon_env())
    assert p.returncode != 0
    assert "nosuch" in p.stderr
    assert not os.path.ismount(m.mnt)


def test_daemonized_start(backend, mount):
    b = backend("local", "alpha")
    m = mount([b], daemonize=True)     # asserts exit 0 AND already mounted
    assert m.pid is not None, "no bucketfs process names %s" % m.cfg
    with open(m.path("alpha", "f.txt"), "wb") as f:
        f.write(b"ok")
    assert b.read("f.txt") == b"ok"
    m.unmount()
    assert conftest.find_daemon_pid(m.cfg) is None


def test_daemonized_bad_master_key(backend, mount):
    m = mount([backend("local", "alpha")], daemonize=True, start=False)
    key = os.path.join(m.dir, "master.key")
    os.chmod(key, 0o644)                  # readable by others: refused
    p = subprocess.run(m.argv(), capture_output=True, text=True, timeout=30,
                       env=conftest.daemon_env())
    assert p.returncode != 0
    assert p.stderr.strip() and "\n" not in p.stderr.strip(), p.stderr
    assert not os.path.ismount(m.mnt)
    assert conftest.find_daemon_pid(m.cfg) is None


# ------------------------------------------------------------- bad config

BAD_CONFIGS = [
    # (extra [bucketfs] text, extra bucket keys, the key named)
    ("colour = blue\n", {}, "colour"),
    ("", {"colour": "blue"}, "colour"),
    ("", {"read_only": "maybe"}, "read_only"),
    ("cache_size = lots\n", {}, "cache_size"),
]


@pytest.mark.parametrize("daemonize", [False, True], ids=["fg", "daemon"])
@pytest.mark.parametrize("case", range(len(BAD_CONFIGS)),
                         ids=["unknown-global-key", "unknown-bucket-key",
                              "bad-bool", "bad-size"])
def test_bad_config_refused(case, daemonize, backend, mount):
    extra, bkeys, key = BAD_CONFIGS[case]
    m = mount([backend("local", "alpha", **bkeys)], conf_extra=extra,
              daemonize=daemonize, init=False, start=False)
    assert_refused(m, key)


def test_bad_config_two_buckets_same_default(backend, mount):
    m = mount([backend("local", "alpha", default="chat"),
               backend("local", "beta", default="general, chat")],
              init=False, start=False)
    assert_refused(m, "default")


def test_bad_config_unknown_section(backend, mount):
    m = mount([backend("local", "alpha")], init=False, start=False)
    with open(m.cfg, "a") as f:
        f.write("\n[buckets typo]\nprovider = local\n")
    p = run_daemon(m)
    assert p.returncode != 0
    lineno = config_line(m.cfg, "[buckets typo]")
    assert re.search(r"bucketfs\.conf:%d\b" % lineno, p.stderr), p.stderr
    assert not os.path.ismount(m.mnt)


def config_line(cfg, needle):
    with open(cfg) as f:
        for n, line in enumerate(f, 1):
            if line.startswith(needle):
                return n
    raise AssertionError("%r not in %s" % (needle, cfg))


def run_daemon(m):
    try:
        return subprocess.run(m.argv(), capture_output=True, text=True,
                              timeout=20, env=conftest.daemon_env())
    except subprocess.TimeoutExpired:
        subprocess.run(["fusermount3", "-uz", m.mnt], capture_output=True)
        raise AssertionError("bucketfs did not exit within 20 s on a bad "
                             "config")


def assert_refused(m, key):
    """The daemon exits non-zero, names FILE:LINE and the key, and
    mounts nothing."""
    p = run_daemon(m)
    try:
        assert p.returncode != 0, "bucketfs accepted a bad config"
        with open(m.cfg) as f:
            lines = f.read().splitlines()
        cands = [n for n, line in enumerate(lines, 1)
                 if re.match(r"\s*%s\s*=" % re.escape(key), line)]
        assert cands, key
        assert any(re.search(r"bucketfs\.conf:%d\b" % n, p.stderr)
                   for n in cands), "stderr names no %s line %s: %r" % (
                       m.cfg, cands, p.stderr)
        assert key in p.stderr, p.stderr
        assert conftest.sanitizer_reports(p.stderr) == []
    finally:
        mounted = os.path.ismount(m.mnt)
        if mounted:
            subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True)
    assert not mounted, "bad config, yet %s got mounted" % m.mnt
