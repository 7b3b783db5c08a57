"""`netlab udp-file fetch` against hostile servers (issue 13 item 9): small Python UDP servers in a thread
that lie about the size, stream without end, or keep the client talking. The client must stop at the
announced tsize or at --max-size (exit 5, naming the bound), tell the server with an ERROR, keep nothing
that looks complete, and stay small. Loopback only; every loop is bounded in count and time.
"""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from netlab_e2e import EXIT, NETLAB, NetlabTestCase, scaled


def oack(**opts):
    pkt = b"\x00\x06"
    for k, v in opts.items():
        pkt += k.encode() + b"\x00" + str(v).encode() + b"\x00"
    return pkt


def data(block, payload):
    return struct.pack("!HH", 3, block & 0xFFFF) + payload


def error_of(pkt):
    if pkt[:2] != b"\x00\x05":
        return None
    return struct.unpack("!H", pkt[2:4])[0], pkt[4:].split(b"\x00")[0].decode("utf-8", "replace")


class HostileServer:
    """Listens on 127.0.0.1:0; for the first request, `behaviour(transfer_socket, client_address, request)`
    runs in a thread on a new transfer port (TFTP's transfer ID). Records what the client sent back."""

    def __init__(self, testcase, behaviour):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(scaled(10))
        testcase.addCleanup(self.sock.close)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.errors = []      # ERROR packets the client sent: (code, message)
        self.failures = []    # exceptions in the thread
        self.sent = 0         # DATA payload bytes sent
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            req, peer = self.sock.recvfrom(2048)
            t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t.bind(("127.0.0.1", 0))
            t.settimeout(scaled(2))
            try:
                self.behaviour(self, t, peer, req)
            finally:
                t.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(e)

    def wait_ack(self, t, block):
        """Waits for ACK `block` (True), an ERROR (recorded, False), or a timeout (False)."""
        deadline = time.monotonic() + scaled(2)
        while time.monotonic() < deadline:
            try:
                pkt = t.recv(2048)
            except socket.timeout:
                return False
            e = error_of(pkt)
            if e:
                self.errors.append(e)
                return False
            if pkt == struct.pack("!HH", 4, block & 0xFFFF):
                return True
        return False

    def stream_lockstep(self, t, peer, blksize, max_blocks, first_block=1):
        """Full blocks one after another, each after its ACK, until the client stops (or max_blocks)."""
        payload = b"\xab" * blksize
        for n in range(first_block, first_block + max_blocks):
            t.sendto(data(n, payload), peer)
            self.sent += blksize
            if not self.wait_ack(t, n):
                return

    def join(self):
        self.thread.join(scaled(20))


GNU_TIME = "/usr/bin/time"


