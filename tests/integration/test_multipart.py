"""test_multipart.py - resumable and streaming multipart uploads.

Files above 8 MiB on s3/r2 go as multipart uploads whose id lives in the
upload journal (src/fuse/mpu.c, DESIGN).  These tests run the daemon
behind the fault proxy (fault_fixtures.faulty_s3, upload_timeout = 5) and
check on RGW directly (helpers.S3Client, sha256) that:

* an upload interrupted after some parts resumes without sending the
  stored parts again (part PUTs counted at the proxy);
* kill -9 in the middle of a streaming write loses nothing: after the
  restart the object is complete and no multipart upload is left over;
* the start-up sweep aborts recorded ids nobody uses and foreign uploads
  older than multipart_max_age, and leaves the one a journal row resumes;
* parts go out while the application writes (streaming), and rewrites
  below the streamed mark or truncates mid-stream never store wrong bytes;
* a full outage mid-stream gives EIO at close within upload_timeout and
  the data lands after the outage.

Parts must be >= 5 MiB (S3 rule), so files here are a few 8 MiB parts
(a stream's first four; from part 5 on its parts are 32 MiB).
"""

import errno
import hashlib
import os
import random
import re
import sqlite3
import threading
import time
import urllib.parse

from helpers import close_quietly, wait_for, wait_stored
from fault_fixtures import UPLOAD_TIMEOUT, faulty_s3, kill9  # noqa: F401

MIB = 1 << 20
PART = 8 * MIB          # parts 1-4 of a stream (bfs_mpu.h: the ramp plan)
BIG = 32 * MIB          # its parts from 5 on (up to 32,004 MiB)
SLACK = 3.0
LAND_TIMEOUT = 40.0


def sha(b):
    return hashlib.sha256(b).hexdigest()


def digest(b):
    return "absent" if b is None else "%d:%s" % (len(b), sha(b)[:24])


def rbytes(n, seed):
    return random.Random(seed).randbytes(n)


def write_all(fd, data, off=None, chunk=MIB):
    for o in range(0, len(data), chunk):
        view = memoryview(data)[o:o + chunk]
        while view:
            if off is None:
                n = os.write(fd, view)
            else:
                n = os.pwrite(fd, view, off + o + (len(data[o:o + chunk]) -
                                                   len(view)))
            view = view[n:]


def tail(m, n=60):
    return "\n".join(m.stderr().splitlines()[-n:])


class PartCounter:
    """Counts the requests the daemon sends through the proxy (a targeted
    fault whose match never fires).  parts(): part numbers of UploadPart
    PUTs seen, in order; fail: part numbers to answer with 500."""

    def __init__(self, proxy):
        self.lock = threading.Lock()
        self.seen = []
        self.fail = set()
        self.uploads = 0
        proxy.inject_next("error_500", match=self._match, count=10 ** 9)

    def _match(self, method, target):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query,
                                  keep_blank_values=True)
        with self.lock:
            if method == "POST" and "uploads" in q:
                self.uploads += 1
            if method == "PUT" and "partNumber" in q:
                n = int(q["partNumber"][0])
                if n in self.fail:
                    return True
                self.seen.append(n)
        return False

    def parts(self):
        with self.lock:
            return list(self.seen)

    def reset(self):
        with self.lock:
            self.seen = []
            self.uploads = 0


def list_uploads(b):
    """(key, upload id, initiated) of the bucket's uploads in progress."""
    st, _, body = b.client.request("GET", b.remote, query={"uploads": ""})
    assert st == 200, body
    out = []
    for u in re.findall(rb"<Upload>(.*?)</Upload>", body, re.S):
        k = re.search(rb"<Key>(.*?)</Key>", u).group(1).decode()
        i = re.search(rb"<UploadId>(.*?)</UploadId>", u).group(1).decode()
        out.append((k, i))
    return out


def list_parts(b, key, upload_id):
    st, _, body = b.client.request("GET", b.remote, key,
                                   query={"uploadId": upload_id})
    if st != 200:
        return None
    return [int(x) for x in re.findall(rb"<PartNumber>(\d+)</PartNumber>",
                                       body)]


def part_sizes(b, key, upload_id):
    """{part number: size} of the parts stored so far, or None."""
    st, _, body = b.client.request("GET", b.remote, key,
                                   query={"uploadId": upload_id})
    if st != 200:
        return None
    return {int(n): int(z) for n, z in re.findall(
        rb"<Part>.*?<PartNumber>(\d+)</PartNumber>.*?<Size>(\d+)</Size>",
        body, re.S)}


