"""ws-echo serve (and ws-echo dial) against hostile peers: malformed upgrades on ws:// and wss://,
a permessage-deflate bomb both ways, a ping flood from a client that never reads, slowloris, 10k idle
connections from a server started at the usual soft nofile limit, 50k connect/close churn, and 1 GB
pushed by a client that never reads its echoes.

Every test asserts that the server keeps serving a normal client afterwards, that its memory stays
under a stated bound (VmHWM from /proc), and that it still exits 0 on SIGTERM. Raw sockets, never one
Python `websockets` client per connection, so the big attacks stay cheap.
"""
import base64
import hashlib
import os
import re
import resource
import selectors
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import zlib

from netlab_e2e import MEM_SLACK, NETLAB, make_cert, SANITIZED, NetlabTestCase, scaled

MB = 1024 * 1024
# Sanitizer builds are several times slower: the big attacks are scaled down there only (same code
# paths, fewer repetitions).
SCALE = 0.2 if SANITIZED else 1.0
SLACK = MEM_SLACK  # room on every memory bound under sanitizers (netlab_e2e)


def status(pid):
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out["VmRSS"], out["VmHWM"]


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def upgrade_request(port, path="/echo", extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (path, port, key, extra)).encode()


def frame(opcode, payload=b"", fin=True, rsv1=False, mask_key=None):
    """One client frame (masked; key 0 leaves the payload as is, cheap for big payloads)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = mask_key if mask_key is not None else os.urandom(4)
    if key != b"\0\0\0\0" and payload:
        k = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
    return hdr + key + payload


def push_until_dropped(s, srv, data, limit, timeout=30):
    """Sends data again and again until the server drops the connection (a send error, or its
    "ws close" log line), or limit bytes or timeout seconds; returns bytes sent (about: a send that
    timed out may have sent part of data)."""
    sent, checked = 0, 0
    deadline = time.monotonic() + scaled(timeout)
    s.settimeout(1)
    while sent < limit and time.monotonic() < deadline:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            break
        except socket.timeout:
            # Blocked: a server busy with its backlog, or a socket it closed whose receive window
            # stays shut (FIN-WAIT) instead of resetting. Only the second one ends the attack.
            if "ws close " in srv.stderr():
                break
            continue
        sent += len(data)
        if sent - checked >= 8 * MB:
            checked = sent
            if "ws close " in srv.stderr():
                break
    return sent


def read_response(s, timeout=5):
    """The HTTP response head (bytes) and whatever followed it in the same reads; b"" if none."""
    s.settimeout(scaled(timeout))
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def status_of(head):
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def read_frames_until_close(s, buf=b"", timeout=10):
    """Reads server frames (skipping data) until a close frame; its code, or None at EOF."""
    s.settimeout(scaled(timeout))
    deadline = time.monotonic() + scaled(timeout)

    def need(n):
        nonlocal buf
        while len(buf) < n:
            if time.monotonic() > deadline:
                raise AssertionError("no close frame within %ss" % timeout)
            chunk = s.recv(1 << 20)
            if not chunk:
                raise EOFError
            buf += chunk

    try:
        while True:
            need(2)
            b0, b1 = buf[0], buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                need(4)
                n, at = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                need(10)
                n, at = struct.unpack("!Q", buf[2:10])[0], 10
            need(at + n)
            payload, buf = buf[at:at + n], buf[at + n:]
            if b0 & 0x0F == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    except (EOFError, ConnectionResetError):
        return None


def drain_stdout(srv):
    """Reads a --json server's stdout on a thread: it writes a `connection` and a `closed` event per
    WebSocket connection, and with thousands of them an unread pipe fills and blocks the server.
    Returns the thread (it ends at the server's EOF) and the lines it read."""
    lines = []

    def pump():
        while True:
            line = srv.readline(1)
            if line is not None:
                lines.append(line)
            elif srv.p.poll() is not None:
                return

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t, lines


class HostileWs(NetlabTestCase):
    tls_dir = None

    @classmethod
    def setUpClass(cls):
        cls.tls_dir = tempfile.TemporaryDirectory()
        cls.cert, cls.key = make_cert(cls.tls_dir.name)

    @classmethod
    def tearDownClass(cls):
        cls.tls_dir.cleanup()

    # --- helpers ----------------------------------------------------------------------------------
    def connect(self, srv, tls=False):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5))
        if tls:
            ctx = ssl.create_default_context(cafile=self.cert)
            s = ctx.wrap_socket(s, server_hostname="localhost")
        return s

    def assert_serves(self, srv, tls=False):
        """A normal client still upgrades and gets its echo."""
        with self.connect(srv, tls) as s:
            s.sendall(upgrade_request(srv.port))
            head, rest = read_response(s)
            self.assertEqual(status_of(head), 101, head)
            s.sendall(frame(0x1, b"still here"))
            s.settimeout(scaled(5))
            while len(rest) < 12:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "no echo")
                rest += chunk
            self.assertEqual(rest[:12], b"\x81\x0astill here")

    def assert_stops_cleanly(self, srv, timeout=15):
        self.assertEqual(srv.terminate(timeout=timeout), 0, srv.stderr()[-3000:])
        self.assertNotIn("internal error", srv.stderr())

    def client_hello(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return out.read()

    def malformed(self, port):
        """(name, request bytes, acceptable statuses) of upgrades that must be refused; None: a 4xx or
        a close without an answer (binary bytes never end a request head: the handshake timeout
        drops them; a 1 MB line may be reset before the answer is read)."""
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        up = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        host = "Host: 127.0.0.1:%d\r\n" % port
        four = range(400, 500)
        return [
            ("garbage", b"hello\r\n\r\n", four),
            ("no Host", ("GET /echo HTTP/1.1\r\n%sSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         % (up, key)).encode(), four),
            ("POST", ("POST /echo HTTP/1.1\r\n%s%sSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                      "Content-Length: 0\r\n\r\n" % (host, up, key)).encode(), four),
            ("version 8", ("GET /echo HTTP/1.1\r\n%s%sSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 8\r\n\r\n"
                           % (host, up, key)).encode(), [426]),
            ("version 99", ("GET /echo HTTP/1.1\r\n%s%sSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 99\r\n\r\n"
                            % (host, up, key)).encode(), [426]),
            ("short key", ("GET /echo HTTP/1.1\r\n%s%sSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (host, up)).encode(), [400]),
            ("no key", ("GET /echo HTTP/1.1\r\n%s%sSec-WebSocket-Version: 13\r\n\r\n" % (host, up)).encode(), [400]),
            ("30 MB body announced", ("POST /echo HTTP/1.1\r\n%sContent-Length: 30000000\r\n\r\n" % host).encode()
             + bytes(65536), [413]),
            ("1 MB request line", b"GET /" + b"a" * MB + b" HTTP/1.1\r\n\r\n", None),
            ("10k headers", b"GET /echo HTTP/1.1\r\n" + b"X-A: b\r\n" * 10000 + b"\r\n", four),
            ("TLS ClientHello", self.client_hello(), None),
        ]

    def attack_with_malformed(self, srv, tls):
        for name, req, want in self.malformed(srv.port):
            if tls and name == "TLS ClientHello":
                continue  # on wss:// it is the normal start
            with self.subTest(attack=name, tls=tls):
                with self.connect(srv, tls) as s:
                    try:
                        s.sendall(req)
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                        pass  # refused before the whole request was sent: fine
                    head, _ = read_response(s)
                if head or want is not None:
                    self.assertIn(status_of(head), want or range(400, 500), head[:200])
                self.assert_serves(srv, tls)

    # --- 1: malformed upgrades ----------------------------------------------------------------------
    def test_malformed_upgrades_are_refused_and_the_server_lives_on_ws(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--handshake-timeout", "1s")
        self.attack_with_malformed(srv, tls=False)
        _, hwm = status(srv.pid)
        self.assertLess(hwm, 64 * MB + SLACK)
        self.assert_stops_cleanly(srv)
        self.assertRegex(srv.stderr(), r"ws refused 127\.0\.0\.1:\d+ '' origin '': HTTP 400")

    def test_malformed_upgrades_are_refused_and_the_server_lives_on_wss(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--tls-cert", self.cert,
                          "--tls-key", self.key, "--deflate", "--handshake-timeout", "1s")
        self.attack_with_malformed(srv, tls=True)
        with self.connect(srv) as s:  # not TLS at all on the wss port
            s.sendall(b"hello\r\n\r\n")
            read_response(s)
        self.assert_serves(srv, tls=True)
        _, hwm = status(srv.pid)
        self.assertLess(hwm, 64 * MB + SLACK)
        self.assert_stops_cleanly(srv)

    # --- 2: permessage-deflate bomb -----------------------------------------------------------------
    @staticmethod
    def bomb(size):
        """A raw-deflate message body (RFC 7692: without the final 00 00 ff ff) inflating to `size`
        zero bytes: one 16 MiB full-flushed block repeated (each is independent after a full flush)."""
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        piece = c.compress(bytes(16 * MB)) + c.flush(zlib.Z_FULL_FLUSH)
        return (piece * (size // (16 * MB)))[:-4]

    def test_deflate_bomb_is_closed_1009_with_bounded_memory(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--deflate", "--max-message", "2MiB")
        body = self.bomb(1024 * MB)  # ~1 MB on the wire, 1 GiB inflated
        self.assertLess(len(body), 2 * MB)
        _, hwm0 = status(srv.pid)
        with self.connect(srv) as s:
            s.sendall(upgrade_request(srv.port, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
            head, rest = read_response(s)
            self.assertEqual(status_of(head), 101)
            self.assertIn(b"permessage-deflate", head)
            try:
                s.sendall(frame(0x2, body, rsv1=True, mask_key=b"\0\0\0\0"))
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertEqual(read_frames_until_close(s, rest), 1009)
        _, hwm = status(srv.pid)
        # 2 MiB limit + one slice of inflation: far from the 1 GiB (2 GB peak) of websocketpp alone.
        self.assertLess(hwm, hwm0 + 24 * MB + SLACK, "peak RSS %d -> %d" % (hwm0, hwm))
        self.assert_serves(srv)
        self.assert_stops_cleanly(srv)
        print("\n  deflate bomb (1 GiB inflated, %d B wire): server VmHWM %.1f -> %.1f MB"
              % (len(body), hwm0 / MB, hwm / MB))

    def test_dial_deflate_against_a_bomb_server_is_bounded(self):
        body = self.bomb(1024 * MB)
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        p = subprocess.Popen([NETLAB, "ws-echo", "dial", "ws://127.0.0.1:%d/echo" % port, "--deflate",
                              "-m", "x", "--timeout", "20s"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.stderr.close)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        lsock.settimeout(scaled(10))
        conn, _ = lsock.accept()
        with conn:
            head, _ = read_response(conn)
            key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
                   if l.lower().startswith(b"sec-websocket-key:")][0]
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n"
                         b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
            n = len(body)
            try:  # one unmasked compressed binary frame from the "server"
                conn.sendall(struct.pack("!BBQ", 0xC2, 127, n) + body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            # Bounded wait for the client to exit, reading its VmHWM meanwhile (it stays alive for its
            # 2 s close handshake after the 1009, as this "server" never answers). Not wait4's
            # ru_maxrss: Linux carries the forking Python process's peak into the child's.
            peak = 0
            deadline = time.monotonic() + scaled(30)
            while p.poll() is None:
                try:
                    peak = max(peak, status(p.pid)[1])
                except (OSError, KeyError):
                    pass  # exiting
                self.assertLess(time.monotonic(), deadline, "dial did not exit")
                time.sleep(0.01)
        err = p.stderr.read().decode("utf-8", "replace")
        self.assertGreater(peak, 0)
        self.assertEqual(p.returncode, 5, err)
        self.assertIn("is over 16777216 B (inflated size): closed with 1009", err)
        self.assertLess(peak, 80 * MB + SLACK, "dial peak RSS %d" % peak)
        print("\n  dial against a deflate bomb: exit %d, peak RSS %.1f MB" % (p.returncode, peak / MB))

    def test_dial_max_message_closes_1009(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        url = "ws://127.0.0.1:%d/echo" % srv.port
        r = self.netlab("ws-echo", "dial", url, "-m", "x" * 100000, "--max-message", "50KiB")
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn(b"is over 51200 B: closed with 1009 (raise --max-message", r.stderr)
        r = self.netlab("ws-echo", "dial", url, "-m", "x" * 100000, "--max-message", "100000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"x" * 100000 + b"\n")
        r = self.netlab("ws-echo", "dial", url, "--max-message", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--max-message must be at least 1 byte", r.stderr)
        self.assert_stops_cleanly(srv)

    # --- 3: ping flood from a client that never reads ---------------------------------------------
    def test_ping_flood_from_a_non_reader_is_closed_1008_with_bounded_memory(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-queue", "1MiB")
        _, hwm0 = status(srv.pid)
        s = self.connect(srv)
        self.addCleanup(s.close)
        # (The kernel's own receive buffer: shrinking it to a few KB stalls loopback TCP both ways, so
        # the server would never even read the attack.)
        s.sendall(upgrade_request(srv.port))
        head, _ = read_response(s)
        self.assertEqual(status_of(head), 101)
        # Empty pings (6 B each on the wire; a queued pong costs far more) and 125-byte ones.
        batch = (frame(0x9, b"", mask_key=b"\0\0\0\0") * 50 + frame(0x9, b"p" * 125)) * 200
        limit = int(400 * MB * SCALE)
        sent = push_until_dropped(s, srv, batch, limit)
        _, hwm = status(srv.pid)
        self.assertLess(hwm, hwm0 + 48 * MB + SLACK, "peak RSS %d -> %d after %d B of pings" % (hwm0, hwm, sent))
        self.assertLess(sent, limit, "the server never dropped the flooding client")
        self.assertRegex(srv.stderr(), r"too slow: \d+ B unsent, over --max-queue 1048576, closing with 1008")
        self.assert_serves(srv)
        self.assert_stops_cleanly(srv)
        print("\n  ping flood: %.1f MB of pings before the drop; VmHWM %.1f -> %.1f MB"
              % (sent / MB, hwm0 / MB, hwm / MB))

    def test_control_bytes_are_escaped_in_logs(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        with self.connect(srv) as s:
            s.sendall(upgrade_request(srv.port, extra="Origin: http://x\x1b[2J\r\n"))
            head, rest = read_response(s)
            self.assertEqual(status_of(head), 101)
            s.sendall(frame(0x8, struct.pack("!H", 1000) + b"bye\n12:00:00.000 info forged"))
            self.assertEqual(read_frames_until_close(s, rest), 1000)
        with self.connect(srv) as s:  # refused: the target is logged escaped too
            s.sendall(b"GET /\x1b[2Jx HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
            self.assertEqual(status_of(read_response(s)[0]), 426)  # no version 13
        self.assert_stops_cleanly(srv)
        err = srv.stderr()
        self.assertNotIn("\x1b", err)
        self.assertNotIn("\n12:00:00.000 info forged", err)
        self.assertIn("origin 'http://x\\x1b[2J'", err)
        self.assertIn("'bye\\x0a12:00:00.000 info forged'", err)
        self.assertIn("'/\\x1b[2Jx'", err)

    # --- slowloris ----------------------------------------------------------------------------------
    def test_slowloris_is_dropped_by_the_handshake_timeout(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--handshake-timeout", "1s")
        req = upgrade_request(srv.port)
        socks = [self.connect(srv) for _ in range(100)]
        for s in socks:
            self.addCleanup(s.close)
            s.setblocking(False)
        t0 = time.monotonic()
        alive, at = set(range(len(socks))), 0
        while alive and time.monotonic() - t0 < scaled(10):
            for i in list(alive):  # one more byte each, every 50 ms: never a complete request
                try:
                    socks[i].send(req[at % (len(req) - 4):][:1])
                    if socks[i].recv(1) == b"":
                        alive.discard(i)
                except BlockingIOError:
                    pass
                except OSError:
                    alive.discard(i)
            at += 1
            time.sleep(0.05)
        took = time.monotonic() - t0
        self.assertFalse(alive, "%d dribbling sockets still open after %.1fs" % (len(alive), took))
        self.assertGreaterEqual(took, 0.9)
        self.assert_serves(srv)
        self.assert_stops_cleanly(srv)
        self.assertIn("--handshake-timeout", srv.stderr())

    def test_handshakes_in_progress_are_capped(self):
        # 300 sockets each holding a 13 KB request head that never ends (~55 KB each in the server).
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-handshakes", "100",
                          "--handshake-timeout", "30s")
        _, hwm0 = status(srv.pid)
        head = b"GET /echo HTTP/1.1\r\nHost: x\r\n" + b"".join(b"%x:b\r\n" % i for i in range(1900))
        socks = []
        for _ in range(300):
            s = self.connect(srv)
            self.addCleanup(s.close)
            try:
                s.sendall(head)
            except (BrokenPipeError, ConnectionResetError):
                pass
            socks.append(s)
        # The 200 over the cap are closed at once (EOF or reset); the 100 others wait.
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        dropped, deadline = 0, time.monotonic() + scaled(5)
        while dropped < 200 and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                try:
                    key.fileobj.recv(1)  # b"" at EOF: nothing else is ever sent before an answer
                except ConnectionResetError:
                    pass
                sel.unregister(key.fileobj)
                dropped += 1
        self.assertFalse(sel.select(timeout=0.3), "a socket under the cap was dropped too")
        sel.close()
        self.assertEqual(dropped, 200)
        _, hwm = status(srv.pid)
        # ~220 KB per unfinished head (websocketpp keeps each of its 1,900 header lines as a map
        # entry); without the cap the 300 took 67 MB, and the open-files limit was the only bound.
        self.assertLess(hwm, hwm0 + 40 * MB + SLACK, "peak RSS %d -> %d" % (hwm0, hwm))
        for s in socks:
            s.close()
        deadline = time.monotonic() + scaled(10)  # the places free as the server sees the closes
        while True:
            try:
                self.assert_serves(srv)
                break
            except (AssertionError, OSError):
                self.assertLess(time.monotonic(), deadline, "no place freed")
                time.sleep(0.05)
        self.assert_stops_cleanly(srv)
        self.assertEqual(srv.stderr().count("handshakes in progress (--max-handshakes)"), 1)
        print("\n  300 unfinished request heads, --max-handshakes 100: 200 dropped; VmHWM %.1f -> %.1f MB"
              % (hwm0 / MB, hwm / MB))

    # --- 12 + 10k idle connections ------------------------------------------------------------------
    def test_10k_idle_connections_from_the_default_soft_nofile(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        n = min(int(10000 * SCALE) if SANITIZED else 10000, hard - 200)
        if n < 1100:
            self.skipTest("hard nofile limit %d is too low for this test" % hard)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        # The server inherits the soft limit a login shell usually gives (1024); this process then
        # takes the hard limit for its own n sockets.
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        try:
            srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        drain_stdout(srv)
        _, hwm0 = status(srv.pid)
        t0 = time.monotonic()
        sel = selectors.DefaultSelector()
        socks, upgraded = [], 0
        try:
            pending = 0
            for i in range(n):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", srv.port))
                socks.append(s)
                sel.register(s, selectors.EVENT_WRITE, [b"", False])
                pending += 1
                # Keep at most 500 handshakes in flight.
                while pending >= 500 or (i == n - 1 and pending):
                    events = sel.select(timeout=scaled(10))
                    self.assertTrue(events, "handshakes stalled at %d of %d" % (upgraded, n))
                    for key, ev in events:
                        st = key.data
                        if ev & selectors.EVENT_WRITE:
                            key.fileobj.send(upgrade_request(srv.port))
                            sel.modify(key.fileobj, selectors.EVENT_READ, st)
                            continue
                        chunk = key.fileobj.recv(4096)
                        self.assertTrue(chunk, "connection %d closed during the handshake" % upgraded)
                        st[0] += chunk
                        if b"\r\n\r\n" in st[0]:
                            self.assertEqual(status_of(st[0]), 101, st[0][:100])
                            sel.unregister(key.fileobj)
                            upgraded += 1
                            pending -= 1
            took = time.monotonic() - t0
            self.assertEqual(upgraded, n)
            # The server says how many connections fit; that must cover the n it just took (the value
            # itself is the hard limit, which differs between machines and sanitizer runtimes).
            head = srv.stderr()[:4000]
            m = re.search(r"open files limit (\d+): room for about (\d+) connections|open files: no limit", head)
            self.assertTrue(m, "no open-files line in the server log:\n" + head)
            if m.group(1):
                self.assertGreater(int(m.group(1)), 1024, head)
                self.assertGreaterEqual(int(m.group(2)), n, head)
            self.assert_serves(srv)
            rss, hwm = status(srv.pid)
            # ~8 KiB per idle connection measured; bound at 20 KiB each.
            self.assertLess(rss, hwm0 + n * 20 * 1024 + SLACK, "RSS %d for %d connections" % (rss, n))
            print("\n  %d idle ws connections (server soft nofile 1024 at start) in %.1fs; VmRSS %.1f -> %.1f MB"
                  % (n, took, hwm0 / MB, rss / MB))
        finally:
            sel.close()
            t1 = time.monotonic()
            code = srv.terminate(timeout=20)
            for s in socks:
                s.close()
        self.assertEqual(code, 0, srv.stderr()[-2000:])
        print("  SIGTERM with %d open: exit 0 in %.1fs" % (n, time.monotonic() - t1))

    # --- 50k connect/close churn --------------------------------------------------------------------
    def test_connect_close_churn_leaves_no_fd_behind(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        drain_stdout(srv)
        self.assert_serves(srv)
        base = fd_count(srv.pid)
        _, hwm0 = status(srv.pid)
        total = int(50000 * SCALE)
        req = upgrade_request(srv.port)
        linger0 = struct.pack("ii", 1, 0)
        t0 = time.monotonic()
        sel = selectors.DefaultSelector()
        done, started = 0, 0
        try:
            while done < total:
                self.assertLess(time.monotonic() - t0, scaled(120), "churn too slow: %d of %d" % (done, total))
                while started < total and started - done < 200:
                    s = socket.socket()
                    s.setblocking(False)
                    # Reset on close (no TIME_WAIT: 50k closes would use up the ephemeral ports),
                    # except every 10th, closed with a FIN.
                    if started % 10:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
                    s.connect_ex(("127.0.0.1", srv.port))
                    sel.register(s, selectors.EVENT_WRITE, started % 3)
                    started += 1
                for key, ev in sel.select(timeout=scaled(10)):
                    s, kind = key.fileobj, key.data
                    if ev & selectors.EVENT_WRITE and kind != 0:
                        # 1: a whole upgrade, then gone before the answer; 2: half a request.
                        try:
                            s.send(req if kind == 1 else req[:20])
                        except OSError:
                            pass
                    sel.unregister(s)
                    s.close()
                    done += 1
        finally:
            sel.close()
        took = time.monotonic() - t0
        self.assert_serves(srv)
        deadline = time.monotonic() + scaled(10)
        while fd_count(srv.pid) > base and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertLessEqual(fd_count(srv.pid), base)
        _, hwm = status(srv.pid)
        self.assertLess(hwm, hwm0 + 64 * MB + SLACK)
        self.assert_stops_cleanly(srv)
        print("\n  %d connect/close in %.1fs; fds back to %d; VmHWM %.1f -> %.1f MB"
              % (total, took, base, hwm0 / MB, hwm / MB))

    # --- 1 GB at a client that never reads ----------------------------------------------------------
    def test_1gb_from_a_client_that_never_reads_its_echoes(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")  # --max-queue 16 MiB
        _, hwm0 = status(srv.pid)
        s = self.connect(srv)
        self.addCleanup(s.close)
        # (The kernel's own receive buffer: shrinking it to a few KB stalls loopback TCP both ways, so
        # the server would never even read the attack.)
        s.sendall(upgrade_request(srv.port))
        head, rest = read_response(s)
        self.assertEqual(status_of(head), 101)
        msg = frame(0x2, bytes(MB), mask_key=b"\0\0\0\0")
        sent = push_until_dropped(s, srv, msg, int(1024 * MB * SCALE))
        _, hwm = status(srv.pid)
        self.assertRegex(srv.stderr(), r"too slow: \d+ B unsent, over --max-queue 16777216, closing with 1008")
        # --max-queue 16 MiB + --max-message 16 MiB + kernel buffers, per the docs.
        self.assertLess(hwm, hwm0 + 64 * MB + SLACK, "peak RSS %d -> %d" % (hwm0, hwm))
        self.assert_serves(srv)
        self.assert_stops_cleanly(srv)
        print("\n  never-reading client: %.0f MB sent before the drop; VmHWM %.1f -> %.1f MB"
              % (sent / MB, hwm0 / MB, hwm / MB))


if __name__ == "__main__":
    unittest.main()
