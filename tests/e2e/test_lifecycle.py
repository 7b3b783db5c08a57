"""Every server's stop path and idle cost, the same for all (core::lifecycle, core::runtime).

- A second SIGINT during a graceful stop ends the process within STOP_BOUND, exit 0, for every
  server that can be caught mid-stop (tcp: a reply the client does not read; ws-echo: a client
  that never answers the 1001; udp-file: a transfer whose client never ACKs). Before issue 14 the
  second Ctrl-C took 0.1 s for tcp, ~1.6 s for ws-echo (its signals were released), and for
  udp-file the full --grace.
- An idle server makes no wake-ups: the context switches of all its threads over a few seconds
  stay near 0 (tcp serve --threads 4 made ~290 a second before).
"""
import base64
import glob
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
import unittest

from netlab_e2e import NetlabTestCase, scaled

STOP_BOUND = 0.5   # seconds from the second signal to the exit
IDLE_SECONDS = 3.0
IDLE_MAX_SWITCHES = 15  # over IDLE_SECONDS, all threads together (a few for the log flush, etc.)


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread of pid."""
    total = 0
    for status in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:  # a thread that just ended
            pass
    return total


class LifecycleCase(NetlabTestCase):
    def tmpdir(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def await_stderr(self, proc, text, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if text in proc.stderr():
                return
            self.assertIsNone(proc.p.poll(), "exited before %r; stderr %r" % (text, proc.stderr()))
            time.sleep(0.01)
        self.fail("no %r in stderr within %ss: %r" % (text, timeout, proc.stderr()))

    def second_signal_is_immediate(self, srv):
        """srv holds a session that will not finish its graceful close: SIGINT, wait until the
        stop began, check it is still stopping, SIGINT again: exit 0 within STOP_BOUND."""
        srv.p.send_signal(signal.SIGINT)
        self.await_stderr(srv, "stopping:")
        time.sleep(0.1)  # not synchronisation: proves the graceful stop is still waiting
        self.assertIsNone(srv.p.poll(), "the graceful stop did not wait for the session: %r" % srv.stderr())
        t0 = time.monotonic()
        srv.p.send_signal(signal.SIGINT)
        rc = srv.wait(5)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, srv.stderr())
        self.assertLess(took, scaled(STOP_BOUND), "second SIGINT took %.2fs; stderr %r" % (took, srv.stderr()))

    def assert_idle(self, srv):
        time.sleep(0.5)  # let start-up settle (log flush, thread start): not synchronisation
        before = context_switches(srv.pid)
        time.sleep(IDLE_SECONDS)
        switches = context_switches(srv.pid) - before
        self.assertLessEqual(switches, IDLE_MAX_SWITCHES,
                             "idle server woke up %d times in %.0fs" % (switches, IDLE_SECONDS))
        self.assertEqual(srv.terminate(signal.SIGTERM), 0, srv.stderr())


class SecondSignal(LifecycleCase):
    def test_tcp(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo", "--threads", "2")
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            # Echoed bytes the client never reads: the reply stays pending, the stop must wait. Send
            # until the client's sends stay blocked for a while: the server has stopped reading, which
            # it does only while an echo write of its own is pending. (Stopping at the first EAGAIN
            # was a flake: the server could still have written everything it had read.)
            c.setblocking(False)
            sent, chunk, blocked_since = 0, b"x" * 65536, None
            deadline = time.monotonic() + scaled(10)
            while sent < 256 << 20 and time.monotonic() < deadline:
                try:
                    sent += c.send(chunk)
                    blocked_since = None
                except BlockingIOError:
                    now = time.monotonic()
                    blocked_since = blocked_since or now
                    if now - blocked_since > 0.5:
                        break
                    time.sleep(0.01)
            self.assertIsNotNone(blocked_since, "the server read %d B without ever pushing back" % sent)
            self.second_signal_is_immediate(srv)
        finally:
            c.close()

    def test_ws_echo(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--threads", "2")
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5))
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            c.sendall(("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                self.assertTrue(chunk, "closed during the handshake")
                head += chunk
            self.assertIn(b" 101 ", head.split(b"\r\n", 1)[0])
            # The client never answers the server's 1001: the close handshake stays open.
            self.second_signal_is_immediate(srv)
        finally:
            c.close()

    def test_udp_file(self):
        root = self.tmpdir()
        with open(os.path.join(root, "f.bin"), "wb") as f:
            f.write(os.urandom(64 * 1024))
        srv = self.server("udp-file", "serve", "--listen", "127.0.0.1:0", "--root", root)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(scaled(5))
            s.sendto(b"\x00\x01f.bin\x00octet\x00", ("127.0.0.1", srv.port))
            data, _ = s.recvfrom(2048)
            self.assertEqual(struct.unpack("!H", data[:2])[0], 3)  # DATA 1, never ACKed
            self.second_signal_is_immediate(srv)
        finally:
            s.close()

    def test_udp_and_raw_stop_at_the_first_signal(self):
        # No sessions: the first signal ends them; a second finds nothing to do.
        root = self.tmpdir()
        for args in (["udp", "serve", "--listen", "127.0.0.1:0"],
                     ["udp-file", "serve", "--protocol", "raw", "--listen", "127.0.0.1:0", "--root", root]):
            srv = self.server(*args)
            t0 = time.monotonic()
            srv.p.send_signal(signal.SIGINT)
            self.assertEqual(srv.wait(5), 0, srv.stderr())
            self.assertLess(time.monotonic() - t0, scaled(STOP_BOUND), srv.stderr())


class Idle(LifecycleCase):
    def test_tcp_threads_4(self):
        self.assert_idle(self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--threads", "4"))

    def test_tcp_threads_4_after_load(self):
        # After connections came and went, the helper threads go back to sleep.
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo", "--threads", "4")
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) for _ in range(40)]
        for s in socks:
            s.sendall(b"ping\n")
        for s in socks:
            self.assertEqual(s.recv(16), b"ping\n")
            s.close()
        self.assert_idle(srv)

    def test_ws_echo_threads_4(self):
        self.assert_idle(self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", "--threads", "4"))

    def test_udp(self):
        self.assert_idle(self.server("udp", "serve", "--listen", "127.0.0.1:0", "--threads", "4"))

    def test_udp_file(self):
        self.assert_idle(self.server("udp-file", "serve", "--listen", "127.0.0.1:0", "--root", self.tmpdir()))


if __name__ == "__main__":
    unittest.main()
