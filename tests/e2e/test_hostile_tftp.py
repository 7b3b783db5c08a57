"""Hostile peers against `netlab udp-file serve` (TFTP), issue 13 items 4, 6, 7 and 8, and against
`udp-file serve --protocol raw` (the same path rules as TFTP, item 6).

Each test attacks a server started here on 127.0.0.1:0 with raw Python sockets, then asserts what
docs/security.md promises: the attack gets nothing (no reply, no file from outside the root, nothing
written outside it), the server keeps serving a normal client, its memory stays under a stated bound
(VmHWM from /proc), and it still exits 0 on SIGTERM. Every loop is bounded in count and time.
"""
import hashlib
import os
import shutil
import socket
import struct
import tempfile
import time
import unittest

from test_udp_file import error_of, rrq, wrq  # the TFTP packet builders (functions only)
from netlab_e2e import MEM_SLACK, PYTHON, NetlabTestCase, cpu_seconds, scaled, vm_kib

MIB = 1 << 20
# Peak RSS a TFTP server may reach in these tests (it idles at a few MiB; a netascii file once
# made it hold the whole file twice).
MEMORY_BOUND = 64 * MIB


def udp(bind="127.0.0.1", timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, 0))
    s.settimeout(scaled(timeout))
    return s


def quiet_for(sock, seconds):
    """True if nothing arrives on sock within seconds."""
    sock.settimeout(seconds)
    try:
        sock.recvfrom(70000)
        return False
    except socket.timeout:
        return True


def fetch_small(port, name, bind="127.0.0.1", timeout=2.0, tries=3):
    """A minimal RFC 1350 RRQ (512-byte blocks, no options): the file's bytes, or ("error", code).
    Like any TFTP client it sends its request again when nothing answers it: a new socket may get the
    port of one whose transfer the server has not closed yet, and the server ignores a request from a
    transfer's own port while it runs."""
    s = udp(bind, timeout)
    try:
        out = b""
        expect = 1
        for _ in range(10000):
            if expect == 1:
                for attempt in range(tries):
                    s.sendto(rrq(name), ("127.0.0.1", port))
                    try:
                        pkt, addr = s.recvfrom(70000)
                        break
                    except socket.timeout:
                        if attempt == tries - 1:
                            raise
            else:
                pkt, addr = s.recvfrom(70000)
            err = error_of(pkt)
            if err:
                return ("error", err[0])
            if pkt[:2] != b"\x00\x03":
                continue
            block = struct.unpack("!H", pkt[2:4])[0]
            s.sendto(b"\x00\x04" + pkt[2:4], addr)
            if block != expect:
                continue
            out += pkt[4:]
            expect = (expect + 1) & 0xFFFF
            if len(pkt) - 4 < 512:
                return out
        raise AssertionError("no end of file")
    finally:
        s.close()


def raw_req(verb, cookie, name):
    """A raw-mode request as netlab's client sends it: VERB COOKIE NAME, NUL-padded to 64 bytes."""
    return ("%s %s %s" % (verb, cookie, name)).encode().ljust(64, b"\0")


class RawClient:
    """A raw-mode client that passes the cookie round trip once, then asks STAT or GET with that cookie
    (bound to this socket's address and port). One datagram per answer: the files asked for here are
    smaller than 512 bytes."""

    def __init__(self, port, timeout=1.0):
        self.sock = udp(timeout=timeout)
        self.sock.connect(("127.0.0.1", port))
        self.cookie = None
        for _ in range(3):
            self.sock.send(raw_req("STAT", "-", "ok.txt"))
            try:
                pkt = self.sock.recv(2048)
            except socket.timeout:
                continue
            if pkt.startswith(b"COOKIE "):
                self.cookie = pkt[7:].decode()
                break
        if self.cookie is None:
            self.sock.close()
            raise AssertionError("the raw server sent no cookie")

    def ask(self, verb, name):
        """The answer's bytes, or None when nothing came within the timeout."""
        self.sock.send(raw_req(verb, self.cookie, name))
        try:
            return self.sock.recv(2048)
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


