"""Hostile peers against `netlab tcp serve` (issue 13, hostile-peer suite, tcp part).

Each attack asserts what docs/security.md ("tcp serve and tcp dial") promises: the server keeps
serving a normal client during and after it, its memory stays under a stated bound (VmRSS/VmHWM from
/proc), its file descriptors come back to the baseline, and it still exits 0 on SIGTERM. Only
loopback; every loop is bounded in count and time; only processes started here are stopped.
"""
import os
import resource
import socket
import struct
import subprocess
import threading
import time
import unittest

from netlab_e2e import NETLAB, NetlabTestCase, MEM_SLACK, scaled, vm_kib

# Memory bounds: a tcp server idles at ~6 MB; sanitizer builds carry their shadow memory.
RSS_BOUND_KB = (48 << 10) + (MEM_SLACK >> 10)
RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, no TIME_WAIT



def fd_count(pid):
    """The process's open sockets. Other fds are not per connection: each --threads context opens its
    epoll, eventfd and timerfd the first time a connection is placed on it, and keeps them."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except FileNotFoundError:
            pass  # closed meanwhile
    return n


def all_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_for(cond, timeout=10, what="condition"):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def exchange(port, data, expect):
    """A normal client: one request, the whole expected answer back within a deadline."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(expect):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


class HostileTcp(NetlabTestCase):
    def serve(self, *args):
        """A server, its fd baseline (.base), and one normal exchange to prove it works."""
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", *args)
        srv.base = fd_count(srv.pid)
        srv.base_all = all_fds(srv.pid)
        self.normal_client_ok(srv, echo="echo" in args)
        wait_for(lambda: fd_count(srv.pid) <= srv.base, what="the first client's fd released")
        return srv

    def finish_fds(self, srv):
        wait_for(lambda: fd_count(srv.pid) <= srv.base, timeout=15, what="sockets back to the baseline")
        # Plus at most the per-thread contexts' own fds (3 per thread, opened once).
        self.assertLessEqual(all_fds(srv.pid), srv.base_all + 3 * (os.cpu_count() or 1))

    def normal_client_ok(self, srv, echo):
        expect = b"ping" if echo else b"server received: ping"
        self.assertEqual(exchange(srv.port, b"ping", expect), expect)

    def finish(self, srv, what):
        hwm = vm_kib(srv.pid, "VmHWM")
        print("\n  %s: server peak RSS %d KB" % (what, hwm))
        self.assertLess(hwm, RSS_BOUND_KB)
        self.assertEqual(srv.terminate(), 0, srv.stderr()[-2000:])

    def test_idle_connections_dropped_slow_senders_do_not_block_others(self):
        raise_nofile()
        srv = self.serve("--idle-timeout", "1s", "--max-connections", "300")
        base = srv.base
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(10)) for _ in range(200)]
        slow = [socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(10)) for _ in range(20)]
        wait_for(lambda: fd_count(srv.pid) >= base + 220, what="220 connections accepted")
        start = time.monotonic()
        # Slowloris: a byte every 250 ms, never a newline. Each is a (slow) client, answered and kept;
        # the idle ones get closed by --idle-timeout meanwhile, and a normal client is served.
        for _ in range(8):
            for s in slow:
                s.sendall(b"x")
            self.normal_client_ok(srv, echo=False)
            time.sleep(0.25)  # the attack's own pace
        for s in idle:
            s.settimeout(scaled(5))
            self.assertEqual(s.recv(1), b"")  # closed by the server: nothing was sent to it
            s.close()
        self.assertLess(time.monotonic() - start, scaled(8))
        for s in slow:  # answered byte by byte and still open
            s.settimeout(scaled(5))
            self.assertTrue(s.recv(65536).startswith(b"server received: x"))
        wait_for(lambda: fd_count(srv.pid) <= base + 20, what="idle connections' fds released")
        for s in slow:
            s.close()
        self.finish_fds(srv)
        self.assertIn("--idle-timeout", srv.stderr())
        self.finish(srv, "200 idle + 20 slowloris")

    def test_50k_connect_close_churn_fds_back_to_baseline(self):
        srv = self.serve("--mode", "echo", "-q")  # -q: 100k log lines would only time the logger
        base = srv.base
        addr = ("127.0.0.1", srv.port)
        n = 50000
        start = time.monotonic()
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(scaled(5))
            s.connect(addr)
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)  # half of them reset
            if i % 10 == 0:
                s.send(b"x")  # some with data in flight
            s.close()
            if i % 10000 == 9999:
                self.normal_client_ok(srv, echo=True)
        took = time.monotonic() - start
        self.finish_fds(srv)
        print("\n  50k connect/close in %.1f s; server sockets %d -> %d, fds %d -> %d"
              % (took, base, fd_count(srv.pid), srv.base_all, all_fds(srv.pid)))
        self.normal_client_ok(srv, echo=True)
        self.finish(srv, "50k churn")

    def test_client_that_never_reads_is_held_by_backpressure(self):
        for mode in ("echo", "ack"):
            with self.subTest(mode=mode):
                srv = self.serve("--mode", mode)
                hog = socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5))
                hog.setblocking(False)
                block = b"A" * (1 << 20)
                offered, sent, stalled_since = 1 << 30, 0, None
                deadline = time.monotonic() + scaled(30)
                # Offer 1 GB and never read: the server must stop reading once its replies back up,
                # so our sends stall after the socket buffers, with its memory flat.
                while sent < offered and time.monotonic() < deadline:
                    try:
                        sent += hog.send(block)
                        stalled_since = None
                    except BlockingIOError:
                        if stalled_since is None:
                            stalled_since = time.monotonic()
                        elif time.monotonic() - stalled_since > 1.0:
                            break
                        time.sleep(0.01)
                print("\n  %s: 1 GB offered by a client that never reads, %.1f MB taken before it stalled"
                      % (mode, sent / 1e6))
                self.assertLess(sent, 256 << 20)  # held by backpressure, not buffered by the server
                self.normal_client_ok(srv, echo=mode == "echo")
                hog.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
                hog.close()
                self.normal_client_ok(srv, echo=mode == "echo")
                self.finish(srv, "never-reading client (%s)" % mode)

    def test_huge_chunk_without_newline_in_ack_mode(self):
        srv = self.serve("--mode", "ack")
        total = 256 << 20
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(30)) as s:
            got = [0]

            def reader():
                while True:
                    try:
                        chunk = s.recv(1 << 20)
                    except OSError:
                        return
                    if not chunk:
                        return
                    got[0] += len(chunk)

            t = threading.Thread(target=reader, daemon=True)
            t.start()
            block = b"y" * (1 << 20)  # no newline anywhere: one endless "line"
            start = time.monotonic()
            for _ in range(total >> 20):
                s.sendall(block)
            # Every byte comes back inside a reply of at most --max-message (64 KiB) each.
            wait_for(lambda: got[0] >= total, timeout=60, what="replies covering every byte")
            print("\n  256 MB without a newline: %.1f s, %d reply bytes" % (time.monotonic() - start, got[0]))
            s.shutdown(socket.SHUT_RDWR)
        t.join(5)
        self.normal_client_ok(srv, echo=False)
        self.finish(srv, "256 MB line")

    def test_connection_flood_beyond_max_connections(self):
        raise_nofile()
        srv = self.serve("--max-connections", "100", "-q")
        base = srv.base
        flood = []
        try:
            for _ in range(2000):
                flood.append(socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)))
            wait_for(lambda: fd_count(srv.pid) >= base + 100, what="100 connections held")
            peak = fd_count(srv.pid)
            # Beyond the limit a connection is accepted and closed at once: the fds stay bounded.
            self.assertLessEqual(peak, base + 100 + 8)
            refused = 0
            for s in flood[100:]:
                s.settimeout(scaled(5))
                try:
                    refused += s.recv(1) == b""
                except ConnectionResetError:
                    refused += 1
            self.assertEqual(refused, 1900)
            flood[0].sendall(b"held")  # the 100 admitted ones are served
            self.assertEqual(flood[0].recv(64), b"server received: held")
            print("\n  2000 connections against --max-connections 100: server sockets %d -> %d, %d refused"
                  % (base, peak, refused))
        finally:
            for s in flood:
                s.close()
        self.finish_fds(srv)
        self.normal_client_ok(srv, echo=False)
        self.finish(srv, "connection flood")


