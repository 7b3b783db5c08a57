"""ws-echo serve end to end with real peers: Python `websockets` (Debian's /usr/bin/python3), Node `ws`,
a raw-socket client that hand-builds RFC 6455 frames (to break the protocol on purpose), openssl
and headless Chromium.
"""
import asyncio
import base64
import json
import urllib.error
import urllib.request
import os
import re
import signal
import socket
import struct
import ssl
import subprocess
import tempfile
import time
import unittest

import websockets

from netlab_e2e import (CHROMIUM, EXIT, NETLAB, NODE_ENV, NetlabTestCase, cpu_seconds, have_ipv6, make_cert, scaled,
                        start_chromium, unused_port)


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, scaled(timeout)))


def client_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One client frame as bytes (RFC 6455 5.2), masked unless told otherwise; `length` overrides
    the length field (to lie about it)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if mask:
        key = os.urandom(4)
        k = (key * (len(payload) // 4 + 1))[:len(payload)]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(len(payload), "big")
        hdr += key
    return hdr + payload


class RawWs:
    """A WebSocket client on a plain socket with hand-built frames (RFC 6455 5.2), so a test can
    send what no library would: unmasked frames, reserved opcodes, invalid UTF-8, lying lengths."""

    def __init__(self, port, path="/echo", headers=(), timeout=5):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, port, key))
        req += "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
        self.s.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self.head = head.decode("latin-1")

    def frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        self.s.sendall(client_frame(opcode, payload, fin, mask, rsv, length))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed with %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        """(fin, opcode, payload) of the next server frame; server frames must be unmasked."""
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "server frames must not be masked (RFC 6455 5.1)"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._read(n)

    def read_close(self):
        """The close code (and reason) the server sent, skipping data/ping frames."""
        while True:
            _, op, payload = self.read_frame()
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:].decode("utf-8", "replace")

    def at_eof(self, timeout=5):
        """True when the server closed the TCP connection within timeout."""
        self.s.settimeout(scaled(timeout))
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