# Swaps ROOT/swap between a regular file, a symlink to SECRET and a FIFO (atomic renames) for at most
# SECONDS.
SWAPPER = r"""
import os, sys, time
root, secret, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
target, tmp_file, tmp_link, tmp_fifo = [os.path.join(root, n) for n in ("swap", ".file", ".link", ".fifo")]
with open(target, "wb") as f:
    f.write(b"inside\n")
print("swapping", flush=True)
deadline = time.monotonic() + seconds
n = 0
while time.monotonic() < deadline and n < 10000000:
    with open(tmp_file, "wb") as f:
        f.write(b"inside\n")
    os.replace(tmp_file, target)
    os.symlink(secret, tmp_link)
    os.replace(tmp_link, target)
    if n % 4 == 0:  # now and then a FIFO, which must not hang the server either
        os.mkfifo(tmp_fifo)
        os.replace(tmp_fifo, target)
    n += 1
"""


def udp_packet(src, dst, payload):
    """An IPv4 + UDP datagram with any source (IP checksum and length are filled in by the kernel)."""
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    return ip + struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload


class RootFixture(NetlabTestCase):
    """A served root with ok.txt, and a secret file next to it (outside)."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="netlab-hostile-tftp-")
        self.root = os.path.join(self.dir, "root")
        self.outside = os.path.join(self.dir, "outside")
        os.mkdir(self.root)
        os.mkdir(self.outside)
        self.secret = os.path.join(self.outside, "secret")
        with open(self.secret, "wb") as f:
            f.write(b"SECRET outside the root\n")
        self.put("ok.txt", b"still serving\n")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def put(self, name, data):
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)

    def bounded_then_stop(self, srv, bound):
        """After the protocol's own "still serving" check: memory stayed under bound, nothing
        appeared outside the root, and SIGTERM ends the server with 0. Returns the peak RSS."""
        hwm = vm_kib(srv.pid, "VmHWM") * 1024
        self.assertLess(hwm, bound + MEM_SLACK, "peak RSS %d B" % hwm)
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret"])
        self.assertEqual(srv.terminate(timeout=10), 0, srv.stderr()[-2000:])
        return hwm


class HostileTftp(RootFixture):
    def serve(self, *extra):
        srv = self.server("udp-file", "serve", "--root", self.root, "--listen", "127.0.0.1:0", *extra)
        return srv

    def assert_healthy_then_stop(self, srv, bound=MEMORY_BOUND):
        """A normal client is still served, memory stayed bounded, nothing appeared outside the root,
        and SIGTERM ends the server with 0."""
        # A slot is released just after its transfer's last packet went out: with one slot, a request
        # may beat that by a hair and be told "busy" (ERROR 0); ask again then, a bounded number of times.
        r = ("error", 0)
        deadline = time.monotonic() + scaled(5)
        while r == ("error", 0) and time.monotonic() < deadline:
            r = fetch_small(srv.port, "ok.txt")
        self.assertEqual(r, b"still serving\n")
        return self.bounded_then_stop(srv, bound)

    # ---- item 4: the listening port answers requests only ---------------------------------------

    def test_non_requests_on_the_listening_port_draw_no_reply(self):
        srv = self.serve()
        s = udp()
        self.addCleanup(s.close)
        for pkt in (b"\x00\x05\x00\x00bye\x00",            # ERROR
                    b"\x00\x05\x00\x04\x00",                # ERROR, empty message
                    b"\x00\x04\x00\x01",                    # ACK
                    b"\x00\x03\x00\x01hello",               # DATA
                    b"\x00\x06blksize\x00512\x00",          # OACK
                    b"\x00\x09junk", b"\xff\xff", b"\x00", b"", os.urandom(600)):
            with self.subTest(pkt=pkt[:12]):
                s.sendto(pkt, ("127.0.0.1", srv.port))
                self.assertTrue(quiet_for(s, scaled(0.3)), "the listening port answered %r" % pkt[:12])
        self.assert_healthy_then_stop(srv)

    def test_spoofed_source_equal_to_the_server_does_not_loop(self):
        """One datagram 'from' the server's own port (CVE-2024-2169 class): an ERROR, and a request
        whose refusal would go back to the server itself."""
        try:
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except PermissionError:
            self.skipTest("spoofing a source address needs CAP_NET_RAW")
        self.addCleanup(raw.close)
        srv = self.serve()
        me = ("127.0.0.1", srv.port)
        cpu0 = cpu_seconds(srv.pid)
        for payload in (b"\x00\x05\x00\x04loop\x00", rrq("missing-file"), b"\x00\x01bad\x00"):
            raw.sendto(udp_packet(me, me, payload), ("127.0.0.1", 0))
        # Also from another loopback address on the server's port, as a second server would.
        raw.sendto(udp_packet(("127.0.0.2", srv.port), me, rrq("missing-file")), ("127.0.0.1", 0))
        time.sleep(1.0)  # a loop shows as CPU and log growth over time: there is no event to await
        self.assertLess(cpu_seconds(srv.pid) - cpu0, 0.3)
        self.assertLess(len(srv.stderr()), 20000)
        self.assert_healthy_then_stop(srv)
        self.assertRegex(srv.stderr(), r"stopped \(\d datagram\(s\) dropped on the listening port")

    def test_malformed_request_flood_gets_rate_limited_errors(self):
        srv = self.serve()
        s = udp()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MIB)
        sent, replies = 0, 0
        t0 = time.monotonic()
        for i in range(3000):
            s.sendto(b"\x00\x01name-without-mode-%d\x00" % i if i % 2 else b"\x00\x02no-terminator-%d" % i, ("127.0.0.1", srv.port))
            sent += 1
        elapsed = time.monotonic() - t0
        s.settimeout(scaled(0.5))
        try:
            for _ in range(sent):
                pkt, _ = s.recvfrom(2048)
                self.assertIsNotNone(error_of(pkt))
                replies += 1
        except socket.timeout:
            pass
        elapsed = time.monotonic() - t0
        # docs/security.md: bursts of 40, then 20 per second.
        self.assertLessEqual(replies, 40 + 20 * elapsed + 2, "%d replies to %d requests in %.2f s" % (replies, sent, elapsed))
        self.assertGreater(replies, 0)
        print("\n  flood: %d requests, %d ERROR replies in %.2f s" % (sent, replies, elapsed))
        self.assert_healthy_then_stop(srv)

    # ---- item 6: paths, FIFOs, the check/open race, uploads -------------------------------------

    def test_traversal_and_symlinks_out_get_access_violation(self):
        os.symlink(self.secret, os.path.join(self.root, "abs-out"))
        os.symlink("../outside/secret", os.path.join(self.root, "rel-out"))
        os.symlink("abs-out", os.path.join(self.root, "chain-1"))
        os.symlink("chain-1", os.path.join(self.root, "chain-2"))
        os.symlink(self.outside, os.path.join(self.root, "dir-out"))
        os.symlink("ok.txt", os.path.join(self.root, "in-link"))
        srv = self.serve()
        for name in ("../outside/secret", "../../etc/passwd", self.secret, "/etc/passwd", "abs-out", "rel-out",
                     "chain-1", "chain-2", "dir-out/secret", "ok.txt/../../outside/secret"):
            with self.subTest(name=name):
                self.assertEqual(fetch_small(srv.port, name), ("error", 2))
        self.assertEqual(fetch_small(srv.port, "in-link"), b"still serving\n")  # relative, stays inside
        self.assert_healthy_then_stop(srv)

    def test_fifo_in_the_root_is_refused_at_once_and_sigterm_still_works(self):
        os.mkfifo(os.path.join(self.root, "pipe"))
        srv = self.serve()
        t0 = time.monotonic()
        self.assertEqual(fetch_small(srv.port, "pipe", timeout=3), ("error", 2))
        self.assertLess(time.monotonic() - t0, scaled(1.0))
        self.assert_healthy_then_stop(srv)

    def test_swapping_a_file_and_a_symlink_out_never_serves_the_outside(self):
        """The old check-then-open served the outside file in ~2% of tries (and blocked for good in
        open() when the name became a FIFO after the check)."""
        srv = self.serve("--max-per-client", "100")
        # The swapper is a process of its own (a thread would share the GIL with the fetch loop), bounded
        # in time and count; stopped by its PID.
        swapper = self.spawn([PYTHON, "-c", SWAPPER, self.root, self.secret, str(scaled(6))])
        self.assertEqual(swapper.readline(10), b"swapping")
        got = {}
        tries = 0
        try:
            deadline = time.monotonic() + scaled(3)
            # 20,000 tries, or more (at most 200,000, within the deadline) until both states were seen:
            # a descheduled swapper can leave the name a symlink for a whole burst of tries.
            while time.monotonic() < deadline and tries < 200000 and (
                    tries < 20000 or not got.get("inside") or not got.get(("error", 2))):
                r = fetch_small(srv.port, "swap")
                key = r if isinstance(r, tuple) else r.decode(errors="replace").strip()
                got[key] = got.get(key, 0) + 1
                tries += 1
        finally:
            swapper.terminate(timeout=10)
        print("\n  race: %d fetches while a file and a symlink out were swapped: %r" % (tries, got))
        self.assertFalse(any("SECRET" in str(k) for k in got), got)
        self.assertGreater(got.get("inside", 0), 0, got)  # the race really ran
        self.assertGreater(got.get(("error", 2), 0), 0, got)
        self.assert_healthy_then_stop(srv)

    def test_uploads_never_replace_or_follow_a_dangling_symlink(self):
        os.symlink(os.path.join(self.outside, "planted"), os.path.join(self.root, "out-dangling"))
        os.symlink("not-yet", os.path.join(self.root, "in-dangling"))
        for flags, code in ((("--allow-upload",), 6), (("--allow-upload", "--allow-overwrite"), 2)):
            srv = self.serve(*flags)
            for name in ("out-dangling", "in-dangling"):
                with self.subTest(flags=flags, name=name):
                    s = udp()
                    s.sendto(wrq(name), ("127.0.0.1", srv.port))
                    pkt, _ = s.recvfrom(2048)
                    s.close()
                    self.assertEqual(error_of(pkt)[0], code, pkt)
                    self.assertTrue(os.path.islink(os.path.join(self.root, name)))
            self.assertFalse(os.path.lexists(os.path.join(self.root, "not-yet")))
            self.assert_healthy_then_stop(srv)
        self.assertEqual(sorted(os.listdir(self.root)), ["in-dangling", "ok.txt", "out-dangling"])

    # ---- item 7: netascii without the whole file in memory ----------------------------------------

    def test_netascii_of_a_huge_sparse_file_starts_at_once_with_bounded_memory(self):
        big = os.path.join(self.root, "sparse.txt")
        with open(big, "wb") as f:
            f.truncate(8 << 30)  # 8 GiB of holes: the old server read it all before DATA 1
        srv = self.serve()
        s = udp()
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendto(rrq("sparse.txt", "netascii", blksize=1428, windowsize=16, tsize=0), ("127.0.0.1", srv.port))
        pkt, addr = s.recvfrom(70000)
        self.assertEqual(pkt[:2], b"\x00\x06", pkt[:40])  # OACK
        self.assertNotIn(b"tsize", pkt)  # the size on the wire is not known before the end
        first = time.monotonic() - t0
        s.sendto(b"\x00\x04\x00\x00", addr)
        got = 0
        block = 0
        deadline = time.monotonic() + scaled(10)
        while got < 32 * MIB and time.monotonic() < deadline:
            pkt, _ = s.recvfrom(70000)
            if pkt[:2] != b"\x00\x03":
                continue
            b = struct.unpack("!H", pkt[2:4])[0]
            if b == ((block + 1) & 0xFFFF):
                block = b
                got += len(pkt) - 4
                if b % 16 == 0:
                    s.sendto(b"\x00\x04" + pkt[2:4], addr)
        s.sendto(b"\x00\x05\x00\x00enough\x00", addr)
        self.assertGreaterEqual(got, 32 * MIB)
        self.assertLess(first, scaled(1.0))
        hwm = self.assert_healthy_then_stop(srv, bound=48 * MIB)
        print("\n  netascii 8 GiB sparse: first answer after %.3f s, 32 MiB sent, server VmHWM %.1f MiB"
              % (first, hwm / MIB))

    def test_netascii_fetch_is_exact_across_blocks_and_windows(self):
        # CR and LF on both sides of block, window and 1 MiB chunk boundaries.
        text = bytearray()
        pattern = [b"line\n", b"\r", b"\r\n", b"x" * 1427 + b"\r", b"\n", b"\x00", b"y" * 700]
        i = 0
        while len(text) < 3 * MIB:
            text += pattern[i % len(pattern)]
            i += 1
        text[MIB - 1:MIB + 1] = b"\r\n"
        self.put("t.txt", bytes(text))
        srv = self.serve()
        out = os.path.join(self.dir, "t.out")
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "t.txt", "-o", out, "--mode", "netascii",
                        "--blksize", "1428", "--windowsize", "16")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), bytes(text))
        self.assert_healthy_then_stop(srv)

    # ---- item 8: slots are bounded in time and per client -----------------------------------------

    def test_silent_client_with_timeout_255_is_dropped_within_max_silence(self):
        self.put("m.bin", os.urandom(100000))
        srv = self.serve("--max-transfers", "1", "--max-silence", "1500ms")
        s = udp(timeout=10)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendto(rrq("m.bin", timeout=255, blksize=512), ("127.0.0.1", srv.port))
        oack, _ = s.recvfrom(2048)
        self.assertEqual(oack[:2], b"\x00\x06")
        self.assertIn(b"timeout\x00255\x00", oack)
        # While it holds the only slot, others are told the server is busy.
        self.assertEqual(fetch_small(srv.port, "ok.txt"), ("error", 0))
        s.settimeout(scaled(10))
        err = None
        for _ in range(10):  # the OACK may come again before the server gives up
            pkt, _ = s.recvfrom(2048)
            err = error_of(pkt)
            if err:
                break
        held = time.monotonic() - t0
        self.assertIsNotNone(err)
        self.assertLess(held, scaled(4))
        self.assertGreaterEqual(held, 1.3)
        print("\n  silent client with timeout=255 dropped after %.2f s (--max-silence 1500ms)" % held)
        self.assert_healthy_then_stop(srv)  # the slot is free again

    def test_silent_uploader_with_timeout_255_is_dropped_and_leaves_nothing(self):
        srv = self.serve("--allow-upload", "--max-transfers", "1", "--max-silence", "1s")
        s = udp(timeout=10)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendto(wrq("up.bin", timeout=255, blksize=512), ("127.0.0.1", srv.port))
        oack, addr = s.recvfrom(2048)
        self.assertEqual(oack[:2], b"\x00\x06")
        s.sendto(b"\x00\x03\x00\x01" + b"x" * 512, addr)  # one block, then silence
        err = None
        for _ in range(10):
            pkt, _ = s.recvfrom(2048)
            err = error_of(pkt)
            if err:
                break
        held = time.monotonic() - t0
        self.assertIsNotNone(err)
        self.assertLess(held, scaled(3.5))
        deadline = time.monotonic() + scaled(5)  # the partial upload is removed as the transfer ends
        while os.listdir(self.root) != ["ok.txt"] and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(os.listdir(self.root), ["ok.txt"])
        self.assert_healthy_then_stop(srv)

    def test_one_address_cannot_take_every_slot(self):
        self.put("m.bin", os.urandom(100000))
        srv = self.serve("--max-per-client", "2")
        holders = []
        for _ in range(2):
            s = udp()
            self.addCleanup(s.close)
            s.sendto(rrq("m.bin", blksize=512), ("127.0.0.1", srv.port))
            pkt, addr = s.recvfrom(2048)
            self.assertEqual(pkt[:2], b"\x00\x06")
            holders.append((s, addr))
        third = fetch_small(srv.port, "ok.txt")
        self.assertEqual(third, ("error", 0))
        self.assertIn("too many transfers from your address", srv.stderr())
        # Another address is served meanwhile.
        self.assertEqual(fetch_small(srv.port, "ok.txt", bind="127.0.0.2"), b"still serving\n")
        for s, addr in holders:
            s.sendto(b"\x00\x05\x00\x00bye\x00", addr)
        deadline = time.monotonic() + scaled(5)  # the slots are released when the server reads the ERRORs
        while srv.stderr().count("the peer sent ERROR 0 (bye)") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assert_healthy_then_stop(srv)


class HostileRaw(RootFixture):
    """`--protocol raw` opens names beneath the root's descriptor as TFTP does (item 6): the old raw mode
    checked the path with resolve() and then opened it again by name, so a swap in between served the
    outside file, and a name swapped for a FIFO hung the STAT's digest in open()."""

    def serve(self, *extra):
        srv = self.server("udp-file", "serve", "--protocol", "raw", "--root", self.root, "--listen", "127.0.0.1:0", *extra)
        return srv

    def raw_client(self, srv):
        c = RawClient(srv.port)
        self.addCleanup(c.close)
        return c

    def assert_healthy_then_stop(self, srv, bound=MEMORY_BOUND):
        c = RawClient(srv.port, timeout=2.0)
        try:
            self.assertEqual(c.ask("GET", "ok.txt"), b"still serving\n")
        finally:
            c.close()
        return self.bounded_then_stop(srv, bound)

    def test_raw_traversal_and_symlinks_out_are_refused(self):
        os.symlink(self.secret, os.path.join(self.root, "abs-out"))
        os.symlink("../outside/secret", os.path.join(self.root, "rel-out"))
        os.symlink("abs-out", os.path.join(self.root, "chain-1"))
        os.symlink(self.outside, os.path.join(self.root, "dir-out"))
        os.symlink("ok.txt", os.path.join(self.root, "in-link"))
        os.mkdir(os.path.join(self.root, "sub"))
        srv = self.serve()
        c = self.raw_client(srv)
        for name in ("../outside/secret", "../../etc/passwd", self.secret, "/etc/passwd", "abs-out", "rel-out",
                     "chain-1", "dir-out/secret", "ok.txt/../../outside/secret", "sub", "missing"):
            for verb in ("STAT", "GET"):
                with self.subTest(verb=verb, name=name):
                    r = c.ask(verb, name)
                    self.assertIsNotNone(r, "no answer")
                    self.assertTrue(r.startswith(b"ERR "), r)
        self.assertEqual(c.ask("GET", "in-link"), b"still serving\n")  # relative, stays inside
        ok = c.ask("STAT", "ok.txt")
        self.assertEqual(ok, b"OK 14 " + hashlib.sha256(b"still serving\n").hexdigest().encode())
        self.assertNotIn("SECRET", srv.stderr())
        self.assert_healthy_then_stop(srv)

    def test_raw_fifo_in_the_root_is_refused_at_once_and_sigterm_still_works(self):
        os.mkfifo(os.path.join(self.root, "pipe"))
        os.symlink("pipe", os.path.join(self.root, "to-pipe"))
        srv = self.serve()
        c = self.raw_client(srv)
        for verb in ("STAT", "GET"):
            for name in ("pipe", "to-pipe"):
                with self.subTest(verb=verb, name=name):
                    t0 = time.monotonic()
                    r = c.ask(verb, name)
                    self.assertIsNotNone(r, "no answer: the server hangs on the FIFO")
                    self.assertTrue(r.startswith(b"ERR "), r)
                    self.assertLess(time.monotonic() - t0, scaled(1.0))
        self.assert_healthy_then_stop(srv)

    def test_raw_swapping_a_file_and_a_symlink_out_never_serves_the_outside(self):
        """STAT (the server digests the file) and GET (it streams it) while ROOT/swap turns into a symlink
        out and into a FIFO; one cookie round trip, then requests one after another, bounded in count and
        time."""
        srv = self.serve()
        c = self.raw_client(srv)
        inside_stat = b"OK 7 " + hashlib.sha256(b"inside\n").hexdigest().encode()
        swapper = self.spawn([PYTHON, "-c", SWAPPER, self.root, self.secret, str(scaled(6))])
        self.assertEqual(swapper.readline(10), b"swapping")
        got = {}
        tries = 0
        try:
            deadline = time.monotonic() + scaled(3)
            # As in the TFTP race: 20,000 requests, or more until the inside file was served.
            while time.monotonic() < deadline and tries < 200000 and (
                    tries < 20000 or not got.get(("GET", "inside")) or not got.get(("STAT", "inside"))):
                verb = "STAT" if tries % 2 else "GET"
                r = c.ask(verb, "swap")
                if r is None:
                    key = (verb, "no answer")
                elif r == b"inside\n" or r == inside_stat:
                    key = (verb, "inside")
                elif r.startswith(b"ERR "):
                    key = (verb, "ERR")
                else:
                    key = (verb, r.decode(errors="replace"))
                got[key] = got.get(key, 0) + 1
                tries += 1
        finally:
            swapper.terminate(timeout=10)
        print("\n  raw race: %d requests while a file, a symlink out and a FIFO were swapped: %r" % (tries, got))
        with open(self.secret, "rb") as f:
            secret = f.read()
        secret_stat = "OK %d %s" % (len(secret), hashlib.sha256(secret).hexdigest())
        self.assertFalse(any("SECRET" in k[1] or k[1] == secret_stat for k in got), got)
        # A reply later than the client's timeout (a loaded machine) is read as the next request's: the
        # answers are told apart by content, and a rare "no answer" is no failure (a hung server fails
        # the final fetch).
        self.assertEqual([k for k in got if k[1] not in ("inside", "ERR", "no answer")], [], got)
        self.assertGreater(got.get(("GET", "inside"), 0), 0, got)  # the race really ran
        self.assertGreater(got.get(("STAT", "inside"), 0), 0, got)
        self.assertGreater(got.get(("GET", "ERR"), 0) + got.get(("STAT", "ERR"), 0), 0, got)
        self.assert_healthy_then_stop(srv)


if __name__ == "__main__":
    unittest.main()