def run_measured(argv, timeout=60):
    """Runs argv to completion; returns (exit code, stderr text, peak RSS in KiB).

    The peak comes from GNU time (wait4's ru_maxrss of a child it forks itself) when installed: a child
    forked from this Python would carry the test process's own RSS in ru_maxrss (Linux keeps the
    pre-exec high-water mark). Without GNU time, VmHWM of the running netlab is sampled every 5 ms."""
    with tempfile.TemporaryDirectory() as tmp:
        errpath, rsspath = os.path.join(tmp, "err"), os.path.join(tmp, "rss")
        use_time = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-f", "%M", "-o", rsspath] + list(argv) if use_time else list(argv)
        with open(errpath, "wb") as err:
            p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            peak = 0
            deadline = time.monotonic() + scaled(timeout)
            while p.poll() is None:
                if time.monotonic() > deadline:
                    p.kill()
                    p.wait()
                    raise AssertionError("%s did not finish within %ss" % (argv, timeout))
                if not use_time:
                    peak = max(peak, netlab_hwm(p.pid))
                time.sleep(0.005)
        with open(errpath, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        if use_time:
            with open(rsspath) as f:
                peak = int(f.read().split()[-1])
        return p.returncode, text, peak


def netlab_hwm(pid):
    """VmHWM (KiB) of pid once it runs netlab (before its exec it is still a copy of this Python)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmHWM"].split()[0]) if fields.get("Name", "").strip() == "netlab" else 0
    except (OSError, KeyError, ValueError):
        return 0


def run_fetch(port, out, *extra, timeout=60):
    """Runs fetch; returns (exit code, stderr text, peak RSS KiB)."""
    return run_measured([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % port, "f.bin", "-o", out, *extra], timeout)


class HostileTftpServers(NetlabTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="netlab-hostile-fetch-")
        self.out = os.path.join(self.dir, "f.bin")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def assert_nothing_kept(self):
        self.assertEqual(os.listdir(self.dir), [], "a failed fetch must leave neither OUT nor OUT.part")

    def test_more_than_the_announced_tsize_is_refused(self):
        """OACK tsize=1000, then full 512-byte blocks on and on (the old client took 100,000 bytes)."""
        def lie(srv, t, peer, req):
            assert b"tsize" in req, req
            t.sendto(oack(blksize=512, tsize=1000), peer)
            if srv.wait_ack(t, 0):
                srv.stream_lockstep(t, peer, 512, 196)

        srv = HostileServer(self, lie)
        rc, err, _ = run_fetch(srv.port, self.out)
        srv.join()
        self.assertEqual(srv.failures, [])
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("more than the 1000 bytes it announced (tsize)", err)
        self.assertEqual(srv.sent, 1024, "the client must stop at the block that crosses tsize")
        self.assertEqual([c for c, _ in srv.errors], [3], srv.errors)  # told: allocation exceeded
        self.assert_nothing_kept()

    def test_endless_stream_without_tsize_stops_at_max_size(self):
        """No tsize (the server ignores the options: RFC 1350, 512-byte lockstep) and no end: stopped at
        --max-size, with bounded memory; the old client filled the disk (632 MB)."""
        def endless(srv, t, peer, req):
            srv.stream_lockstep(t, peer, 512, 100000)

        srv = HostileServer(self, endless)
        rc, err, rss = run_fetch(srv.port, self.out, "--max-size", "256KiB", "--keep-partial")
        srv.join()
        self.assertEqual(srv.failures, [])
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("more than --max-size 262144 bytes", err)
        self.assertEqual(srv.sent, 256 * 1024 + 512)
        self.assertEqual([c for c, _ in srv.errors], [3], srv.errors)
        # --keep-partial keeps what arrived under OUT.part only, never as OUT: not complete, and never
        # more than the bound.
        self.assertFalse(os.path.exists(self.out))
        self.assertLessEqual(os.path.getsize(self.out + ".part"), 256 * 1024)
        self.assertLess(rss, scaled(40 * 1024))

    def test_endless_large_blocks_without_tsize_bounded_memory(self):
        """OACK without tsize at blksize 65464: 16 MiB --max-size reached in 257 blocks; the client's
        memory stays far below what it received."""
        def endless(srv, t, peer, req):
            t.sendto(oack(blksize=65464), peer)
            if srv.wait_ack(t, 0):
                srv.stream_lockstep(t, peer, 65464, 2000)

        srv = HostileServer(self, endless)
        rc, err, rss = run_fetch(srv.port, self.out, "--max-size", "16MiB")
        srv.join()
        self.assertEqual(srv.failures, [])
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("--max-size", err)
        self.assertLessEqual(srv.sent, 16 * 1024 * 1024 + 65464)
        self.assert_nothing_kept()
        self.assertLess(rss, scaled(40 * 1024))  # sanitizers: 3x

    def test_announced_size_beyond_max_size_is_refused_before_any_data(self):
        def big(srv, t, peer, req):
            t.sendto(oack(tsize=10 << 30), peer)
            try:
                e = error_of(t.recv(2048))
                if e:
                    srv.errors.append(e)
            except socket.timeout:
                pass

        srv = HostileServer(self, big)
        rc, err, _ = run_fetch(srv.port, self.out, "--max-size", "1GiB")
        srv.join()
        self.assertEqual(srv.failures, [])
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("more than --max-size", err)
        self.assertEqual([c for c, _ in srv.errors], [8], srv.errors)  # RFC 2349: option refused
        self.assert_nothing_kept()

    def test_keep_partial_keeps_every_byte_received(self):
        """N full blocks, then an ERROR or silence: OUT.part holds exactly N * blksize bytes, the blocks
        as sent. The old sink closed the file without writing its buffer (up to 2 MiB), so a kept
        OUT.part of a short transfer was empty."""
        blocks, blksize = 100, 1428
        payload = bytes(range(256)) * (blksize // 256) + bytes(blksize % 256)

        def then_error(srv, t, peer, req):
            t.sendto(oack(blksize=blksize), peer)
            if srv.wait_ack(t, 0):
                for n in range(1, blocks + 1):
                    t.sendto(data(n, payload), peer)
                    srv.sent += blksize
                    if not srv.wait_ack(t, n):
                        return
                t.sendto(b"\x00\x05\x00\x00gone\x00", peer)

        def then_silence(srv, t, peer, req):
            t.sendto(oack(blksize=blksize), peer)
            if srv.wait_ack(t, 0):
                srv.stream_lockstep(t, peer, blksize, blocks)
                srv.wait_ack(t, blocks + 1)  # silent, with the port still open, while the client retries

        for behaviour, code, extra in ((then_error, EXIT["protocol"], ()),
                                       (then_silence, EXIT["timeout"], ("--timeout", "50ms", "--retries", "2"))):
            with self.subTest(behaviour=behaviour.__name__):
                srv = HostileServer(self, behaviour)
                rc, err, _ = run_fetch(srv.port, self.out, "--keep-partial", *extra)
                srv.join()
                self.assertEqual(srv.failures, [])
                self.assertEqual(rc, code, err)
                self.assertFalse(os.path.exists(self.out))
                part = self.out + ".part"
                self.assertEqual(os.path.getsize(part), blocks * blksize, err)
                with open(part, "rb") as f:
                    kept = f.read()
                fill = payload if behaviour is then_error else b"\xab" * blksize
                self.assertEqual(kept, fill * blocks)
                self.assertIn("kept in %s.part" % self.out, err)
                os.remove(part)

    def test_honest_server_still_fine_with_max_size(self):
        """A file exactly the announced size, and exactly --max-size, is accepted."""
        payload = os.urandom(512 * 4)  # ends with an empty block

        def honest(srv, t, peer, req):
            t.sendto(oack(blksize=512, tsize=len(payload)), peer)
            if not srv.wait_ack(t, 0):
                return
            blocks = [payload[i:i + 512] for i in range(0, len(payload) + 1, 512)]
            for n, chunk in enumerate(blocks, 1):
                t.sendto(data(n, chunk), peer)
                if not srv.wait_ack(t, n):
                    return

        srv = HostileServer(self, honest)
        rc, err, _ = run_fetch(srv.port, self.out, "--max-size", str(len(payload)))
        srv.join()
        self.assertEqual(rc, 0, err)
        with open(self.out, "rb") as f:
            self.assertEqual(f.read(), payload)


def raw_server(testcase, answer):
    """A hostile raw-mode server: `answer(sock, peer, request)` for every request, in a thread."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(scaled(5))
    testcase.addCleanup(s.close)
    failures = []

    def loop():
        try:
            for _ in range(100):  # bounded
                try:
                    req, peer = s.recvfrom(2048)
                except socket.timeout:
                    return
                if answer(s, peer, req) == "stop":
                    return
        except OSError:
            return
        except Exception as e:  # noqa: BLE001
            failures.append(e)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return s.getsockname()[1], th, failures


class HostileRawServers(NetlabTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="netlab-hostile-raw-")
        self.out = os.path.join(self.dir, "f.bin")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_raw_stream_beyond_the_announced_size_is_refused(self):
        body = os.urandom(1000)
        digest = hashlib.sha256(body).hexdigest()

        def answer(s, peer, req):
            verb, cookie = req.split(b" ")[:2]
            if cookie == b"-":
                s.sendto(b"COOKIE " + b"c" * 32, peer)
            elif verb == b"STAT":
                s.sendto(("OK 1000 %s" % digest).encode(), peer)
            else:
                for _ in range(2000):  # 1 MB for a 1000-byte file
                    s.sendto(os.urandom(512), peer)
                return "stop"

        port, th, failures = raw_server(self, answer)
        rc, err, _ = run_fetch(port, self.out, "--protocol", "raw", "--timeout", "500ms")
        th.join(scaled(10))
        self.assertEqual(failures, [])
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("more than the 1000 bytes it announced", err)
        self.assertEqual(os.listdir(self.dir), [])

    def test_raw_keep_partial_keeps_every_byte_received(self):
        """6 of 11 datagrams, then silence: the damaged transfer keeps exactly the 3,072 bytes that came
        (the old sink dropped its buffer and left an empty OUT.part)."""
        body = os.urandom(512 * 10 + 100)
        digest = hashlib.sha256(body).hexdigest()

        def answer(s, peer, req):
            verb, cookie = req.split(b" ")[:2]
            if cookie == b"-":
                s.sendto(b"COOKIE " + b"c" * 32, peer)
            elif verb == b"STAT":
                s.sendto(("OK %d %s" % (len(body), digest)).encode(), peer)
            else:
                for i in range(6):
                    s.sendto(body[512 * i:512 * (i + 1)], peer)
                return "stop"

        port, th, failures = raw_server(self, answer)
        rc, err, _ = run_fetch(port, self.out, "--protocol", "raw", "--timeout", "500ms", "--idle", "300ms", "--keep-partial")
        th.join(scaled(10))
        self.assertEqual(failures, [])
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("2148 byte(s) missing", err)
        self.assertIn("what arrived is in %s.part" % self.out, err)
        self.assertEqual(os.listdir(self.dir), ["f.bin.part"])
        with open(self.out + ".part", "rb") as f:
            self.assertEqual(f.read(), body[:3072])

    def test_raw_announced_size_beyond_max_size_and_cookie_ping_pong(self):
        def big(s, peer, req):
            verb, cookie = req.split(b" ")[:2]
            s.sendto(b"COOKIE " + b"c" * 32 if cookie == b"-" else b"OK 99999999999 " + b"0" * 64, peer)

        port, th, failures = raw_server(self, big)
        rc, err, _ = run_fetch(port, self.out, "--protocol", "raw", "--timeout", "500ms", "--max-size", "1MiB")
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("more than --max-size", err)

        def never(s, peer, req):  # refuses every cookie: the client gives up instead of looping
            s.sendto(b"COOKIE " + os.urandom(16).hex().encode(), peer)

        port, th2, failures2 = raw_server(self, never)
        rc, err, _ = run_fetch(port, self.out, "--protocol", "raw", "--timeout", "500ms")
        self.assertEqual(rc, EXIT["protocol"], err)
        self.assertIn("keeps refusing its own cookies", err)
        self.assertEqual(failures + failures2, [])
        self.assertEqual(os.listdir(self.dir), [])


class HostileUploadServers(NetlabTestCase):
    """`udp-file put` against servers that answer its WRQ wrongly (issue 16)."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="netlab-hostile-put-")
        self.src = os.path.join(self.dir, "up.bin")
        with open(self.src, "wb") as f:
            f.write(os.urandom(5000))

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def put(self, port, *extra):
        return self.netlab("udp-file", "put", "127.0.0.1:%d" % port, self.src, "--timeout", "50ms", "--retries", "2",
                           *extra, timeout=30)

    def test_oack_granting_more_than_asked_is_refused(self):
        def grant_more(srv, t, peer, req):
            assert req[:2] == b"\x00\x02" and b"tsize\x005000\x00" in req, req  # a WRQ announcing the size
            t.sendto(oack(blksize=99999), peer)
            try:
                e = error_of(t.recv(2048))
                if e:
                    srv.errors.append(e)
            except socket.timeout:
                pass

        srv = HostileServer(self, grant_more)
        r = self.put(srv.port, "--blksize", "1428")
        srv.join()
        self.assertEqual(srv.failures, [])
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        self.assertIn(b"bad OACK", r.stderr)
        self.assertEqual([c for c, _ in srv.errors], [8])  # told with ERROR 8 (RFC 2347)

    def test_acks_for_blocks_never_sent_and_data_instead_of_ack_are_ignored(self):
        """ACK 0, then ACKs from the future and a DATA: none of them moves the upload on; a silent server
        after that is a timeout (exit 4), never a success."""
        def confuse(srv, t, peer, req):
            t.sendto(struct.pack("!HH", 4, 0), peer)        # plain ACK 0: RFC 1350, 512-byte blocks
            first = t.recv(2048)
            assert first[:4] == struct.pack("!HH", 3, 1), first[:4]
            for bogus in (struct.pack("!HH", 4, 9), struct.pack("!HH", 4, 40000), data(1, b"x" * 10)):
                t.sendto(bogus, peer)
            deadline = time.monotonic() + scaled(5)
            while time.monotonic() < deadline:  # record what the client sends until it gives up
                try:
                    pkt = t.recv(2048)
                except socket.timeout:
                    return
                e = error_of(pkt)
                if e:
                    srv.errors.append(e)
                    return
                assert pkt[:4] == struct.pack("!HH", 3, 1), pkt[:4]  # only block 1, again and again

        srv = HostileServer(self, confuse)
        r = self.put(srv.port)
        srv.join()
        self.assertEqual(srv.failures, [])
        self.assertEqual(r.returncode, EXIT["timeout"], r.stderr)
        self.assertEqual([c for c, _ in srv.errors], [0])  # "timed out"


if __name__ == "__main__":
    unittest.main()
