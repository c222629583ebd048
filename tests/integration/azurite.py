"""azurite.py - starts and stops a private Azurite blob server (Microsoft's
Azure Storage emulator, npm package `azurite`) for the azure provider tests.

The server runs from the project-local install that `scripts/deps.sh test`
makes (tests/.azurite/node_modules/.bin/azurite-blob; $BUCKETFS_AZURITE
names another azurite-blob), on 127.0.0.1 and a free port, with its data
in a private folder.  It checks Shared Key and SAS signatures like the
service does (account devstoreaccount1 with its well-known key), so a
wrongly signed request fails here as it would on Azure.  Telemetry is off;
--loose is not used (unknown headers are refused, as on Azure).
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(REPO, "tests", ".azurite", "node_modules", ".bin",
                           "azurite-blob")
START_TIMEOUT = 60.0


class AzuriteError(Exception):
    pass


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Azurite:
    def __init__(self, workdir):
        self.dir = workdir
        self.data = os.path.join(workdir, "data")
        self.logfile = os.path.join(workdir, "azurite.out")
        self.bin = os.environ.get("BUCKETFS_AZURITE") or DEFAULT_BIN
        self.proc = None
        self.port = None
        self.endpoint = None

    def log_tail(self, n=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def _up(self):
        """True once the server answers HTTP (any status)."""
        try:
            urllib.request.urlopen(self.endpoint + "?comp=list", timeout=2)
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False
        return True

    def start(self):
        if not os.access(self.bin, os.X_OK):
            raise AzuriteError("%s not installed: run `scripts/deps.sh test` "
                               "(npm install of azurite into tests/.azurite)"
                               % self.bin)
        os.makedirs(self.data, exist_ok=True)
        for _ in range(3):
            self.port = _free_port()
            self.endpoint = "http://127.0.0.1:%d/devstoreaccount1" % self.port
            log = open(self.logfile, "ab")
            try:
                self.proc = subprocess.Popen(
                    [self.bin, "--blobHost", "127.0.0.1", "--blobPort",
                     str(self.port), "--location", self.data, "--silent",
                     "--disableTelemetry"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True)
            finally:
                log.close()
            end = time.monotonic() + START_TIMEOUT
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    break          # port taken meanwhile, or a crash
                if self._up():
                    return
                time.sleep(0.1)
            self._kill()
        raise AzuriteError("azurite-blob did not start:\n" + self.log_tail())

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None

    def stop(self):
        self._kill()
        shutil.rmtree(self.data, ignore_errors=True)