class WsEchoServe(NetlabTestCase):
    def url(self, srv, path="/echo"):
        return "ws://127.0.0.1:%d%s" % (srv.port, path)

    def test_echo_keeps_type_and_bytes(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        msgs = ["hello Alvin", "封印解除!", "emoji 😀🎉", "", b"", b"\x00\xff\x80"]
        for n in (125, 126, 65535, 65536):
            msgs += ["a" * n, bytes(range(256)) * (n // 256) + bytes(n % 256)]

        async def go():
            async with websockets.connect(self.url(srv), max_size=None) as ws:
                for m in msgs:
                    await ws.send(m)
                    r = await ws.recv()
                    self.assertEqual(type(r), type(m))
                    self.assertEqual(r, m)
        run(go())
        self.assertEqual(srv.terminate(), 0)

    def test_busy_poll_one_and_two_clients_then_idle_costs_nothing(self):
        # --busy-poll keeps the thread polling after a lone client's message: echoes must not change,
        # polling must end when the budget runs out (idle CPU ~0), and SIGTERM must still be prompt.
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--busy-poll", "10000", "--threads", "2")

        async def go():
            async with websockets.connect(self.url(srv)) as a:
                for i in range(50):
                    await a.send("one-%d" % i)
                    self.assertEqual(await a.recv(), "one-%d" % i)
                async with websockets.connect(self.url(srv)) as b:
                    for i in range(50):  # two clients: no polling, both threads may serve
                        await a.send("a%d" % i)
                        await b.send(b"b%d" % i)
                        self.assertEqual(await a.recv(), "a%d" % i)
                        self.assertEqual(await b.recv(), b"b%d" % i)
                await asyncio.sleep(0.3)  # the helper thread leaves within 100 ms; the first polls again
                for i in range(5):
                    await a.send("alone again")
                    self.assertEqual(await a.recv(), "alone again")
                await asyncio.sleep(0.2)  # the 10 ms budget is long over
                before = cpu_seconds(srv.p.pid)
                await asyncio.sleep(1.0)
                self.assertLess(cpu_seconds(srv.p.pid) - before, 0.2, "the server kept polling while idle")
        run(go())
        start = time.monotonic()
        self.assertEqual(srv.terminate(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - start, scaled(3))
        r = self.netlab("ws-echo", "serve", "--busy-poll", "10001")
        self.assertEqual(r.returncode, EXIT["usage"], r.stderr)
        self.assertIn(b"--busy-poll", r.stderr)

    @unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
    def test_ipv6_loopback(self):
        srv = self.server("ws-echo", "serve", "--listen", "[::1]:0")
        self.assertEqual(srv.host, "::1")

        async def go():
            async with websockets.connect("ws://[::1]:%d/echo" % srv.port) as ws:
                await ws.send("v6")
                self.assertEqual(await ws.recv(), "v6")
        run(go())
        self.assertEqual(srv.terminate(), 0)
        self.assertRegex(srv.stderr(), r"ws open \[::1\]:\d+")

    def test_other_path_is_404(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")

        async def go():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                await websockets.connect(self.url(srv, "/nope"))
            self.assertEqual(cm.exception.status_code, 404)
        run(go())

    def test_oversized_message_closes_1009(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-message", "1000")

        async def go():
            async with websockets.connect(self.url(srv)) as ws:
                await ws.send("x" * 1000)
                self.assertEqual(len(await ws.recv()), 1000)
                await ws.send("x" * 1001)
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await ws.recv()
                self.assertEqual(cm.exception.code, 1009)
        run(go())

    def test_sigterm_sends_1001_to_every_client(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")

        async def go():
            conns = [await websockets.connect(self.url(srv)) for _ in range(5)]
            for c in conns:
                await c.send("hi")
                self.assertEqual(await c.recv(), "hi")
            srv.p.send_signal(signal.SIGTERM)
            codes = []
            for c in conns:
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await c.recv()
                codes.append(cm.exception.code)
            self.assertEqual(codes, [1001] * 5)
        run(go())
        self.assertEqual(srv.wait(10), 0)


    # ---- RFC 6455 strictness, with hand-built frames -------------------------------------------
    def raw(self, srv, **kw):
        c = RawWs(srv.port, **kw)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 101, c.head)
        return c

    def test_raw_masked_text_is_echoed_and_ping_answered(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        c = self.raw(srv)
        c.frame(0x1, "héllo".encode())
        self.assertEqual(c.read_frame(), (True, 0x1, "héllo".encode()))
        c.frame(0x9, b"are you there")  # ping → pong with the same payload (5.5.2, 5.5.3)
        self.assertEqual(c.read_frame(), (True, 0xA, b"are you there"))
        # A fragmented message with a ping between its fragments (5.4: control frames interleave).
        c.frame(0x2, b"\x01\x02", fin=False)
        c.frame(0x9, b"mid")
        c.frame(0x0, b"\x03", fin=True)
        self.assertEqual(c.read_frame(), (True, 0xA, b"mid"))
        self.assertEqual(c.read_frame(), (True, 0x2, b"\x01\x02\x03"))

    def test_raw_close_handshake_completes(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        c = self.raw(srv)
        c.frame(0x8, struct.pack("!H", 1000) + b"bye")
        self.assertEqual(c.read_close(), (1000, "bye"))  # 5.5.1: the server echoes the code
        self.assertTrue(c.at_eof(), "server must close TCP after the close handshake (7.1.1)")

    def assert_closes_with(self, srv, code, send):
        c = self.raw(srv)
        send(c)
        got, reason = c.read_close()
        self.assertEqual(got, code, reason)
        self.assertTrue(c.at_eof(), "no TCP close after close %d" % code)
        return reason

    def test_raw_protocol_violations_close_1002(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0x1, b"unmasked", mask=False))  # 5.1
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0x3, b"reserved opcode"))  # 5.2
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0xB, b"reserved control"))
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0x1, b"rsv1", rsv=4))  # no extension
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0x0, b"continuation first"))
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0x9, b"fragmented ping", fin=False))  # 5.5
        self.assert_closes_with(srv, 1002, lambda c: c.frame(0x9, b"x" * 126))  # control > 125
        # The server still serves well-behaved clients afterwards.
        c = self.raw(srv)
        c.frame(0x1, b"still here")
        self.assertEqual(c.read_frame(), (True, 0x1, b"still here"))

    def test_raw_invalid_utf8_closes_1007(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        self.assert_closes_with(srv, 1007, lambda c: c.frame(0x1, b"bad \xff\xfe"))
        self.assert_closes_with(srv, 1007, lambda c: c.frame(0x1, b"\xed\xa0\x80"))  # surrogate

        def split(c):  # invalid only once the fragments are joined... and valid binary is fine
            c.frame(0x2, b"\xff", fin=True)
            self.assertEqual(c.read_frame(), (True, 0x2, b"\xff"))
            c.frame(0x1, "封".encode()[:2], fin=False)
            c.frame(0x0, b"A", fin=True)
        self.assert_closes_with(srv, 1007, split)

    def test_raw_oversized_closes_1009(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-message", "1000")
        # Only the header claiming 2000 bytes is sent: the server must refuse before the payload.
        self.assert_closes_with(srv, 1009, lambda c: c.frame(0x2, b"", length=2000))

        def fragments(c):  # 600 + 600 bytes: each fragment fits, the message does not
            c.frame(0x2, b"a" * 600, fin=False)
            c.frame(0x0, b"b" * 600, fin=True)
        self.assert_closes_with(srv, 1009, fragments)

    # ---- RFC 6455 gaps websocketpp 0.8.2 leaves open (netlab closes them) -----------------------
    def test_text_ending_mid_code_point_and_bad_close_reason_close_1007(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")

        def ends_mid_code_point(c):  # 8.1: the last frame is a continuation, the message is text
            c.frame(0x1, b"ok ", fin=False)
            c.frame(0x0, "封".encode()[:2], fin=True)
        self.assert_closes_with(srv, 1007, ends_mid_code_point)
        # 5.5.1 / 7.4.1: a close frame's reason is UTF-8.
        self.assert_closes_with(srv, 1007, lambda c: c.frame(0x8, struct.pack("!H", 1000) + b"bye \xff"))
        c = self.raw(srv)
        c.frame(0x1, b"ok ", fin=False)
        c.frame(0x0, "封".encode(), fin=True)  # a whole code point split the same way is fine
        self.assertEqual(c.read_frame(), (True, 0x1, "ok 封".encode()))
        c.frame(0x8, struct.pack("!H", 1000) + "封".encode())
        self.assertEqual(c.read_close(), (1000, "封"))
        self.assertEqual(srv.terminate(), 0)

    def upgrade(self, srv, lines, path="/echo"):
        """Status and head of the answer to a hand-written upgrade request (lines: header lines)."""
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, "".join(l + "\r\n" for l in lines))).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        head = buf.partition(b"\r\n\r\n")[0].decode("latin-1")
        return int(head.split(" ", 2)[1]), head

    def test_upgrade_needs_version_13_and_a_16_byte_key(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        up = ["Upgrade: websocket", "Connection: Upgrade"]
        key = "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode()
        self.assertEqual(self.upgrade(srv, up + [key, "Sec-WebSocket-Version: 13"])[0], 101)
        # 4.2.2: another version (hybi drafts 7 and 8 included) or none: 426 naming version 13.
        for version in (["Sec-WebSocket-Version: 8"], ["Sec-WebSocket-Version: 7"], ["Sec-WebSocket-Version: 14"], []):
            with self.subTest(version=version):
                status, head = self.upgrade(srv, up + [key] + version)
                self.assertEqual(status, 426, head)
                self.assertRegex(head + "\r\n", r"(?i)\r\nSec-WebSocket-Version: 13\r\n")
        # 4.2.1: the key is the base64 of exactly 16 bytes.
        for bad in ("abc", base64.b64encode(os.urandom(15)).decode(), base64.b64encode(os.urandom(17)).decode(),
                    "!" * 22 + "==", "dGhlIHNhbXBsZSBub25jZQ"):
            with self.subTest(key=bad):
                status, head = self.upgrade(srv, up + ["Sec-WebSocket-Key: " + bad, "Sec-WebSocket-Version: 13"])
                self.assertEqual(status, 400, head)
        self.assertEqual(self.upgrade(srv, up + ["Sec-WebSocket-Version: 13"])[0], 400)  # no key
        self.assertEqual(srv.terminate(), 0)
        self.assertIn("HTTP 400, Sec-WebSocket-Key must be the base64 of 16 bytes", srv.stderr())

    def test_a_bad_upgrade_at_the_page_path_never_gets_the_page(self):
        for path in ("/", "/echo"):
            srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--path", path)
            key = "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode()
            v13 = "Sec-WebSocket-Version: 13"
            attempts = {
                "no Connection": ["Upgrade: websocket", key, v13],
                "no Upgrade": ["Connection: Upgrade", key, v13],
                "Upgrade: h2c": ["Upgrade: h2c", "Connection: Upgrade", key, v13],
                "bad key": ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: x", v13],
                "version 8": ["Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 8"],
            }
            for name, lines in attempts.items():
                with self.subTest(path=path, attempt=name):
                    status, head = self.upgrade(srv, lines, path="/")
                    self.assertIn(status, (400, 426), head)
                    self.assertNotIn("text/html", head)
            # Only a GET that is no upgrade attempt gets the page.
            status, head = self.upgrade(srv, [], path="/")
            self.assertEqual(status, 200)
            self.assertIn("text/html", head)
            self.assertEqual(self.upgrade(srv, ["Upgrade: websocket", "Connection: Upgrade", key, v13], path=path)[0], 101)
            self.assertEqual(srv.terminate(), 0)

    # ---- other real clients and sizes -----------------------------------------------------------
    def test_node_ws_client(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        script = r"""
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1]);
const sent = ['hello Alvin', '封印解除!', '😀🎉', Buffer.from([0, 255, 128]), 'x'.repeat(70000),
              Buffer.alloc(8 * 1024 * 1024, 7)];
let i = 0;
ws.on('open', () => ws.send(sent[0]));
ws.on('message', (data, isBinary) => {
  const want = sent[i];
  const ok = Buffer.isBuffer(want) ? isBinary && data.equals(want) : !isBinary && data.toString() === want;
  if (!ok) { console.log('MISMATCH ' + i); process.exit(1); }
  if (++i < sent.length) ws.send(sent[i]); else ws.close(1000, 'done');
});
ws.on('close', (code) => { console.log('CLOSED ' + code + ' after ' + i); process.exit(code === 1000 ? 0 : 1); });
ws.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
"""
        r = subprocess.run(["node", "-e", script, "ws://127.0.0.1:%d/echo" % srv.port], env=NODE_ENV,
                           capture_output=True, timeout=scaled(30))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"CLOSED 1000 after 6", r.stdout)

    def test_8mib_messages_and_utf8(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        big_text = ("封印解除!😀" * 1000000)[:8 * 1024 * 1024 // 4]
        big_bin = os.urandom(8 * 1024 * 1024)

        async def go():
            async with websockets.connect(self.url(srv), max_size=None) as ws:
                for m in ("封印解除!", "😀🎉👍🏽", big_text, big_bin):
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m)
        run(go(), 30)


    # ---- limits and timeouts --------------------------------------------------------------------
    def test_max_queue_spares_a_client_that_keeps_up(self):
        # Messages close to --max-queue, pings in between: a client reading every echo is never
        # "too slow" (only bytes still unsent when the next message comes count).
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-queue", "100K",
                          "--ping-interval", "200ms")

        async def go():
            async with websockets.connect(self.url(srv), max_size=None) as ws:
                m = os.urandom(70000)
                for _ in range(150):
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m)
        run(go())
        self.assertEqual(srv.terminate(), 0)
        self.assertNotIn("too slow", srv.stderr())

    def test_echo_closes_a_client_that_never_reads(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-queue", "1MiB")
        c = self.raw(srv)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        chunk = os.urandom(64 * 1024)
        deadline = time.monotonic() + scaled(10)
        try:  # ~25 MiB of echoes it never reads: far more than kernel buffers plus --max-queue
            for _ in range(400):
                c.frame(0x2, chunk)
                if "too slow" in srv.stderr() or time.monotonic() > deadline:
                    break
        except OSError:
            pass  # dropped while sending
        while "too slow" not in srv.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertRegex(srv.stderr(), r"ws 127\.0\.0\.1:\d+: too slow: \d+ B unsent, over --max-queue 1048576")
        self.assertEqual(srv.terminate(), 0)

    def test_max_connections_refuses_with_503(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--max-connections", "2")

        async def go():
            a = await websockets.connect(self.url(srv))
            b = await websockets.connect(self.url(srv))
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                await websockets.connect(self.url(srv))
            self.assertEqual(cm.exception.status_code, 503)
            await b.send("b still served")
            self.assertEqual(await b.recv(), "b still served")
            await a.close()
            # The slot frees once the server has seen the close: retry, bounded.
            deadline = time.monotonic() + scaled(5)
            while True:
                try:
                    c = await websockets.connect(self.url(srv))
                    break
                except websockets.InvalidStatusCode as e:
                    self.assertEqual(e.status_code, 503)
                    self.assertLess(time.monotonic(), deadline, "slot never freed after a close")
                    await asyncio.sleep(0.02)
            await c.send("c")
            self.assertEqual(await c.recv(), "c")
            await b.close()
            await c.close()
        run(go())
        self.assertEqual(srv.terminate(), 0)
        self.assertIn("HTTP 503", srv.stderr())

    def test_handshake_timeout_drops_silent_and_partial_sockets(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--handshake-timeout", "300ms")
        silent = socket.create_connection(("127.0.0.1", srv.port))
        partial = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(silent.close)
        self.addCleanup(partial.close)
        partial.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        for s in (silent, partial):
            s.settimeout(scaled(5))
            try:
                while s.recv(4096):  # until EOF (socket.timeout fails the test)
                    pass
            except ConnectionResetError:
                pass
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.25, "dropped before --handshake-timeout")
        self.assertLess(took, scaled(3))
        # A complete upgrade after the same wait is not affected.
        c = self.raw(srv)
        c.frame(0x1, b"ok")
        self.assertEqual(c.read_frame(), (True, 0x1, b"ok"))
        self.assertEqual(srv.terminate(), 0)
        self.assertIn("--handshake-timeout", srv.stderr())

    def test_idle_timeout_closes_quiet_clients_1001(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--idle-timeout", "400ms")

        async def go():
            async with websockets.connect(self.url(srv)) as ws:
                t0 = time.monotonic()
                while True:  # busy for 2.5 timeouts: stays open
                    await ws.send("x")
                    self.assertEqual(await ws.recv(), "x")
                    quiet = time.monotonic()  # the server saw our last message before this
                    if quiet - t0 >= 1.0:
                        break
                    await asyncio.sleep(0.1)
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await ws.recv()
                self.assertEqual((cm.exception.code, cm.exception.reason), (1001, "idle timeout"))
                # 400 ms after the server's last activity, which came before `quiet` (timer slack: 50 ms)
                self.assertGreaterEqual(time.monotonic() - quiet, 0.35)
        run(go())

    def test_ping_interval_keeps_live_peers_and_drops_silent_ones(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--ping-interval", "150ms")
        mute = self.raw(srv)  # reads nothing, answers no ping

        async def go():
            async with websockets.connect(self.url(srv)) as ws:  # websockets answers pings itself
                await asyncio.sleep(1.0)
                await ws.send("alive")
                self.assertEqual(await ws.recv(), "alive")
        run(go())
        _, op, payload = mute.read_frame()
        self.assertEqual(op, 0x9, "server never pinged")
        self.assertTrue(mute.at_eof(5), "a peer that never answers pings was not dropped")
        self.assertEqual(srv.terminate(), 0)
        self.assertIn("no pong", srv.stderr())

    def test_allow_origin(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--allow-origin", "http://good.example",
                          "--allow-origin", "https://also.example:8443")

        async def go():
            for origin in ("http://good.example", "https://also.example:8443", None):
                async with websockets.connect(self.url(srv), origin=origin) as ws:
                    await ws.send("o")
                    self.assertEqual(await ws.recv(), "o")
            for origin in ("http://evil.example", "http://good.example:81", "null"):
                with self.assertRaises(websockets.InvalidStatusCode) as cm:
                    await websockets.connect(self.url(srv), origin=origin)
                self.assertEqual(cm.exception.status_code, 403, origin)
        run(go())
        # Without --allow-origin any origin is accepted (the classic lesson's CheckOrigin → true).
        srv2 = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")

        async def any_origin():
            async with websockets.connect(self.url(srv2), origin="http://evil.example") as ws:
                await ws.send("o")
                self.assertEqual(await ws.recv(), "o")
        run(any_origin())


    # ---- logs ---------------------------------------------------------------------------------
    def test_logs_open_close_at_info_messages_at_v_headers_at_vv(self):
        async def session(srv):
            async with websockets.connect(self.url(srv), origin="http://page.example") as ws:
                for m in ("hello Alvin", b"\x01\x02\x03"):
                    await ws.send(m)
                    await ws.recv()
                await ws.close(1000, "done")

        info = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        run(session(info))
        self.assertEqual(info.terminate(), 0)
        err = info.stderr()
        self.assertRegex(err, r"ws open 127\.0\.0\.1:\d+ origin 'http://page\.example' resource /echo")
        self.assertRegex(err, r"ws close 127\.0\.0\.1:\d+ origin 'http://page\.example': sent 1000 'done', "
                              r"received 1000 'done'; in 2 msgs/14 B, out 2 msgs/14 B, \d+")
        self.assertNotIn("text 11 B", err)
        self.assertNotIn("Sec-WebSocket-Key", err)

        v = self.server("-v", "ws-echo", "serve", "--listen", "127.0.0.1:0")
        run(session(v))
        self.assertEqual(v.terminate(), 0)
        self.assertIn("text 11 B", v.stderr())
        self.assertIn("binary 3 B", v.stderr())
        self.assertNotIn("Sec-WebSocket-Key", v.stderr())

        vv = self.server("-vv", "ws-echo", "serve", "--listen", "127.0.0.1:0")
        run(session(vv))
        self.assertEqual(vv.terminate(), 0)
        err = vv.stderr()
        # The full handshake, one prefixed line per header line (issue 16), both ways.
        self.assertRegex(err, r"< GET /echo HTTP/1\.1\n(< [^\n]*\n)*< Sec-WebSocket-Key: ")
        self.assertRegex(err, r"> HTTP/1\.1 101 Switching Protocols\n(> [^\n]*\n)*> Sec-WebSocket-Accept: ")
        # Each decoded frame, both directions: FIN, opcode name, mask, length, first bytes.
        self.assertRegex(err, r'ws 127\.0\.0\.1:\d+ < FIN text masked len=11 "hello Alvin"\n')
        self.assertRegex(err, r'ws 127\.0\.0\.1:\d+ > FIN text len=11 "hello Alvin"\n')
        self.assertRegex(err, r"ws 127\.0\.0\.1:\d+ < FIN binary masked len=3 01 02 03\n")
        self.assertRegex(err, r"ws 127\.0\.0\.1:\d+ > FIN binary len=3 01 02 03\n")
        self.assertRegex(err, r'< FIN close masked len=6 code=1000 "done"\n')
        self.assertRegex(err, r'> FIN close len=6 code=1000 "done"\n')
        # websocketpp's raw dumps are gone.
        self.assertNotIn("Header Bytes", err)
        self.assertNotIn("Dispatching write", err)

    def test_vv_traces_fragments_control_frames_and_long_payloads(self):
        srv = self.server("-vv", "ws-echo", "serve", "--listen", "127.0.0.1:0")
        c = RawWs(srv.port)
        self.assertEqual(c.status, 101)
        c.frame(1, b"frag", fin=False)
        c.frame(0, b"ment")
        self.assertEqual(c.read_frame(), (True, 1, b"fragment"))
        c.frame(9, b"are you there")
        self.assertEqual(c.read_frame(), (True, 10, b"are you there"))
        c.frame(2, bytes(range(256)) * 2)
        self.assertEqual(c.read_frame()[2], bytes(range(256)) * 2)
        c.frame(10, b"")  # an unsolicited empty pong
        c.frame(8, struct.pack("!H", 1000))
        self.assertEqual(c.read_close(), (1000, ""))
        c.close()
        self.assertEqual(srv.terminate(), 0)
        err = srv.stderr()
        self.assertRegex(err, r'< text masked len=4 "frag"\n')  # no FIN: a first fragment
        self.assertRegex(err, r'< FIN continuation masked len=4 "ment"\n')
        self.assertRegex(err, r'> FIN text len=8 "fragment"\n')  # echoed as one message
        self.assertRegex(err, r'< FIN ping masked len=13 "are you there"\n')
        self.assertRegex(err, r'> FIN pong len=13 "are you there"\n')
        # 512 bytes: the first 32 in hex, then an ellipsis.
        first = " ".join("%02x" % i for i in range(32))
        self.assertIn("< FIN binary masked len=512 %s \u2026\n" % first, err)
        self.assertIn("> FIN binary len=512 %s \u2026\n" % first, err)
        self.assertRegex(err, r"< FIN pong masked len=0\n")
        self.assertRegex(err, r"< FIN close masked len=2 code=1000\n")
        self.assertRegex(err, r"> FIN close len=2 code=1000\n")
        self.assertNotIn("Header Bytes", err)


def await_stderr(srv, pattern, count=1, timeout=10):
    """Waits (bounded) until the server's log matches pattern count times; returns the log."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        err = srv.stderr()
        if len(re.findall(pattern, err)) >= count or time.monotonic() > deadline:
            return err
        time.sleep(0.05)


class WsEchoServeLogsAndEvents(NetlabTestCase):
    def url(self, srv):
        return "ws://127.0.0.1:%d/echo" % srv.port

    def test_a_failure_is_logged_once_and_1006_is_never_sent(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        lost = RawWs(srv.port)
        self.assertEqual(lost.status, 101)
        lost.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        lost.close()  # a reset, no close frame
        bad = RawWs(srv.port)
        bad.frame(1, b"hi", mask=False)  # clients must mask: 1002
        self.assertEqual(bad.read_close()[0], 1002)
        bad.close()
        err = await_stderr(srv, r"ws close ", 2)
        self.assertEqual(srv.terminate(), 0)
        err = srv.stderr()
        # 1006 is websocketpp's "no close frame": never on the wire, so never "sent".
        self.assertNotIn("sent 1006", err)
        self.assertRegex(err, r"ws close 127\.0\.0\.1:\d+ origin '': connection lost \(1006\): "
                              r"Connection reset by peer; in 0 msgs/0 B")
        self.assertRegex(err, r"sent 1002 'Clients may not send unmasked frames', received none")
        # websocketpp's own error lines said the same again, as warnings: now once, by netlab.
        self.assertEqual(err.count("Connection reset by peer"), 1, err)
        self.assertEqual(err.count("Clients may not send unmasked frames"), 1, err)
        self.assertNotIn("warning", err)

    def test_json_server_events_connection_and_closed(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--idle-timeout", "500ms")

        async def by_peer():
            async with websockets.connect(self.url(srv)) as ws:
                await ws.send("hi")
                self.assertEqual(await ws.recv(), "hi")
                await ws.send(b"\x00\x01\x02")
                await ws.recv()
                await ws.close(1000, "done")

        async def by_server():  # idle: the server closes with 1001
            async with websockets.connect(self.url(srv)) as ws:
                await ws.wait_closed()
                self.assertEqual(ws.close_code, 1001)

        run(by_peer())
        c1 = srv.await_json("connection")
        self.assertEqual(c1["proto"], "ws")
        self.assertEqual(c1["id"], 1)
        self.assertRegex(c1["peer"], r"^127\.0\.0\.1:\d+$")
        e1 = srv.await_json("closed")
        self.assertEqual((e1["proto"], e1["id"], e1["peer"]), ("ws", 1, c1["peer"]))
        self.assertEqual((e1["code"], e1["reason"], e1["by"]), (1000, "done", "peer"))
        self.assertEqual((e1["bytes_in"], e1["bytes_out"]), (5, 5))
        self.assertIsInstance(e1["seconds"], float)
        self.assertGreaterEqual(e1["seconds"], 0)

        run(by_server())
        self.assertEqual(srv.await_json("connection")["id"], 2)
        e2 = srv.await_json("closed")
        self.assertEqual((e2["id"], e2["code"], e2["reason"], e2["by"]), (2, 1001, "idle timeout", "local"))
        self.assertEqual((e2["bytes_in"], e2["bytes_out"]), (0, 0))

        lost = RawWs(srv.port)
        self.assertEqual(srv.await_json("connection")["id"], 3)
        lost.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        lost.close()
        e3 = srv.await_json("closed")
        self.assertEqual((e3["id"], e3["code"], e3["by"]), (3, 1006, "peer"))
        self.assertIn("connection lost", e3["reason"])
        self.assertEqual(srv.terminate(), 0)
        for line in srv.lines + srv.stdout_rest().splitlines():
            json.loads(line)  # NDJSON only

    def test_idle_after_a_busy_session_makes_no_wake_ups(self):
        # Three connections at once wake the helper threads and the busy poll; once they are closed
        # the server must go back to sleeping (issue 14 item 2).
        from test_lifecycle import IDLE_MAX_SWITCHES, IDLE_SECONDS, context_switches
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--threads", "4")

        async def client(i):
            async with websockets.connect(self.url(srv)) as ws:
                for n in range(200):
                    await ws.send("%d-%d" % (i, n))
                    self.assertEqual(await ws.recv(), "%d-%d" % (i, n))

        async def busy():
            await asyncio.gather(*(client(i) for i in range(3)))
        run(busy())
        for _ in range(3):
            srv.await_json("closed")
        time.sleep(0.5)  # let the helpers' 10 ms linger and the log flush pass: not synchronisation
        before = context_switches(srv.pid)
        time.sleep(IDLE_SECONDS)
        switches = context_switches(srv.pid) - before
        self.assertLessEqual(switches, IDLE_MAX_SWITCHES,
                             "idle server woke up %d times in %.0fs" % (switches, IDLE_SECONDS))
        self.assertEqual(srv.terminate(), 0)

    def test_text_mode_keeps_stdout_to_the_readiness_line(self):
        p = self.spawn([NETLAB, "ws-echo", "serve", "--listen", "127.0.0.1:0"])
        ready = p.await_line(lambda line: line.startswith(b"listening"))
        port = int(ready.rsplit(b":", 1)[1])

        async def go():
            async with websockets.connect("ws://127.0.0.1:%d/echo" % port) as ws:
                await ws.send("x")
                await ws.recv()
        run(go())
        await_stderr(p, r"ws close ")
        self.assertEqual(p.terminate(), 0)
        self.assertEqual(p.stdout_rest(), b"")


class WsEchoServeTls(NetlabTestCase):
    """wss:// with a certificate made here by openssl (CN and SAN for 127.0.0.1/localhost)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.cert, cls.key = make_cert(cls.dir.name)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def ctx(self):
        c = ssl.create_default_context(cafile=self.cert)
        return c

    def wss(self, *extra):
        return self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--tls-cert", self.cert,
                           "--tls-key", self.key, *extra)

    def test_wss_echo_and_sigterm(self):
        srv = self.wss()
        self.assertEqual(json_line(srv)["proto"], "wss")

        async def go():
            url = "wss://127.0.0.1:%d/echo" % srv.port
            async with websockets.connect(url, ssl=self.ctx(), max_size=None) as ws:
                for m in ("hello Alvin", "封印解除!", os.urandom(70000)):
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m)
            # Clients still connected at SIGTERM get 1001 and the server exits promptly (the
            # websocketpp TLS shutdown hang must not bite).
            conns = [await websockets.connect(url, ssl=self.ctx()) for _ in range(3)]
            t0 = time.monotonic()
            srv.p.send_signal(signal.SIGTERM)
            for c in conns:
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await c.recv()
                self.assertEqual(cm.exception.code, 1001)
            return t0
        t0 = run(go())
        self.assertEqual(srv.wait(10), 0)
        self.assertLess(time.monotonic() - t0, scaled(4))

    def test_wss_with_deflate_and_broadcast(self):
        srv = self.wss("--deflate", "--broadcast", "--threads", "2")

        async def go():
            url = "wss://127.0.0.1:%d/echo" % srv.port
            async with websockets.connect(url, ssl=self.ctx()) as a, websockets.connect(url, ssl=self.ctx()) as b:
                self.assertEqual([e.name for e in a.extensions], ["permessage-deflate"])
                text = "chat " * 10000
                await a.send(text)
                self.assertEqual(await a.recv(), text)
                self.assertEqual(await b.recv(), text)
        run(go())
        self.assertEqual(srv.terminate(), 0)

    def test_wss_rejects_plain_and_untrusted_clients(self):
        srv = self.wss("--handshake-timeout", "500ms")

        async def go():
            with self.assertRaises(Exception):  # plain ws:// to a TLS port
                await websockets.connect("ws://127.0.0.1:%d/echo" % srv.port, open_timeout=scaled(3))
            with self.assertRaises(ssl.SSLCertVerificationError):  # default trust store: not trusted
                await websockets.connect("wss://127.0.0.1:%d/echo" % srv.port,
                                         ssl=ssl.create_default_context())
        run(go())
        # A TCP client that never starts TLS is dropped by --handshake-timeout.
        s = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(s.close)
        s.settimeout(scaled(5))
        t0 = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        self.assertLess(time.monotonic() - t0, scaled(3))
        self.assertEqual(srv.terminate(), 0)

    def test_bad_tls_files_are_usage_errors_before_binding(self):
        port = unused_port(socket.SOCK_STREAM)
        junk = os.path.join(self.dir.name, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        other_key = os.path.join(self.dir.name, "other.pem")
        subprocess.run(["openssl", "genrsa", "-out", other_key, "2048"], check=True, capture_output=True, timeout=30)
        cases = [(["--tls-cert", "/nonexistent/cert.pem", "--tls-key", self.key], "--tls-cert /nonexistent/cert.pem"),
                 (["--tls-cert", self.cert], "--tls-key"),
                 (["--tls-cert", junk, "--tls-key", self.key], "--tls-cert " + junk),
                 (["--tls-cert", self.cert, "--tls-key", junk], "--tls-key " + junk),
                 (["--tls-cert", self.cert, "--tls-key", other_key], "--tls-key " + other_key)]
        for args, needle in cases:
            r = self.netlab("ws-echo", "serve", "--listen", "127.0.0.1:%d" % port, *args, timeout=10)
            self.assertEqual(r.returncode, EXIT["usage"], (args, r.stderr))
            self.assertIn(needle, r.stderr.decode())
            self.assertNotIn(b"listening", r.stdout)
            self.assertEqual(len(r.stderr.decode().strip().splitlines()), 1, r.stderr)


class WsEchoServeModes(NetlabTestCase):
    def url(self, srv, path="/echo"):
        return "ws://127.0.0.1:%d%s" % (srv.port, path)

    def test_deflate_is_negotiated_and_echoes(self):
        srv = self.server("-vv", "ws-echo", "serve", "--listen", "127.0.0.1:0", "--deflate")
        plain = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")

        async def go():
            text = "compressible " * 50000
            async with websockets.connect(self.url(srv), max_size=None) as ws:
                self.assertIn("permessage-deflate", ws.response_headers.get("Sec-WebSocket-Extensions", ""))
                self.assertEqual([e.name for e in ws.extensions], ["permessage-deflate"])
                for m in ("hello Alvin", text, os.urandom(100000), "封印解除!😀", ""):
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m)
            async with websockets.connect(self.url(plain)) as ws:  # not offered without --deflate
                self.assertEqual(ws.extensions, [])
                await ws.send("x")
                self.assertEqual(await ws.recv(), "x")
            # A client that does not offer it still works against --deflate.
            async with websockets.connect(self.url(srv), compression=None) as ws:
                self.assertEqual(ws.extensions, [])
                await ws.send(text)
                self.assertEqual(await ws.recv(), text)
        run(go())
        self.assertEqual(srv.terminate(), 0)
        err = srv.stderr()
        self.assertIn("extensions permessage-deflate", err)
        # Replies really are compressed: -vv marks frames with RSV1 set (RFC 7692 6) as compressed.
        self.assertRegex(err, r"> FIN text len=\d+ [^\n]* compressed\n")
        self.assertRegex(err, r"< FIN text masked len=\d+ [^\n]* compressed\n")

    def test_deflate_limits_the_inflated_size(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--deflate", "--max-message", "1000")

        async def go():
            async with websockets.connect(self.url(srv), max_size=None) as ws:
                self.assertEqual([e.name for e in ws.extensions], ["permessage-deflate"])
                await ws.send("a" * 2000000)  # a few KB on the wire, 2 MB inflated
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await ws.recv()
                self.assertEqual(cm.exception.code, 1009)
        run(go())

    def test_deflate_with_node_ws(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--deflate")
        script = r"""
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1], { perMessageDeflate: { threshold: 0 } });
const msg = 'deflate me '.repeat(20000);
ws.on('open', () => ws.send(msg));
ws.on('message', (data) => {
  console.log('EXT ' + ws.extensions + ' OK ' + (data.toString() === msg));
  ws.close(1000);
});
ws.on('close', () => process.exit(0));
ws.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
"""
        r = subprocess.run(["node", "-e", script, self.url(srv)], env=NODE_ENV, capture_output=True,
                           timeout=scaled(20))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"EXT permessage-deflate", r.stdout)
        self.assertIn(b"OK true", r.stdout)

    def test_broadcast_to_50_clients(self):
        for threads in ("1", "3"):
            with self.subTest(threads=threads):
                self.broadcast_to_50_clients(threads)

    def broadcast_to_50_clients(self, threads):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--broadcast", "--threads", threads)

        async def go():
            conns = [await websockets.connect(self.url(srv)) for _ in range(50)]
            for i, c in enumerate(conns):
                await c.send("from %d" % i)
            want = sorted("from %d" % i for i in range(50))
            for c in conns:  # every client sees every message, its own included
                got = [await c.recv() for _ in range(50)]
                self.assertEqual(sorted(got), want)
            await conns[0].send(b"\x00bin")
            for c in conns:
                self.assertEqual(await c.recv(), b"\x00bin")
            for c in conns:
                await c.close()
        run(go(), 30)
        self.assertEqual(srv.terminate(), 0)

    def test_broadcast_closes_a_laggard_and_others_keep_up(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--broadcast", "--max-queue", "1MiB")
        laggard = RawWs(srv.port)  # completes the upgrade, then never reads
        self.addCleanup(laggard.close)
        self.assertEqual(laggard.status, 101)
        laggard.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        chunk = os.urandom(64 * 1024)
        n = 400  # 25 MiB: far more than the kernel buffers plus --max-queue

        async def go():
            async with websockets.connect(self.url(srv), max_size=None) as a, \
                    websockets.connect(self.url(srv), max_size=None) as b:
                got = {a: 0, b: 0}
                progress = asyncio.Condition()

                async def reader(ws):
                    while got[ws] < n:
                        self.assertEqual(await ws.recv(), chunk)
                        async with progress:
                            got[ws] += 1
                            progress.notify_all()
                    return got[ws]
                ra, rb = asyncio.ensure_future(reader(a)), asyncio.ensure_future(reader(b))
                # The two readers keep up: the sender stays at most 8 messages (512 KiB) ahead of
                # the slower of them, so only the laggard's queue can pass --max-queue. (Unpaced,
                # the server outruns Python's readers and rightly drops them too.)
                for i in range(n):
                    async with progress:
                        await progress.wait_for(lambda: i - min(got.values()) < 8 or ra.done() or rb.done())
                    if ra.done() or rb.done():
                        break
                    await a.send(chunk)
                self.assertEqual(await ra, n)
                self.assertEqual(await rb, n)
        run(go(), 40)
        # The laggard is told 1008 and, as it reads nothing, dropped after the 2 s close timeout.
        deadline = time.monotonic() + scaled(6)
        while "; too slow" not in srv.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        err = srv.stderr()
        self.assertRegex(err, r"ws 127\.0\.0\.1:\d+: too slow: \d+ B unsent, over --max-queue 1048576, closing with 1008")
        self.assertRegex(err, r"ws close 127\.0\.0\.1:\d+ origin '': sent 1008 'too slow: send queue over --max-queue'")
        self.assertEqual(len(re.findall(r"ws \S+: too slow", err)), 1, err)  # one client only
        self.assertEqual(len(re.findall(r"ws close .*too slow", err)), 1, err)
        self.assertEqual(srv.terminate(), 0)


def json_line(srv):
    return json.loads(srv.lines[0])


class Cdp:
    """Chromium's DevTools protocol over its own WebSocket (flattened sessions), bounded waits."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def call(self, method, session=None, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:  # events arrive in between; skip them
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError("%s: %s" % (method, reply["error"]))
                return reply["result"]

    async def open_page(self, url):
        target = (await self.call("Target.createTarget", url=url))["targetId"]
        return (await self.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]

    async def eval(self, session, expr):
        r = await self.call("Runtime.evaluate", session, expression=expr, returnByValue=True)
        return r["result"].get("value")

    async def wait_for(self, session, expr, timeout, what):
        deadline = time.monotonic() + scaled(timeout)
        last = None
        while time.monotonic() < deadline:
            last = await self.eval(session, expr)
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError("browser: %s not seen within %ss (last %r)" % (what, timeout, last))


LOG_TEXT = "[...document.querySelectorAll('#log div')].map(e => e.className + ' ' + e.textContent).join('\\n')"
CONNECTED = "document.getElementById('state')?.textContent === 'open'"


def type_and_send(text):
    return ("document.getElementById('msg').value = %s; document.getElementById('send').click(); true"
            % json.dumps(text))


class WsEchoServePage(NetlabTestCase):
    def test_page_is_served_and_no_page_is_404(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        with urllib.request.urlopen("http://127.0.0.1:%d/" % srv.port, timeout=scaled(5)) as r:
            self.assertEqual(r.status, 200)
            self.assertIn("text/html", r.headers["Content-Type"])
            body = r.read().decode()
        self.assertIn("new WebSocket(", body)
        self.assertIn('location.host + "/echo"', body)
        self.assertNotRegex(body, r"(src|href)=\"?(https?:)?//")  # nothing external, no CDN
        with self.assertRaises(urllib.error.HTTPError) as cm:  # /echo without an upgrade
            urllib.request.urlopen("http://127.0.0.1:%d/echo" % srv.port, timeout=scaled(5))
        self.assertEqual(cm.exception.code, 426)
        off = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--no-page")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen("http://127.0.0.1:%d/" % off.port, timeout=scaled(5))
        self.assertEqual(cm.exception.code, 404)

    def test_the_page_has_an_icon_and_asking_for_it_is_no_404(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        with urllib.request.urlopen("http://127.0.0.1:%d/" % srv.port, timeout=scaled(5)) as r:
            self.assertIn('rel="icon" href="/favicon.ico"', r.read().decode())
        # Browsers ask for /favicon.ico whatever the page says.
        with urllib.request.urlopen("http://127.0.0.1:%d/favicon.ico" % srv.port, timeout=scaled(5)) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "image/svg+xml")
            self.assertTrue(r.read().startswith(b"<svg "))
        self.assertEqual(srv.terminate(), 0)
        err = srv.stderr()
        self.assertNotIn("→ 404", err)
        self.assertNotIn("favicon", err)  # the page's own asset: not an info line per load
        # Without the page there is no icon either.
        off = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--no-page")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen("http://127.0.0.1:%d/favicon.ico" % off.port, timeout=scaled(5))
        self.assertEqual(cm.exception.code, 404)

    @unittest.skipUnless(os.access(CHROMIUM, os.X_OK), "chromium is not installed (%s)" % CHROMIUM)
    def test_headless_chromium_uses_the_page(self):
        echo = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        chat = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--broadcast")
        browser, devtools = start_chromium(self)

        async def go():
            async with websockets.connect(devtools, max_size=None) as ws:
                cdp = Cdp(ws)
                page = await cdp.open_page("http://127.0.0.1:%d/" % echo.port)
                await cdp.wait_for(page, CONNECTED, 10, "the page connecting")
                await cdp.eval(page, type_and_send("封印解除! from chromium"))
                log = await cdp.wait_for(page, "(%s).includes('< 封印解除! from chromium') && (%s)"
                                         % (LOG_TEXT, LOG_TEXT), 10, "the echo")
                self.assertIn("out ", log)
                # The broadcast stream: another client's message shows up in the page, and the
                # page's message reaches the other client.
                room = await cdp.open_page("http://127.0.0.1:%d/" % chat.port)
                await cdp.wait_for(room, CONNECTED, 10, "the chat page connecting")
                async with websockets.connect("ws://127.0.0.1:%d/echo" % chat.port) as other:
                    await other.send("hello from python")
                    await cdp.wait_for(room, "(%s).includes('< hello from python')" % LOG_TEXT, 10,
                                       "the broadcast")
                    await cdp.eval(room, type_and_send("hi from the browser"))
                    self.assertEqual(await other.recv(), "hello from python")
                    self.assertEqual(await other.recv(), "hi from the browser")
        run(go(), 60)
        browser.terminate(signal.SIGTERM, 10)
        self.assertEqual(echo.terminate(), 0)
        self.assertRegex(echo.stderr(), r"ws open 127\.0\.0\.1:\d+ origin 'http://127\.0\.0\.1:%d'" % echo.port)
        self.assertIn("GET / → 200", echo.stderr())


if __name__ == "__main__":
    unittest.main()
