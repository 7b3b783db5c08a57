"""Shared helpers for netlab's end-to-end tests.

Every test starts the real binary ($NETLAB_BIN) on loopback with an ephemeral port (port 0), waits
for its readiness line with a deadline (never a sleep), talks to it, and stops only the processes it
started, by PID. Every wait is bounded.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

NETLAB = os.environ.get("NETLAB_BIN", os.path.join(os.path.dirname(__file__), "../../build/netlab"))
SANITIZED = os.environ.get("NETLAB_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")
# Sanitizer builds run several times slower; deadlines scale with them.
SLOW = 3.0 if SANITIZED else 1.0
PYTHON = "/usr/bin/python3"  # Debian's python3 has the `websockets` module
NODE_ENV = dict(os.environ, NODE_PATH="/usr/share/nodejs")

EXIT = {"ok": 0, "internal": 1, "usage": 2, "network": 3, "timeout": 4, "protocol": 5,
        "local_io": 6, "interrupted": 130}


def scaled(seconds):
    return seconds * SLOW


# AddressSanitizer keeps freed memory in a quarantine (256 MB by default) and its shadow and
# allocator count in RSS: under sanitizers every process the tests start gets a 16 MB quarantine
# (through the environment they inherit) and every memory bound MEM_SLACK of room.
if SANITIZED:
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
MEM_SLACK = (128 << 20) if SANITIZED else 0


def vm_kib(pid, field):
    """A /proc/PID/status size field (VmHWM, VmRSS) in KiB; 0 once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1/localhost (CN and SAN) in directory: (cert, key) paths."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Proc:
    """A netlab (or peer) process started by a test. stderr goes to a file and a thread reads stdout
    as it comes, so neither pipe ever fills: a server prints an NDJSON event per connection or
    transfer with --json, and a test that reads nothing after the readiness line must not block it."""

    def __init__(self, args, stdin=subprocess.DEVNULL, env=None, cwd=None):
        self.args = list(args)
        self._err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(self.args, stdin=stdin, stdout=subprocess.PIPE, stderr=self._err,
                                  env=env, cwd=cwd)
        self._buf = b""
        self._eof = False
        self._cv = threading.Condition()
        self.lines = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self):
        fd = self.p.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cv:
                if chunk:
                    self._buf += chunk
                else:
                    self._eof = True
                self._cv.notify_all()
            if not chunk:
                return

    @property
    def pid(self):
        return self.p.pid

    def readline(self, timeout):
        """One stdout line (bytes, without newline) within timeout seconds, else None."""
        deadline = time.monotonic() + scaled(timeout)
        with self._cv:
            while b"\n" not in self._buf:
                if self._eof:
                    if self._buf:
                        line, self._buf = self._buf, b""
                        return line
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(left)
            line, self._buf = self._buf.split(b"\n", 1)
        self.lines.append(line)
        return line

    def await_line(self, predicate, timeout=10):
        """The first stdout line for which predicate(line) holds; fails the test after timeout."""
        deadline = time.monotonic() + scaled(timeout)
        seen = []
        while time.monotonic() < deadline:
            line = self.readline(max(0.01, (deadline - time.monotonic()) / SLOW))
            if line is None:
                if self.p.poll() is not None:
                    break
                continue
            seen.append(line)
            if predicate(line):
                return line
        raise AssertionError("no matching line from %s within %ss; stdout %r; stderr %r; rc %r"
                             % (self.args, timeout, seen, self.stderr(), self.p.poll()))

    def await_json(self, event, timeout=10):
        """The first NDJSON object on stdout whose "event" equals event."""
        def match(line):
            try:
                return json.loads(line).get("event") == event
            except ValueError:
                return False
        return json.loads(self.await_line(match, timeout))

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def stdout_rest(self, timeout=10):
        """Everything left on stdout until EOF (bounded)."""
        deadline = time.monotonic() + scaled(timeout)
        with self._cv:
            while not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            out, self._buf = self._buf, b""
        return out

    def wait(self, timeout=10):
        try:
            return self.p.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %ss; stderr %r" % (self.args, timeout, self.stderr()))

    def terminate(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig to this process only and returns its exit code."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)

    def close(self):
        self.kill()
        self._reader.join(5)
        if self.p.stdout:
            self.p.stdout.close()
        self._err.close()


class Server(Proc):
    """A netlab server started with --json on an ephemeral port; .port and .host once ready."""

    def __init__(self, args, timeout=10, **kw):
        super().__init__([NETLAB] + list(args) + ["--json"], **kw)
        ready = self.await_json("listening", timeout)
        self.host = ready["address"]
        self.port = ready["port"]


class NetlabTestCase(unittest.TestCase):
    """Tracks processes it starts and kills any still running after each test."""

    def setUp(self):
        self._procs = []

    def tearDown(self):
        for p in self._procs:
            p.close()

    def server(self, *args, **kw):
        s = Server(args, **kw)
        self._procs.append(s)
        return s

    def spawn(self, args, **kw):
        p = Proc(args, **kw)
        self._procs.append(p)
        return p

    def netlab(self, *args, input=None, timeout=20, env=None):
        """Runs netlab to completion: CompletedProcess with bytes stdout/stderr."""
        try:
            return subprocess.run([NETLAB] + list(args), input=input, capture_output=True,
                                  timeout=scaled(timeout), env=env,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("netlab %s did not finish within %ss" % (args, timeout)) from e


def unused_port(kind=socket.SOCK_DGRAM, family=socket.AF_INET):
    """A port that nothing listens on right now (bound then released)."""
    with socket.socket(family, kind) as s:
        s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        return s.getsockname()[1]


TFTPD_HPA = "/usr/sbin/in.tftpd"
CHROMIUM = "/usr/bin/chromium"


def start_tftpd_hpa(testcase, root, *extra):
    """tftpd-hpa (in.tftpd) in the foreground on 127.0.0.1 serving root, started by testcase (skips
    when it is not installed); (the Proc, its port) once it answers a request."""
    if not os.path.exists(TFTPD_HPA):
        testcase.skipTest("tftpd-hpa is not installed (scripts/deps.sh installs it)")
    port = unused_port()
    argv = [TFTPD_HPA, "--foreground", "--address", "127.0.0.1:%d" % port] + list(extra) + ["--secure", root]
    if os.geteuid() == 0:
        argv += ["--user", "root"]
    proc = testcase.spawn(argv)
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline:  # wait until it answers (an RRQ for a missing file: ERROR)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.sendto(b"\x00\x01nope\x00octet\x00", ("127.0.0.1", port))
            try:
                s.recvfrom(1024)
                return proc, port
            except OSError:
                time.sleep(0.05)
    testcase.fail("tftpd-hpa never answered on port %d" % port)


def start_chromium(testcase, *extra):
    """Headless Chromium with a scratch profile and its DevTools port open, started by testcase:
    (the Proc, the browser's DevTools WebSocket URL)."""
    profile = tempfile.mkdtemp(prefix="netlab-chromium-")
    testcase.addCleanup(shutil.rmtree, profile, True)
    browser = testcase.spawn([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-extensions", "--disable-dev-shm-usage", "--remote-debugging-port=0"]
                             + list(extra) + ["--user-data-dir=" + profile, "about:blank"])
    # Chromium writes its DevTools port and browser path to DevToolsActivePort once it listens.
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + scaled(20)
    lines = []
    while time.monotonic() < deadline and len(lines) < 2:
        testcase.assertIsNone(browser.p.poll(), "chromium exited: " + browser.stderr()[-2000:])
        if os.path.exists(port_file):
            with open(port_file) as f:
                lines = f.read().split()
        time.sleep(0.05)
    testcase.assertEqual(len(lines), 2, "chromium never opened its DevTools port: " + browser.stderr()[-2000:])
    return browser, "ws://127.0.0.1:%s%s" % (lines[0], lines[1])


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def run_unprivileged(testcase, argv, timeout=10):
    """Runs argv as an ordinary user: as is, or as nobody through setpriv when the tests run as root
    (skips the test when setpriv is missing). Returns the CompletedProcess."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            testcase.skipTest("setpriv (util-linux) is needed to drop root for this check")
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + list(argv)
    return subprocess.run(argv, capture_output=True, timeout=scaled(timeout))
