"""End-to-end tests of `netlab tcp serve` and `netlab tcp dial` (issue 2).

Real binary on 127.0.0.1:0 / [::1]:0; peers: netlab's own client, socat, OpenBSD nc, and short
Python socket clients and servers. Every wait is bounded; only processes started here are stopped.
"""
import json
import os
import shutil
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from netlab_e2e import EXIT, NETLAB, NetlabTestCase, cpu_seconds, have_ipv6, scaled

LESSON_REPLY = "伺服器端回傳伺服器端已接收到 {msg}"
LESSON_MSG = "封印解除!"
LESSON_EXPECTED = "伺服器端回傳伺服器端已接收到 封印解除!".encode("utf-8")


def recv_all(sock, timeout=5.0):
    """Everything until the peer closes (bounded)."""
    sock.settimeout(scaled(timeout))
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def recv_exactly(sock, n, timeout=5.0):
    sock.settimeout(scaled(timeout))
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def exchange(port, data, host="127.0.0.1", timeout=5.0):
    """Connects, sends data, half-closes, returns everything until the server closes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(scaled(timeout))
        s.connect((host, port))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s, timeout)


def wait_for(predicate, timeout=10.0, what="condition"):
    """Polls predicate until it holds (bounded); for log lines written by another process."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class PyServer:
    """A tiny third-party TCP server on 127.0.0.1:0 in a thread: `respond(conn)` per connection."""

    def __init__(self, respond):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(scaled(10))
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.thread = threading.Thread(target=self._run, args=(respond,), daemon=True)
        self.thread.start()

    def _run(self, respond):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(scaled(10))
            try:
                respond(self, conn)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.thread.join(scaled(10))