class HostileServerForTcpDial(NetlabTestCase):
    def test_dial_streams_an_endless_server_without_buffering(self):
        """A server that floods its client: tcp dial prints as it receives (memory flat) and
        --timeout ends it (exit 4)."""
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(scaled(10))
        stop = threading.Event()

        def flood():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            block = b"z" * (1 << 20)
            with conn:
                while not stop.is_set():
                    try:
                        conn.sendall(block)
                    except OSError:
                        return

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        p = subprocess.Popen([NETLAB, "tcp", "dial", "127.0.0.1:%d" % lsock.getsockname()[1], "--timeout", "3s"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        got, peak = 0, 0
        deadline = time.monotonic() + scaled(20)
        try:
            while time.monotonic() < deadline:
                chunk = p.stdout.read1(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
                try:
                    peak = max(peak, vm_kib(p.pid, "VmHWM"))
                except (OSError, AssertionError):
                    pass
            code = p.wait(scaled(10))
        finally:
            stop.set()
            if p.poll() is None:
                p.kill()
                p.wait(5)
            p.stdout.close()
        print("\n  tcp dial against a flooding server: %.0f MB printed in 3 s, peak RSS %d KB" % (got / 1e6, peak))
        self.assertEqual(code, 4)  # --timeout
        self.assertGreater(got, 10 << 20)
        self.assertLess(peak, RSS_BOUND_KB)
        t.join(5)


if __name__ == "__main__":
    unittest.main()