def ramp_parts(size):
    """Parts of a stream of size bytes: 4 of PART, then BIG ones."""
    if size <= 4 * PART:
        return max(1, (size + PART - 1) // PART)
    return 4 + (size - 4 * PART + BIG - 1) // BIG


def create_upload(b, key):
    st, _, body = b.client.request("POST", b.remote, key,
                                   query={"uploads": ""})
    assert st == 200, body
    return re.search(rb"<UploadId>(.*?)</UploadId>", body).group(1).decode()


def journal_ids(m):
    con = sqlite3.connect(m.db, timeout=10)
    try:
        return [r[0] for r in con.execute(
            "SELECT upload_id FROM upload_journal WHERE upload_id IS NOT"
            " NULL")]
    finally:
        con.close()


def restart_and_resume(fs, m, b, key, want):
    """Restarts the killed daemon of m, waits until key holds want and
    checks that the journaled multipart upload was resumed, not begun
    anew; returns (PartCounter of the requests since the restart, number
    of stored parts the resumed upload kept)."""
    pc = PartCounter(fs.proxy)
    m.start()
    got = wait_stored(b, key, want, LAND_TIMEOUT)
    assert digest(got) == digest(want), tail(m)
    kept = re.findall(r"resuming multipart upload: (\d+) stored part",
                      m.stderr())
    assert kept, "the journaled upload was not resumed:\n" + tail(m)
    assert pc.uploads == 0, "a new upload was begun instead of resuming"
    return pc, int(kept[-1])


# ============================================================== resume

def test_failed_multipart_resumes_without_resending_parts(faulty_s3):
    """Parts 3 and 4 fail for good: close gives EIO; once the server
    takes them again, only the missing parts (3, 4, 5) are sent, and the
    stored object is byte-exact."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    pc = PartCounter(fs.proxy)
    pc.fail = {3, 4}
    data = rbytes(4 * PART + 3 * MIB, 1)          # 5 parts
    p = m.path("b1", "resume.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
    finally:
        t0 = time.monotonic()
        try:
            os.close(fd)
            closed = 0
        except OSError as e:
            closed = e.errno
    assert closed == errno.EIO, "close with parts 3, 4 failing: %s" % closed
    assert time.monotonic() - t0 <= UPLOAD_TIMEOUT + SLACK
    sent = pc.parts()
    assert 1 in sent and 2 in sent, "parts 1, 2 never sent: %s" % sent
    ids = journal_ids(m)
    assert len(ids) == 1, "upload id not journaled: %s" % ids
    assert sorted(list_parts(b, "resume.bin", ids[0]) or []) [:2] == [1, 2]
    # the server heals: the background retry sends only what is missing
    pc.reset()
    pc.fail = set()
    got = wait_stored(b, "resume.bin", data, LAND_TIMEOUT)
    assert digest(got) == digest(data), tail(m)
    resent = pc.parts()
    assert 1 not in resent and 2 not in resent, \
        "stored parts sent again: %s\n%s" % (resent, tail(m))
    # 3 and 4 once each; 5 only if it had not been stored before
    assert {3, 4} <= set(resent) <= {3, 4, 5}, resent
    assert len(resent) == len(set(resent)), "a part sent twice: %s" % resent
    assert pc.uploads == 0, "a new multipart upload was begun"
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "upload left over: %s" % list_uploads(b)
    assert journal_ids(m) == []


def test_kill9_mid_stream_resumes_after_restart(faulty_s3):
    """An fsync'd prefix, then more data streaming out when the daemon is
    killed: after the restart the journaled upload id is resumed (stored
    parts kept after their MD5 check), the object is complete and no
    upload is left on the server."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    head = rbytes(2 * PART + 5 * MIB, 2)
    more = rbytes(3 * PART, 3)
    p = m.path("b1", "killed.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        write_all(fd, head)
        os.fsync(fd)
        assert b.read("killed.bin") == head
        write_all(fd, more)
        # some parts of the new stream reached the server
        assert wait_for(lambda: len(journal_ids(m)) == 1 and len(
            list_parts(b, "killed.bin", journal_ids(m)[0]) or []) >= 2, 20), \
            "no streamed part on the server:\n" + tail(m)
        uid = journal_ids(m)[0]
        kill9(m)
    finally:
        close_quietly(fd)
    want = head + more
    pc, kept = restart_and_resume(fs, m, b, "killed.bin", want)
    assert kept >= 2, "kept %d stored parts, wanted >= 2" % kept
    nparts = ramp_parts(len(want))
    sent = pc.parts()
    assert len(sent) == len(set(sent)) and len(sent) <= nparts - kept, \
        "kept %d of %d parts, sent %s" % (kept, nparts, sent)
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "upload left over: %s" % list_uploads(b)
    assert uid not in [i for _, i in list_uploads(b)]
    assert open(p, "rb").read() == want


def test_kill9_after_a_big_part_resumes_keeping_it(faulty_s3):
    """The stream's plan kind survives a restart: with a 32 MiB part 5
    on the server when the daemon is killed, the resumed upload keeps
    parts 1-5 (a plan read back as plain doubling would see part 5 as
    8 MiB, drop it and send it again)."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    head = rbytes(2 * PART + 5 * MIB, 13)
    more = rbytes(2 * PART - 5 * MIB + BIG + 3 * MIB, 14)
    p = m.path("b1", "bigpart.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        write_all(fd, head)
        os.fsync(fd)
        write_all(fd, more)
        assert wait_for(lambda: len(journal_ids(m)) == 1 and (part_sizes(
            b, "bigpart.bin", journal_ids(m)[0]) or {}).get(5) == BIG, 30), \
            "part 5 (32 MiB) never stored:\n" + tail(m)
        kill9(m)
    finally:
        close_quietly(fd)
    pc, kept = restart_and_resume(fs, m, b, "bigpart.bin", head + more)
    assert kept >= 5, "parts 1-5 not all kept: %d\n%s" % (kept, tail(m))
    sent = pc.parts()
    assert not set(sent) & {1, 2, 3, 4, 5}, \
        "stored parts sent again: %s" % sent
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "upload left over: %s" % list_uploads(b)


def test_startup_sweep(faulty_s3):
    """At start: a recorded id no journal row uses is aborted, a foreign
    upload older than multipart_max_age is aborted, the id a journal row
    resumes is left alone (its stored parts are kept)."""
    fs = faulty_s3
    b = fs.backend()
    m = fs.mount([b], conf_extra="multipart_max_age = 2s\n")
    pc = PartCounter(fs.proxy)
    pc.fail = {2}
    data = rbytes(2 * PART + MIB, 4)
    p = m.path("b1", "journaled.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    write_all(fd, data)
    try:
        os.close(fd)
    except OSError as e:
        assert e.errno == errno.EIO
    ids = journal_ids(m)
    assert len(ids) == 1, ids
    assert wait_for(lambda: 1 in (
        list_parts(b, "journaled.bin", ids[0]) or []), 10), \
        "part 1 not stored"
    kill9(m)
    foreign = create_upload(b, "elsewhere/foreign.bin")
    orphan = create_upload(b, "orphan.bin")
    con = sqlite3.connect(m.db, timeout=10)
    with con:
        con.execute("INSERT INTO multipart_uploads (upload_id, bucket, key,"
                    " created_at) VALUES (?, 'b1', 'orphan.bin',"
                    " strftime('%s','now'))", (orphan,))
    con.close()
    time.sleep(3)       # older than multipart_max_age
    pc.fail = set()
    m.start()
    got = wait_stored(b, "journaled.bin", data, LAND_TIMEOUT)
    assert digest(got) == digest(data), tail(m)
    log = m.stderr()
    kept = re.findall(r"resuming multipart upload: (\d+) stored part", log)
    assert kept and int(kept[-1]) >= 1, \
        "the journal's upload was aborted by the sweep:\n" + tail(m)
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "left over: %s\n%s" % (list_uploads(b), tail(m))
    assert "orphan.bin: aborted multipart upload no journal row uses" in log
    assert "aborted multipart upload of elsewhere/foreign.bin" in log, \
        tail(m)
    con = sqlite3.connect(m.db, timeout=10)
    left = con.execute("SELECT count(*) FROM multipart_uploads").fetchone()
    con.close()
    assert left[0] == 0, "recorded ids not forgotten"
    assert foreign


# ============================================================ streaming

def test_streaming_write_sends_parts_before_close(faulty_s3):
    """Parts go out while the application writes; the object is exact."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    pc = PartCounter(fs.proxy)
    # the ramp plan: 4 parts of 8 MiB, 2 of 32 MiB, a tail: 7 parts
    data = rbytes(4 * PART + 2 * BIG + 123457, 5)
    p = m.path("b1", "stream.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        # every complete part goes before close, each of its plan's size
        assert wait_for(lambda: len(pc.parts()) >= 6, 30), \
            "no part sent before close: %s\n%s" % (pc.parts(), tail(m))
        ids = [i for k, i in list_uploads(b) if k.endswith("stream.bin")]
        assert len(ids) == 1, list_uploads(b)
        assert wait_for(lambda: len(
            part_sizes(b, "stream.bin", ids[0]) or {}) == 6, 20), \
            "parts 1-6 not stored"
        assert part_sizes(b, "stream.bin", ids[0]) == {
            1: PART, 2: PART, 3: PART, 4: PART, 5: BIG, 6: BIG}
    finally:
        os.close(fd)
    got = b.read("stream.bin")
    assert digest(got) == digest(data), tail(m)
    assert sorted(set(pc.parts())) == list(range(1, 8))
    assert len(pc.parts()) == 7, "parts sent twice: %s" % pc.parts()
    assert list_uploads(b) == []
    # attributes of the finished object are those at close
    st = os.stat(p)
    meta = b.meta("stream.bin")
    assert int(float(meta["mtime"])) == int(st.st_mtime), meta


def test_streaming_rewrite_below_mark_and_truncate(faulty_s3):
    """Bytes already streamed are rewritten, the file is cut in the
    middle of the stream and grown again: what lands is exactly the
    file's final content."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    pc = PartCounter(fs.proxy)
    data = bytearray(rbytes(6 * PART, 6))
    p = m.path("b1", "rewrite.bin")
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    try:
        write_all(fd, bytes(data))
        assert wait_for(lambda: 2 in pc.parts(), 20), \
            "part 2 never streamed"
        patch = rbytes(3 * MIB, 7)
        os.pwrite(fd, patch, PART + 100)          # inside part 2
        data[PART + 100:PART + 100 + len(patch)] = patch
        os.ftruncate(fd, 3 * PART + 5)            # mid-stream cut
        del data[3 * PART + 5:]
        more = rbytes(2 * PART + 77, 8)
        os.lseek(fd, 0, os.SEEK_END)
        write_all(fd, more)
        data += more
    finally:
        os.close(fd)
    got = b.read("rewrite.bin")
    assert digest(got) == digest(bytes(data)), tail(m)
    assert list_uploads(b) == []
    # the same again with a truncate to below one part: a single PUT
    fd = os.open(p, os.O_RDWR)
    try:
        os.ftruncate(fd, 3 * MIB)
    finally:
        os.close(fd)
    assert b.read("rewrite.bin") == bytes(data[:3 * MIB])
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "left over"


def test_streaming_outage_eio_then_lands(faulty_s3):
    """Full outage in the middle of a streaming write: close gives EIO
    within upload_timeout, the data stays journaled and lands after."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    first = rbytes(3 * PART, 9)
    second = rbytes(2 * PART + 3 * MIB, 10)
    p = m.path("b1", "outage.bin")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        write_all(fd, first)
        fs.proxy.outage()
        write_all(fd, second)
    finally:
        t0 = time.monotonic()
        try:
            os.close(fd)
            err = 0
        except OSError as e:
            err = e.errno
    took = time.monotonic() - t0
    assert err == errno.EIO, "close during an outage: %s" % err
    assert took <= UPLOAD_TIMEOUT + SLACK, "close took %.1f s" % took
    fs.proxy.passthrough()
    want = first + second
    got = wait_stored(b, "outage.bin", want, LAND_TIMEOUT)
    assert digest(got) == digest(want), tail(m)
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "left over: %s" % list_uploads(b)


def test_streaming_rename_mid_stream(faulty_s3):
    """A file renamed while its parts stream out lands under the new name,
    complete; the old name's upload is aborted, nothing is left over."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    pc = PartCounter(fs.proxy)
    first = rbytes(3 * PART, 11)
    second = rbytes(PART + 99, 12)
    fd = os.open(m.path("b1", "old.bin"), os.O_CREAT | os.O_WRONLY |
                 os.O_TRUNC, 0o644)
    try:
        write_all(fd, first)
        assert wait_for(lambda: 2 in pc.parts(), 20), \
            "part 2 never streamed"
        os.rename(m.path("b1", "old.bin"), m.path("b1", "new.bin"))
        write_all(fd, second)
    finally:
        os.close(fd)
    want = first + second
    got = b.read("new.bin")
    assert digest(got) == digest(want), tail(m)
    assert b.read("old.bin") is None
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "left over: %s\n%s" % (list_uploads(b), tail(m))


def test_open_trunc_mid_stream_forgets_sent_parts(faulty_s3):
    """open(O_TRUNC) of a file whose first parts already streamed out:
    those parts no longer hold its bytes.  The new content leaves the
    first two parts' range unwritten (zeros); what lands must be zeros
    there, not the streamed old bytes (fs_open and fs_create cut the
    file with the bookkeeping of truncate)."""
    fs = faulty_s3
    m = fs.mount()
    b = m.backends["b1"]
    pc = PartCounter(fs.proxy)
    p = m.path("b1", "otrunc.bin")
    fd1 = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    fd2 = -1
    try:
        write_all(fd1, rbytes(3 * PART, 13))
        assert wait_for(lambda: 2 in pc.parts(), 20), \
            "part 2 never streamed"
        fd2 = os.open(p, os.O_WRONLY | os.O_TRUNC)
        new = rbytes(PART + 5, 14)
        write_all(fd2, new, off=2 * PART)
    finally:
        close_quietly(fd2, fd1)
    want = bytes(2 * PART) + new
    got = b.read("otrunc.bin")
    assert digest(got) == digest(want), tail(m)
    assert wait_for(lambda: list_uploads(b) == [], 10), \
        "left over: %s" % list_uploads(b)