class TcpServeTest(NetlabTestCase):
    # ---- ack mode ----------------------------------------------------------------------------

    def test_classic_lesson_with_netlab_client(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", LESSON_REPLY, "--once")
        r = self.netlab("tcp", "dial", "127.0.0.1:%d" % srv.port, "-m", LESSON_MSG)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, LESSON_EXPECTED)  # byte for byte: no NUL, no padding, no newline
        self.assertIn(b"peer closed", r.stderr)  # --once: the server closed after its reply
        self.assertEqual(srv.terminate(), 0)

    def test_classic_lesson_with_python_client(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", LESSON_REPLY, "--once")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as s:
            s.sendall(LESSON_MSG.encode("utf-8"))
            # No half-close: --once alone makes the server close after the reply.
            self.assertEqual(recv_all(s), LESSON_EXPECTED)
        self.assertEqual(srv.terminate(), 0)
        self.assertIn("closed after the reply (--once)", srv.stderr())

    def test_ack_default_template_peer_and_each_chunk(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as s:
            s.sendall(b"one")
            self.assertEqual(recv_exactly(s, len(b"server received: one")), b"server received: one")
            s.sendall(b"two")  # without --once the connection stays open: one reply per chunk
            self.assertEqual(recv_exactly(s, len(b"server received: two")), b"server received: two")
        srv2 = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", "{peer} said {msg} {x} %s")
        with socket.create_connection(("127.0.0.1", srv2.port), timeout=scaled(5)) as s:
            me = "%s:%d" % s.getsockname()[:2]
            s.sendall(b"hi")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), ("%s said hi {x} %%s" % me).encode())

    def test_ack_max_message_splits_chunks(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", "[{msg}]", "--max-message", "4")
        out = exchange(srv.port, b"abcdefghij")
        # At most 4 bytes per read, each read answered: the bytes arrive bracketed in order.
        self.assertEqual(out.replace(b"][", b"").strip(b"[]"), b"abcdefghij")
        self.assertTrue(all(len(part) <= 4 for part in out.strip(b"[]").split(b"][")), out)

    def test_ack_with_socat_and_nc(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", LESSON_REPLY)
        socat = subprocess.run(["socat", "-t", "5", "-", "TCP:127.0.0.1:%d" % srv.port],
                               input=LESSON_MSG.encode(), capture_output=True, timeout=scaled(10))
        self.assertEqual(socat.returncode, 0, socat.stderr)
        self.assertEqual(socat.stdout, LESSON_EXPECTED)
        nc = subprocess.run(["nc", "-N", "127.0.0.1", str(srv.port)], input=b"ping",
                            capture_output=True, timeout=scaled(10))
        self.assertEqual(nc.stdout, "伺服器端回傳伺服器端已接收到 ping".encode())

    def test_stdin_is_sent_when_not_a_terminal(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--once")
        r = self.netlab("tcp", "dial", "127.0.0.1:%d" % srv.port, input=b"x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"server received: x")

    # ---- echo and discard --------------------------------------------------------------------

    def test_echo_with_netlab_socat_nc_and_python(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        data = os.urandom(300_000)
        r = self.netlab("tcp", "dial", "127.0.0.1:%d" % srv.port, "--half-close", "--idle", "0", input=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, data)
        socat = subprocess.run(["socat", "-t", "5", "-", "TCP:127.0.0.1:%d,nodelay" % srv.port], input=data,
                               capture_output=True, timeout=scaled(10))
        self.assertEqual(socat.stdout, data)
        nc = subprocess.run(["nc", "-N", "127.0.0.1", str(srv.port)], input=data[:5000], capture_output=True,
                            timeout=scaled(10))
        self.assertEqual(nc.stdout, data[:5000])
        self.assertEqual(exchange(srv.port, b"\x00\xffbinary\r\n"), b"\x00\xffbinary\r\n")
        # Several -m messages go out in order, -e decodes escapes.
        r = self.netlab("tcp", "dial", "127.0.0.1:%d" % srv.port, "-e", "-m", "a\\x00", "-m", "b\\r\\n",
                        "--half-close")
        self.assertEqual(r.stdout, b"a\x00b\r\n")
        self.assertEqual(srv.terminate(), 0)

    def test_echo_bulk_ping_pong_and_final_bytes(self):
        # Reads of 8 KiB and more switch a connection to splice(2): exercise that path with one
        # message in flight at a time, sizes around the 64 KiB splice chunk, bytes that arrive with
        # the peer's FIN, and load mode's byte-exact check.
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as s:
            def send_from_a_thread(data, then_shutdown=False):
                # A large message is echoed while it is still being sent: read concurrently.
                def go():
                    s.sendall(data)
                    if then_shutdown:
                        s.shutdown(socket.SHUT_WR)
                t = threading.Thread(target=go, daemon=True)
                t.start()
                return t
            for i, size in enumerate([16384] * 50 + [8192, 65535, 65536, 65537, 200_000, 1, 16384] * 4):
                data = os.urandom(size)
                t = send_from_a_thread(data)
                self.assertEqual(recv_exactly(s, size), data, "message %d (%d B)" % (i, size))
                t.join(scaled(5))
            tail = os.urandom(100_000)
            t = send_from_a_thread(tail, then_shutdown=True)
            self.assertEqual(recv_all(s), tail)  # everything read before the FIN is echoed, then EOF
            t.join(scaled(5))
        r = self.netlab("--json", "tcp", "dial", "127.0.0.1:%d" % srv.port, "--connections", "4", "--count", "400",
                        "--size", "16K", "--pipeline", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)
        self.assertEqual((rep["messages"], rep["errors"], rep["connect_errors"]), (400, 0, 0))
        self.assertEqual(srv.terminate(), 0)

    def test_echo_messages_around_the_read_head_and_bytes_with_the_fin(self):
        # A connection reads into a 512-byte head first and the rest at once (under 8 KiB: no splice).
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as s:
            for size in (1, 511, 512, 513, 1024, 4000, 8191, 64):
                data = os.urandom(size)
                s.sendall(data)
                self.assertEqual(recv_exactly(s, size), data, "%d B" % size)
        for size in (100, 512, 3000):  # bytes and FIN together: all echoed, then EOF
            with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as s:
                data = os.urandom(size)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_all(s), data, "%d B then FIN" % size)
        self.assertEqual(srv.terminate(), 0)

    def test_discard(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "discard")
        self.assertEqual(exchange(srv.port, os.urandom(1_000_000)), b"")
        r = self.netlab("tcp", "dial", "127.0.0.1:%d" % srv.port, "--half-close", input=b"dropped")
        self.assertEqual((r.returncode, r.stdout), (0, b""), r.stderr)
        self.assertEqual(srv.terminate(), 0)
        self.assertIn("in 1000000 B, out 0 B", srv.stderr())

    @unittest.skipUnless(have_ipv6(), "no IPv6 on this machine")
    def test_ipv6_loopback(self):
        srv = self.server("tcp", "serve", "--listen", "[::1]:0", "--mode", "echo")
        self.assertEqual(srv.host, "::1")
        self.assertEqual(exchange(srv.port, b"six", host="::1"), b"six")
        r = self.netlab("tcp", "dial", "[::1]:%d" % srv.port, "-m", "v6", "--half-close")
        self.assertEqual((r.returncode, r.stdout), (0, b"v6"), r.stderr)

    def test_busy_poll_serves_one_and_two_connections_and_costs_nothing_idle(self):
        # --busy-poll keeps the thread polling after a lone connection's message; it must not
        # change what is echoed, must stop polling when the budget runs out (idle CPU stays ~0)
        # and must not hold up SIGTERM.
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo", "--busy-poll", "10000",
                          "--threads", "2")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as a:
            for i in range(50):
                a.sendall(b"one-%d" % i)
                self.assertEqual(recv_exactly(a, len(b"one-%d" % i)), b"one-%d" % i)
            with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as b:
                for i in range(50):  # two connections: no polling, both threads may serve
                    a.sendall(b"a%d" % i)
                    b.sendall(b"b%d" % i)
                    self.assertEqual(recv_exactly(a, len(b"a%d" % i)), b"a%d" % i)
                    self.assertEqual(recv_exactly(b, len(b"b%d" % i)), b"b%d" % i)
            time.sleep(0.3)  # the other thread leaves within 10 ms; the first polls again
            for _ in range(5):
                a.sendall(b"alone again")
                self.assertEqual(recv_exactly(a, 11), b"alone again")
            time.sleep(0.2)  # the 10 ms budget is long over
            before = cpu_seconds(srv.p.pid)
            time.sleep(1.0)
            self.assertLess(cpu_seconds(srv.p.pid) - before, 0.2, "the server kept polling while idle")
            start = time.monotonic()
            self.assertEqual(srv.terminate(signal.SIGTERM), 0)
            self.assertLess(time.monotonic() - start, scaled(3))

    # ---- many clients and misbehaving clients -------------------------------------------------

    def test_100_concurrent_clients(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", "ok {msg}", "--threads", "2")
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(10)) for _ in range(100)]
        try:
            for i, s in enumerate(socks):  # all 100 are open at once before anyone is answered
                s.sendall(("client-%d" % i).encode())
            for i, s in enumerate(socks):
                want = ("ok client-%d" % i).encode()
                self.assertEqual(recv_exactly(s, len(want)), want)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(srv.terminate(), 0)
        self.assertEqual(srv.stderr().count(" open "), 100)

    def test_idle_client_is_closed_and_others_are_served(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--idle-timeout", "300ms")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as silent:
            start = time.monotonic()
            self.assertEqual(recv_all(silent), b"")  # closed by the server, nothing sent
            self.assertGreaterEqual(time.monotonic() - start, 0.25)
        self.assertEqual(exchange(srv.port, b"still here"), b"server received: still here")
        self.assertIn("--idle-timeout", srv.stderr())

    def test_client_vanishing_mid_reply_costs_only_its_connection(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        rude = socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5))
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        rude.settimeout(0.2)
        sent = 0
        try:  # never read: the server's echo backs up until our sends block
            while sent < 64 << 20:
                sent += rude.send(b"x" * 65536)
        except (socket.timeout, BlockingIOError):
            pass
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        rude.close()  # RST while the server is writing
        self.assertEqual(exchange(srv.port, b"next"), b"next")
        wait_for(lambda: "reset by peer" in srv.stderr() or "Broken pipe" in srv.stderr(), what="reset logged")
        self.assertEqual(srv.terminate(), 0)

    def test_max_connections_refuses_beyond_the_limit(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--max-connections", "1")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as first:
            wait_for(lambda: "open 127.0.0.1" in srv.stderr(), what="first connection")
            with socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(5)) as second:
                self.assertEqual(recv_all(second), b"")  # accepted and closed at once
            first.sendall(b"a")
            self.assertEqual(recv_exactly(first, 18), b"server received: a")
        self.assertIn("--max-connections", srv.stderr())

    # ---- lifecycle -----------------------------------------------------------------------------

    def test_json_readiness_line(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0")
        ready = json.loads(srv.lines[0])
        self.assertEqual(ready, {"event": "listening", "proto": "tcp", "address": "127.0.0.1", "port": srv.port})
        self.assertGreater(srv.port, 0)
        text = self.spawn([NETLAB, "tcp", "serve", "--listen", "127.0.0.1:0"])
        line = text.await_line(lambda l: l.startswith(b"listening tcp 127.0.0.1:"))
        self.assertGreater(int(line.rsplit(b":", 1)[1]), 0)
        self.assertEqual(text.terminate(signal.SIGINT), 0)

    def test_listen_on_port_in_use(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            r = self.netlab("tcp", "serve", "--listen", "127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, EXIT["network"])
        err = r.stderr.decode()
        self.assertEqual(err.count("\n"), 1, err)  # one line
        self.assertIn("netlab: tcp serve: bind 127.0.0.1:%d: Address already in use" % port, err)

    def test_sigterm_to_busy_server_exits_0(self):
        # Two io threads: the stop must end run() on both (a stop racing the signal re-arm once hung).
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo", "--threads", "2")
        load = self.spawn([NETLAB, "tcp", "dial", "127.0.0.1:%d" % srv.port, "--connections", "8",
                           "--duration", "30s", "--size", "4K"])
        wait_for(lambda: "load running" in load.stderr(), what="load to start")
        wait_for(lambda: srv.stderr().count(" open ") == 8, what="8 connections")
        start = time.monotonic()
        self.assertEqual(srv.terminate(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - start, scaled(3))
        self.assertIn("stopping: 8 connection(s) open", srv.stderr())
        # The load client sees its server go away: a report, then exit 3 (network), promptly.
        self.assertEqual(load.wait(10), EXIT["network"], load.stderr())
        self.assertIn(b"tcp load:", load.stdout_rest())


class TcpDialTest(NetlabTestCase):
    def test_http_style_request_to_a_python_server(self):
        response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + bytes(range(256)) * 40

        def http(server, conn):
            req = b""
            while b"\r\n\r\n" not in req:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                req += chunk
            server.received.append(req)
            conn.sendall(response)  # then close, as an HTTP/1.0 server does

        peer = PyServer(http)
        try:
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % peer.port, "-e", "-m", "GET / HTTP/1.0\\r\\n\\r\\n")
        finally:
            peer.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(peer.received, [b"GET / HTTP/1.0\r\n\r\n"])
        self.assertEqual(r.stdout, response)

    def test_json_events(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--once", "--reply", LESSON_REPLY)
        r = self.netlab("--json", "tcp", "dial", "127.0.0.1:%d" % srv.port, "-m", LESSON_MSG)
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(events[0]["event"], "connected")
        self.assertEqual(events[0]["peer"], "127.0.0.1:%d" % srv.port)
        data = [e for e in events if e["event"] == "data"]
        self.assertEqual("".join(e["text"] for e in data).encode(), LESSON_EXPECTED)
        self.assertEqual(sum(e["bytes"] for e in data), len(LESSON_EXPECTED))
        self.assertEqual(events[-1]["event"], "closed")
        self.assertEqual(events[-1]["reason"], "peer closed")
        self.assertEqual(events[-1]["bytes_out"], len(LESSON_MSG.encode()))
        self.assertEqual(events[-1]["bytes_in"], len(LESSON_EXPECTED))
        self.assertEqual(events[-1]["by"], "peer")
        self.assertEqual(events[-1]["exit"], 0)

    def test_refused_port_exits_3(self):
        with socket.socket() as s:  # bound, not listening: connections to it are refused
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % port, "-m", "x")
        self.assertEqual(r.returncode, EXIT["network"])
        self.assertIn(b"netlab: tcp dial: connect 127.0.0.1:%d: Connection refused (" % port, r.stderr)

    def test_silent_server_timeout_exits_4_and_idle_exits_0(self):
        with socket.socket() as s:  # the kernel accepts; nobody ever answers
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            port = s.getsockname()[1]
            start = time.monotonic()
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % port, "-m", "hello?", "--timeout", "700ms")
            took = time.monotonic() - start
            self.assertEqual(r.returncode, EXIT["timeout"], r.stderr)
            self.assertGreaterEqual(took, 0.6)
            self.assertLess(took, scaled(5))
            self.assertIn(b"--timeout", r.stderr)
            # --idle counts from the first reply: none at all is a timeout, not a quiet success.
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % port, "-m", "hello?", "--idle", "300ms", "--timeout", "1s")
            self.assertEqual((r.returncode, r.stdout), (EXIT["timeout"], b""), r.stderr)
            self.assertIn(b"no reply from", r.stderr)
        # One reply, then silence: --idle ends it with exit 0.
        peer = PyServer(lambda server, conn: (conn.recv(100), conn.sendall(b"hi\n"), conn.recv(100)))
        try:
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % peer.port, "-m", "hello?", "--idle", "300ms")
        finally:
            peer.close()
        self.assertEqual((r.returncode, r.stdout), (0, b"hi\n"), r.stderr)
        self.assertIn(b"idle for 300ms", r.stderr)

    def test_sigint_interrupts_dial_with_130(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            p = self.spawn([NETLAB, "--json", "tcp", "dial", "127.0.0.1:%d" % s.getsockname()[1], "-m", "x",
                            "--idle", "0"])
            p.await_json("connected")
            self.assertEqual(p.terminate(signal.SIGINT), EXIT["interrupted"])

    def test_bad_flags_exit_2(self):
        for args in (["tcp", "dial", "127.0.0.1"], ["tcp", "dial", "127.0.0.1:1", "--count", "5", "--duration", "1s"],
                     ["tcp", "serve", "--mode", "chargen"], ["tcp", "serve", "--listen", "127.0.0.1:99999"],
                     ["tcp", "serve", "--busy-poll", "10001"], ["tcp", "serve", "--busy-poll", "-1"]):
            r = self.netlab(*args)
            self.assertEqual(r.returncode, EXIT["usage"], args)
            self.assertTrue(r.stderr.startswith(b"netlab: tcp "), r.stderr)


class TcpLoadTest(NetlabTestCase):
    def test_load_against_echo_server_json_report(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        r = self.netlab("--json", "tcp", "dial", "127.0.0.1:%d" % srv.port, "--connections", "10", "--count", "500",
                        "--size", "1K", "--pipeline", "2", "--threads", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, lines)
        rep = json.loads(lines[0])
        self.assertEqual(rep["event"], "load")
        self.assertEqual(rep["proto"], "tcp")
        self.assertEqual((rep["connections"], rep["size"], rep["pipeline"]), (10, 1024, 2))
        self.assertEqual(rep["messages"], 500)
        self.assertEqual(rep["bytes"], 500 * 1024)
        self.assertEqual((rep["errors"], rep["connect_errors"]), (0, 0))
        self.assertGreater(rep["msgs_per_s"], 0)
        self.assertGreater(rep["mb_per_s"], 0)
        lat = rep["latency_us"]
        self.assertLessEqual(lat["min"], lat["p50"])
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p99_9"])
        self.assertLessEqual(lat["p99_9"], lat["max"])
        self.assertGreater(lat["p50"], 0)
        # Text report and duration mode.
        r = self.netlab("tcp", "dial", "127.0.0.1:%d" % srv.port, "--connections", "3", "--duration", "300ms")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r"tcp load: \d+ msgs of 64 B over 3 connection\(s\)")
        self.assertIn("errors 0", r.stdout.decode())

    def test_load_against_a_non_echo_server_counts_errors(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0")  # ack: answers, but not an echo
        r = self.netlab("--json", "tcp", "dial", "127.0.0.1:%d" % srv.port, "--connections", "2", "--count", "10",
                        "--size", "100")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        events = [json.loads(l) for l in r.stdout.splitlines()]
        rep = [e for e in events if e["event"] == "load"][-1]
        self.assertEqual(rep["errors"], 2)
        self.assertEqual(events[-1]["event"], "error")  # a failed run's last line (docs/cli.md)
        self.assertIn(b"is it an echo server?", r.stderr)

    def test_load_interrupted_reports_and_exits_130(self):
        # -v: the server logs each message, so the test interrupts only after echoes have flowed
        # ("load running" alone raced the first exchange under ASan in CI: 0 messages reported).
        srv = self.server("-v", "tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        load = self.spawn([NETLAB, "--json", "tcp", "dial", "127.0.0.1:%d" % srv.port, "--connections", "2",
                           "--duration", "30s"])
        wait_for(lambda: "load running" in load.stderr(), what="load to start")
        wait_for(lambda: srv.stderr().count(" sent 64 B") >= 20, what="echoes to flow")
        self.assertEqual(load.terminate(signal.SIGINT), EXIT["interrupted"])
        rep = load.await_json("load")
        self.assertGreater(rep["messages"], 0)
        self.assertEqual(rep["errors"], 0)

    def test_load_refused_exits_3(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % s.getsockname()[1], "--connections", "3", "--count", "3")
        self.assertEqual(r.returncode, EXIT["network"])
        self.assertIn(b"Connection refused", r.stderr)


    def test_counts_over_int64_are_usage_errors(self):
        # 2^63 used to pass the check and wrap to a negative budget: 0 messages, exit 0.
        for args in (["--count", "9223372036854775808"], ["--count", "1", "--size", "9223372036854775808"],
                     ["--count", "18446744073709551616"]):
            r = self.netlab("tcp", "dial", "127.0.0.1:9", *args)
            self.assertEqual(r.returncode, EXIT["usage"], (args, r.stderr))
            self.assertIn(b"too large", r.stderr)
        r = self.netlab("tcp", "serve", "--max-connections", "9223372036854775808")
        self.assertEqual(r.returncode, EXIT["usage"], r.stderr)


if __name__ == "__main__":
    unittest.main()


class TcpDialContract(NetlabTestCase):
    """Issue 15/16: the first reply is awaited before --idle counts; a terminal is interactive; JSON
    events follow the vocabulary; servers report connections only with --json."""

    def test_reply_after_3s_is_printed(self):
        def slow(server, conn):
            req = b""
            while b"\r\n\r\n" not in req:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                req += chunk
            time.sleep(3)  # the slow server under test: it answers after 3 s
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nlate")
            conn.recv(100)  # keeps the connection open until the client leaves

        peer = PyServer(slow)
        try:
            start = time.monotonic()
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % peer.port, "-e", "-m", "GET / HTTP/1.0\\r\\n\\r\\n")
            took = time.monotonic() - start
        finally:
            peer.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"HTTP/1.0 200 OK\r\n\r\nlate")
        self.assertGreaterEqual(took, 3.0)
        self.assertIn(b"idle for 2s", r.stderr)  # --idle (2 s) counted from the reply, not from the send

    def test_no_reply_at_all_is_exit_4_without_timeout(self):
        with socket.socket() as s:  # accepted by the kernel, never answered
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            start = time.monotonic()
            r = self.netlab("tcp", "dial", "127.0.0.1:%d" % s.getsockname()[1], "-m", "anyone?", timeout=40)
            took = time.monotonic() - start
        self.assertEqual(r.returncode, EXIT["timeout"], r.stderr)
        self.assertGreaterEqual(took, 9.5)  # the documented 10 s first-reply wait
        self.assertRegex(r.stderr.decode(), r"netlab: tcp dial: no reply from 127\.0\.0\.1:\d+ within 10s .*\(.+\)")

    def test_server_events_only_with_json(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        self.assertEqual(exchange(srv.port, b"one"), b"one")
        self.assertEqual(exchange(srv.port, b"two!"), b"two!")
        connection = srv.await_json("connection")
        self.assertEqual((connection["proto"], connection["id"]), ("tcp", 1))
        closed = srv.await_json("closed")
        self.assertEqual((closed["id"], closed["bytes_in"], closed["bytes_out"], closed["by"]), (1, 3, 3, "peer"))
        self.assertEqual(closed["peer"], connection["peer"])
        self.assertEqual(srv.await_json("connection")["id"], 2)
        self.assertEqual(srv.terminate(), 0)
        # Text mode: stdout stays the readiness line only.
        text = self.spawn([NETLAB, "tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo"])
        line = text.readline(10)
        port = int(line.rsplit(b":", 1)[1])
        self.assertEqual(exchange(port, b"x"), b"x")
        self.assertEqual(text.terminate(), 0)
        self.assertEqual(text.stdout_rest(), b"")

    def test_terminal_is_interactive_like_ncat(self):
        if not shutil.which("tmux"):
            self.fail("tmux is needed (scripts/deps.sh installs it)")
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--reply", "got {msg}")
        sock = "netlab-e2e-%d" % os.getpid()
        tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
        cmd = "%s tcp dial 127.0.0.1:%d; echo EXIT=$?; sleep 60" % (NETLAB, srv.port)
        subprocess.run(tmux + ["new-session", "-d", "-x", "120", "-y", "30", cmd], check=True, timeout=scaled(10))
        self.addCleanup(subprocess.run, tmux + ["kill-server"], timeout=scaled(10))

        def pane():
            return subprocess.run(tmux + ["capture-pane", "-p", "-J"], capture_output=True,
                                  timeout=scaled(10)).stdout.decode()

        def wait_pane(text):
            deadline = time.monotonic() + scaled(10)
            while time.monotonic() < deadline:
                if text in pane():
                    return
                time.sleep(0.1)  # polling a terminal's screen: there is no event to wait on
            self.fail("%r never appeared; pane:\n%s" % (text, pane()))

        wait_pane("interactive")  # the log line: connected and reading the terminal
        subprocess.run(tmux + ["send-keys", "hello", "Enter"], check=True, timeout=scaled(10))
        wait_pane("got hello")
        subprocess.run(tmux + ["send-keys", "second line", "Enter"], check=True, timeout=scaled(10))
        wait_pane("got second line")
        subprocess.run(tmux + ["send-keys", "C-d"], check=True, timeout=scaled(10))  # end of input
        wait_pane("EXIT=0")
        self.assertNotIn("command not found", pane())  # nothing typed leaked to the shell
        self.assertEqual(srv.terminate(), 0)


class TcpServeUnreadStdout(NetlabTestCase):
    def test_unread_json_stdout_never_stalls_the_server(self):
        # A script reads the readiness line and nothing more (the harness's Proc reads all stdout,
        # so this server is started by hand): 2,000 connections' events (~300 KB) overflow the
        # 64 KiB pipe. The server drops events rather than stop serving.
        err = tempfile.TemporaryFile()
        self.addCleanup(err.close)
        p = subprocess.Popen([NETLAB, "--json", "tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        self.addCleanup(p.stdout.close)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait(5)))
        port = json.loads(p.stdout.readline())["port"]
        for i in range(2000):
            with socket.socket() as s:
                s.settimeout(scaled(5))
                s.connect(("127.0.0.1", port))
                s.sendall(b"%d" % i)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_all(s), b"%d" % i)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(scaled(10)), 0)
        err.seek(0)
        self.assertIn("dropping --json", err.read().decode("utf-8", "replace"))
