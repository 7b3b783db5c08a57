"""End-to-end tests of `netlab udp-file serve` and `netlab udp-file fetch` (issue 4).

Real binary on 127.0.0.1:0; peers: netlab's own client, tftp-hpa's `tftp`, atftp, curl's tftp://,
tftpd-hpa's `in.tftpd` in the foreground on an ephemeral port, and raw Python sockets for malformed
and adversarial packets. Every wait is bounded; only processes started here are stopped.
"""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from netlab_e2e import (EXIT, MEM_SLACK, NETLAB, run_unprivileged, NetlabTestCase, scaled, start_tftpd_hpa,
                        unused_port, vm_kib)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def rrq(name, mode="octet", **opts):
    pkt = b"\x00\x01" + name.encode() + b"\x00" + mode.encode() + b"\x00"
    for k, v in opts.items():
        pkt += k.encode() + b"\x00" + str(v).encode() + b"\x00"
    return pkt


def wrq(name, mode="octet", **opts):
    return b"\x00\x02" + rrq(name, mode, **opts)[2:]


def parse_oack(pkt):
    assert pkt[:2] == b"\x00\x06", pkt[:40]
    parts = pkt[2:].split(b"\x00")[:-1]
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts), 2)}


def error_of(pkt):
    """(code, message) of an ERROR packet, or None."""
    if pkt[:2] != b"\x00\x05":
        return None
    return struct.unpack("!H", pkt[2:4])[0], pkt[4:].split(b"\x00")[0].decode()


class UdpFileBase(NetlabTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="netlab-udpfile-")
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root)
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def put(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def serve(self, *extra):
        return self.server("udp-file", "serve", "--root", self.root, "--listen", "127.0.0.1:0", *extra)

    def fetch(self, port, remote, out=None, *extra, timeout=60):
        out = out or os.path.join(self.out, os.path.basename(remote) or "x")
        return self.netlab("udp-file", "fetch", "127.0.0.1:%d" % port, remote, "-o", out, *extra, timeout=timeout), out

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def ask(self, port, pkt, timeout=3.0):
        """Sends one datagram from a fresh socket, returns (reply, sender address)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(scaled(timeout))
        s.sendto(pkt, ("127.0.0.1", port))
        data, addr = s.recvfrom(70000)
        return data, addr, s


class NetlabToNetlab(UdpFileBase):
    def test_rfc_edge_sizes_with_plain_and_negotiated_blocks(self):
        srv = self.serve()
        sizes = [0, 1, 511, 512, 513, 1024, 1428 * 3, 100000]
        for n in sizes:
            self.put("f%d" % n, os.urandom(n))
        for n in sizes:
            for extra in (["--blksize", "512", "--windowsize", "1"], ["--blksize", "1428", "--windowsize", "4"], []):
                with self.subTest(size=n, flags=extra):
                    r, out = self.fetch(srv.port, "f%d" % n, None, "--force", "--json", *extra)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(self.read(out), self.read(os.path.join(self.root, "f%d" % n)))
                    summary = json.loads(r.stdout)
                    self.assertEqual(summary["event"], "fetched")
                    self.assertEqual(summary["bytes"], n)
                    if extra[:2] == ["--blksize", "512"]:
                        self.assertEqual((summary["blksize"], summary["windowsize"]), (512, 1))
                    self.assertFalse(os.path.exists(out + ".part"))
        self.assertEqual(srv.terminate(), 0)

    def test_digest_printed_and_exact_under_loss_dup_and_reorder(self):
        data = os.urandom(3 * 1024 * 1024 + 17)
        self.put("pic.bin", data)
        for faults in ([], ["--simulate-loss", "0.05"], ["--simulate-loss", "0.2"],
                       ["--simulate-dup", "0.1", "--simulate-reorder", "0.1"]):
            with self.subTest(faults=faults):
                srv = self.serve(*faults, "--seed", "7")
                r, out = self.fetch(srv.port, "pic.bin", None, "--force", "--sha256", "--blksize", "8192",
                                    "--windowsize", "8", *faults, "--seed", "11")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(sha(data).encode(), r.stdout)
                self.assertEqual(self.read(out), data)
                if faults and "loss" in faults[0]:
                    self.assertRegex(r.stdout, rb", [1-9]\d* retransmitted block\(s\) arrived, [1-9]\d* timeout")
                self.assertEqual(srv.terminate(), 0)

    def test_stdout_output_and_summary_on_stderr(self):
        data = os.urandom(70000)
        self.put("s.bin", data)
        srv = self.serve()
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "s.bin", "-o", "-", "--sha256")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, data)
        self.assertIn(sha(data).encode(), r.stderr)

    def test_existing_output_needs_force_and_failure_leaves_nothing(self):
        self.put("a.txt", b"new")
        srv = self.serve()
        out = os.path.join(self.out, "a.txt")
        with open(out, "wb") as f:
            f.write(b"old")
        r, _ = self.fetch(srv.port, "a.txt", out)
        self.assertEqual(r.returncode, EXIT["local_io"], r.stderr)
        self.assertIn(b"exists", r.stderr)
        self.assertIn(b"--force", r.stderr)
        self.assertEqual(self.read(out), b"old")
        r, _ = self.fetch(srv.port, "a.txt", out, "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(out), b"new")
        # A missing file: exit 5 naming the server's error; no OUT, no OUT.part.
        r, missing = self.fetch(srv.port, "nope.txt")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        self.assertIn(b"server error 1", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertFalse(os.path.exists(missing))
        self.assertFalse(os.path.exists(missing + ".part"))

    def test_server_killed_mid_transfer(self):
        self.put("big.bin", os.urandom(12 * 1024 * 1024))
        srv = self.serve()
        out = os.path.join(self.out, "big.bin")
        # 512-byte lockstep: slow enough to kill the server in the middle.
        cli = self.spawn([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, "big.bin", "-o", out,
                          "--blksize", "512", "--windowsize", "1", "--retries", "2"])
        deadline = time.monotonic() + scaled(10)
        while not os.path.exists(out + ".part") and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        srv.kill()
        code = cli.wait(timeout=scaled(20))
        self.assertIn(code, (EXIT["timeout"], EXIT["network"]), cli.stderr())
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".part"))

    def test_keep_partial(self):
        srv = self.serve()
        out = os.path.join(self.out, "k.bin")
        port = srv.port
        srv.kill()
        r, _ = self.fetch(port, "k.bin", out, "--keep-partial", "--retries", "1")
        self.assertIn(r.returncode, (EXIT["network"], EXIT["timeout"]), r.stderr)
        self.assertTrue(os.path.exists(out + ".part"))
        self.assertFalse(os.path.exists(out))

    def test_no_server_is_refused_and_silent_server_times_out(self):
        r, out = self.fetch(unused_port(), "x.bin")
        self.assertEqual(r.returncode, EXIT["network"], r.stderr)
        self.assertIn(b"Connection refused", r.stderr)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            t0 = time.monotonic()
            r, out = self.fetch(silent.getsockname()[1], "x.bin", None, "--timeout", "50ms", "--retries", "2")
            self.assertEqual(r.returncode, EXIT["timeout"], r.stderr)
            self.assertLess(time.monotonic() - t0, scaled(5))
            self.assertIn(b"no answer", r.stderr)
        self.assertFalse(os.path.exists(out) or os.path.exists(out + ".part"))

    def test_usage_errors(self):
        for args, needle in ((["127.0.0.1:1", "x", "--blksize", "7"], b"--blksize"),
                             (["127.0.0.1:1", "x", "--windowsize", "0"], b"--windowsize"),
                             (["127.0.0.1:1", "x", "--simulate-loss", "1.5"], b"between 0 and 1"),
                             (["127.0.0.1", "x"], b"port"),
                             (["127.0.0.1:1", "x", "--no-options", "--blksize", "1428"], b"--no-options")):
            with self.subTest(args=args):
                r = self.netlab("udp-file", "fetch", *args)
                self.assertEqual(r.returncode, EXIT["usage"], r.stderr)
                self.assertIn(needle, r.stderr)
        r = self.netlab("udp-file", "serve", "--root", os.path.join(self.dir, "missing"))
        self.assertEqual(r.returncode, EXIT["usage"], r.stderr)
        self.assertIn(b"not a directory", r.stderr)

    def test_netascii_round_trip(self):
        text = b"line one\nline two\r\nbare CR \r here\n"
        self.put("t.txt", text)
        srv = self.serve()
        r, out = self.fetch(srv.port, "t.txt", None, "--mode", "netascii")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(out), text)
        # On the wire it is CR LF / CR NUL.
        reply, addr, s = self.ask(srv.port, rrq("t.txt", "netascii"))
        self.assertEqual(reply[4:], text.replace(b"\r", b"\r\x00").replace(b"\n", b"\r\n"))
        s.sendto(b"\x00\x04\x00\x01", addr)

    def test_raw_protocol_contrast(self):
        """The intact case is 40 datagrams, far below the client's receive buffer: loopback drops nothing
        then, whatever the load; the client ends as soon as the announced size arrived, and a slow client
        is not mistaken for a silent server (queued datagrams keep the stream open). The lossy case
        asserts what raw mode guarantees: nothing, and it says so."""
        data = os.urandom(20000)
        self.put("r.bin", data)
        srv = self.serve("--protocol", "raw")
        r, out = self.fetch(srv.port, "r.bin", None, "--protocol", "raw", "--timeout", "500ms", "--idle", "3s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"sha256 matches", r.stdout)
        self.assertEqual(self.read(out), data)
        self.assertEqual(srv.terminate(), 0)
        lossy = self.serve("--protocol", "raw", "--simulate-loss", "0.3", "--seed", "3")
        r, out2 = self.fetch(lossy.port, "r.bin", os.path.join(self.out, "r2.bin"), "--protocol", "raw", "--timeout",
                             "500ms", "--idle", "300ms")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        self.assertIn(b"DIFFERS", r.stdout)
        self.assertFalse(os.path.exists(out2))
        self.assertFalse(os.path.exists(out2 + ".part"))
        self.assertEqual(lossy.terminate(), 0)

    def test_many_transfers_at_once(self):
        files = {}
        for i in range(12):
            files["c%d.bin" % i] = os.urandom(200000 + i * 1000)
            self.put("c%d.bin" % i, files["c%d.bin" % i])
        # All 12 clients share 127.0.0.1: how many overlap depends on scheduling, so the per-client
        # limit (default 8, tested in test_hostile_tftp) must not be what this test measures.
        srv = self.serve("--max-per-client", str(len(files)))
        procs = []
        for i, name in enumerate(files):
            extra = ["--blksize", "512", "--windowsize", "1"] if i % 3 == 0 else []
            procs.append((name, self.spawn([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, name, "-o",
                                            os.path.join(self.out, name), *extra])))
        for name, p in procs:
            self.assertEqual(p.wait(timeout=scaled(30)), 0, p.stderr())
            self.assertEqual(self.read(os.path.join(self.out, name)), files[name])
        self.assertEqual(srv.terminate(), 0)

    def test_privileged_port_needs_root(self):
        """`--listen :69` as an ordinary user fails at once with a hint (run as nobody when we are root)."""
        r = run_unprivileged(self, [NETLAB, "udp-file", "serve", "--listen", "127.0.0.1:69", "--root", "/"])
        self.assertEqual(r.returncode, EXIT["network"], r.stderr)
        self.assertIn(b"ports below 1024 need root", r.stderr)


class Security(UdpFileBase):
    def test_path_attacks_get_access_violation(self):
        self.put("ok.txt", b"fine")
        outside = os.path.join(self.dir, "secret.txt")
        with open(outside, "wb") as f:
            f.write(b"secret")
        os.symlink(outside, os.path.join(self.root, "link.txt"))
        os.mkdir(os.path.join(self.root, "sub"))
        srv = self.serve()
        for name, code in (("../secret.txt", 2), ("sub/../../secret.txt", 2), (outside, 2), ("/etc/passwd", 2),
                           ("link.txt", 2), ("sub", 2), ("missing.txt", 1)):
            with self.subTest(name=name):
                reply, _, _ = self.ask(srv.port, rrq(name))
                self.assertEqual(error_of(reply)[0], code, reply)
        # Inside the root by absolute path is fine.
        r, out = self.fetch(srv.port, os.path.join(self.root, "ok.txt"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(out), b"fine")
        r, out = self.fetch(srv.port, "../secret.txt", os.path.join(self.out, "s"))
        self.assertEqual(r.returncode, EXIT["protocol"])
        self.assertIn(b"server error 2", r.stderr)
        self.assertEqual(srv.terminate(), 0)

    def test_uploads_off_by_default_then_new_files_only(self):
        src = os.path.join(self.out, "up.bin")
        data = os.urandom(50000)
        with open(src, "wb") as f:
            f.write(data)
        srv = self.serve()
        reply, _, _ = self.ask(srv.port, wrq("up.bin"))
        self.assertEqual(error_of(reply)[0], 2)
        srv.terminate()
        srv = self.serve("--allow-upload")
        r = subprocess.run(["curl", "-sS", "-T", src, "tftp://127.0.0.1:%d/up.bin" % srv.port], capture_output=True,
                           timeout=scaled(20))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(os.path.join(self.root, "up.bin")), data)
        reply, _, _ = self.ask(srv.port, wrq("up.bin"))
        self.assertEqual(error_of(reply)[0], 6)  # exists, no overwrite
        srv.terminate()
        srv = self.serve("--allow-upload", "--allow-overwrite")
        small = os.path.join(self.out, "small.bin")
        with open(small, "wb") as f:
            f.write(b"v2")
        r = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(srv.port), "-c", "put", small, "up.bin"],
                           capture_output=True, timeout=scaled(20))
        self.assertEqual(self.read(os.path.join(self.root, "up.bin")), b"v2", r)
        self.assertEqual(os.listdir(self.root), ["up.bin"])

    def test_failed_upload_leaves_nothing(self):
        srv = self.serve("--allow-upload", "--timeout", "100ms", "--retries", "1")
        reply, addr, s = self.ask(srv.port, wrq("half.bin", blksize=512))
        self.assertEqual(parse_oack(reply), {"blksize": "512"})
        s.sendto(b"\x00\x03\x00\x01" + b"x" * 512, addr)  # one full block, then silence
        ack, _ = s.recvfrom(100)
        self.assertEqual(ack, b"\x00\x04\x00\x01")
        names = os.listdir(self.root)  # written under a hidden temporary name, never as half.bin
        self.assertEqual(len(names), 1)
        self.assertTrue(names[0].startswith(".half.bin.") and names[0].endswith(".part"), names)
        deadline = time.monotonic() + scaled(10)
        while os.listdir(self.root) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(self.root), [])

    def test_upload_with_gap_oversized_block_and_peer_error(self):
        # The receiver takes payloads straight into its write buffer: blocks out of order, a block too
        # large, a runt and an ERROR with a message must still be handled as before.
        srv = self.serve("--allow-upload", "--timeout", "2s")
        reply, addr, s = self.ask(srv.port, wrq("w.bin", blksize=512, windowsize=4))
        self.assertEqual(parse_oack(reply), {"blksize": "512", "windowsize": "4"})
        blocks = [b"a" * 512, b"b" * 512, b"c" * 512, b"d" * 100]
        send = lambda n: s.sendto(b"\x00\x03" + struct.pack("!H", n) + blocks[n - 1], addr)
        send(1)
        send(3)                          # a gap: ACK 1 once
        s.sendto(b"\x00\x03", addr)      # a runt: dropped
        send(2)
        send(3)
        send(4)                          # short: the last block
        acks = []
        deadline = time.monotonic() + scaled(5)
        while b"\x00\x04\x00\x04" not in acks and time.monotonic() < deadline:
            acks.append(s.recv(100))
        self.assertIn(b"\x00\x04\x00\x01", acks)
        self.assertEqual(acks[-1], b"\x00\x04\x00\x04")
        path = os.path.join(self.root, "w.bin")
        deadline = time.monotonic() + scaled(5)
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.read(path), b"".join(blocks))

        reply, addr, s = self.ask(srv.port, wrq("o.bin", blksize=512))
        self.assertEqual(parse_oack(reply), {"blksize": "512"})
        s.sendto(b"\x00\x03\x00\x01" + b"x" * 513, addr)
        code, message = error_of(s.recv(1000))
        self.assertEqual(code, 4)
        self.assertIn("513 bytes exceeds the negotiated blksize 512", message)

        reply, addr, s = self.ask(srv.port, wrq("e.bin", blksize=512))
        s.sendto(b"\x00\x03\x00\x01" + b"x" * 512, addr)
        self.assertEqual(s.recv(100), b"\x00\x04\x00\x01")
        s.sendto(b"\x00\x05\x00\x00" + b"the client gave up on purpose\x00", addr)
        deadline = time.monotonic() + scaled(5)
        while "the peer sent ERROR 0 (the client gave up on purpose)" not in srv.stderr() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn("the peer sent ERROR 0 (the client gave up on purpose)", srv.stderr())
        self.assertEqual(sorted(os.listdir(self.root)), ["w.bin"])

    def test_malformed_packets_and_server_keeps_serving(self):
        self.put("ok.txt", b"still here")
        srv = self.serve()
        for junk in (b"", b"\x00", b"\x00\x09abc", b"\x00\x01noterminator", b"\x00\x01name\x00", b"\x00\x03\x00\x01data",
                     b"\x00\x01f\x00mail\x00"):
            with self.subTest(junk=junk):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(scaled(2))
                    s.sendto(junk, ("127.0.0.1", srv.port))
                    try:
                        reply = s.recv(2048)
                        self.assertEqual(error_of(reply)[0], 4, reply)
                    except socket.timeout:
                        pass  # dropped is fine too
        r, out = self.fetch(srv.port, "ok.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(out), b"still here")

    def test_options_negotiation_unknown_ignored_and_limits(self):
        self.put("o.bin", os.urandom(5000))
        srv = self.serve("--max-blksize", "1024", "--max-windowsize", "4")
        reply, addr, s = self.ask(srv.port, rrq("o.bin", blksize=9000, windowsize=64, tsize=0, frobnicate=1))
        self.assertEqual(parse_oack(reply), {"blksize": "1024", "windowsize": "4", "tsize": "5000"})
        s.sendto(b"\x00\x05\x00\x00bye\x00", addr)

    def test_max_transfers_busy(self):
        self.put("m.bin", os.urandom(100000))
        srv = self.serve("--max-transfers", "1")
        reply, addr, s = self.ask(srv.port, rrq("m.bin", blksize=512))  # never acknowledged: stays active
        self.assertEqual(parse_oack(reply), {"blksize": "512"})
        reply2, _, _ = self.ask(srv.port, rrq("m.bin"))
        code, msg = error_of(reply2)
        self.assertEqual(code, 0)
        self.assertIn("busy", msg)

    def test_duplicate_ack_never_resends(self):
        """Sorcerer's Apprentice: a repeated ACK must not trigger a second copy of the next block."""
        self.put("d.bin", os.urandom(512 * 4))
        srv = self.serve()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(scaled(2))
        s.sendto(rrq("d.bin"), ("127.0.0.1", srv.port))
        pkt, addr = s.recvfrom(2048)
        self.assertEqual(pkt[:4], b"\x00\x03\x00\x01")
        s.sendto(b"\x00\x04\x00\x01", addr)
        s.sendto(b"\x00\x04\x00\x01", addr)  # duplicate
        pkt, _ = s.recvfrom(2048)
        self.assertEqual(pkt[:4], b"\x00\x03\x00\x02")
        s.settimeout(0.3)  # the server's timeout is 1 s: nothing else may come before it
        with self.assertRaises(socket.timeout):
            s.recvfrom(2048)
        s.sendto(b"\x00\x05\x00\x00done\x00", addr)


def raw_req(verb, cookie, name):
    """A raw-mode request as netlab's client sends it: NUL-padded to 64 bytes."""
    return ("%s %s %s" % (verb, cookie, name)).encode().ljust(64, b"\x00")


def collect(sock, seconds):
    """Every datagram that reaches sock within `seconds` (bounded: at most 100,000)."""
    got = []
    deadline = time.monotonic() + seconds
    while len(got) < 100000:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            got.append(sock.recv(70000))
        except socket.timeout:
            break
    return got



def spoofed_udp(src, dst, payload):
    """An IPv4 + UDP datagram with a forged source, for a raw IP_HDRINCL socket (UDP checksum 0: none)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    return ip + udp


class RawMode(UdpFileBase):
    """`--protocol raw` must not be an amplifier (issue 13 item 5): loopback by default, a cookie round
    trip before anything larger than the request, a paced stream, bounded client memory."""

    def raw_cookie(self, sock, name):
        sock.send(raw_req("STAT", "-", name))
        sock.settimeout(scaled(5))
        reply = sock.recv(100)
        self.assertTrue(reply.startswith(b"COOKIE "), reply)
        return reply[7:].decode()

    def test_default_bind_is_loopback_and_wider_is_warned(self):
        # The default port is 6969: when something else holds it, the CLI unit test covers the default.
        p = self.spawn([NETLAB, "udp-file", "serve", "--protocol", "raw", "--root", self.root, "--json"])
        line = p.readline(10)
        if line is None:
            rc = p.wait(10)
            if rc == EXIT["network"] and "in use" in p.stderr():
                self.skipTest("port 6969 is busy on this machine")
            self.fail("no readiness line: rc %r, %s" % (rc, p.stderr()))
        ready = json.loads(line)
        self.assertEqual((ready["address"], ready["port"], ready["proto"]), ("127.0.0.1", 6969, "udp-raw"))
        self.assertNotIn("beyond this machine", p.stderr())
        self.assertEqual(p.terminate(), 0)
        wide = self.server("udp-file", "serve", "--protocol", "raw", "--root", self.root, "--listen", "0.0.0.0:0")
        self.assertEqual(wide.host, "0.0.0.0")
        self.assertEqual(wide.terminate(), 0)
        self.assertIn("beyond this machine", wide.stderr())

    def test_unverified_requests_get_at_most_one_small_reply_and_no_data(self):
        data = os.urandom(1 << 20)
        self.put("big.bin", data)
        srv = self.serve("--protocol", "raw")
        quiet = scaled(1.0)

        def fresh():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(s.close)
            s.connect(("127.0.0.1", srv.port))
            return s

        # The old 11-byte "GET big.bin" streamed the whole file (x95,000 here): now not even a reply,
        # since any reply would be larger than it. Same for the old STAT, a reply of another server
        # (COOKIE/OK/ERR: answering those would loop), a TFTP RRQ and garbage.
        s = fresh()
        for pkt in (b"GET big.bin", b"STAT big.bin", b"COOKIE " + b"0" * 32, b"OK 5 abc", b"ERR no",
                    rrq("big.bin"), b"\x00" * 64, os.urandom(200)):
            s.send(pkt)
        self.assertEqual(collect(s, quiet), [])
        # A long enough request without a valid cookie: one COOKIE reply, never larger than the request.
        s = fresh()
        req = raw_req("GET", "0123456789abcdef0123456789abcdef", "big.bin")
        s.send(req)
        got = collect(s, quiet)
        self.assertEqual(len(got), 1, [g[:50] for g in got])
        self.assertTrue(got[0].startswith(b"COOKIE "), got[0][:50])
        self.assertLessEqual(len(got[0]), len(req))
        # A cookie is bound to its address and port: another sender (a spoofer who guessed or saw
        # one) gets a cookie of its own, not the file.
        owner = fresh()
        cookie = self.raw_cookie(owner, "big.bin")
        thief = fresh()
        thief.send(raw_req("GET", cookie, "big.bin"))
        got = collect(thief, quiet)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"COOKIE "))
        self.assertNotEqual(got[0][7:].decode(), cookie)
        self.assertEqual(collect(owner, 0.1), [])
        # A really spoofed source (root only: a raw IP socket): the victim, 127.0.0.9, receives at most
        # one reply no larger than the request, and no file data.
        if os.geteuid() == 0:
            victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(victim.close)
            victim.bind(("127.0.0.9", 0))
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.addCleanup(raw.close)
            for payload in (b"GET big.bin", raw_req("GET", "-", "big.bin"), raw_req("GET", cookie, "big.bin")):
                raw.sendto(spoofed_udp(victim.getsockname(), ("127.0.0.1", srv.port), payload), ("127.0.0.1", 0))
            got = collect(victim, quiet)
            # The two long requests get a cookie each (so the spoofed path really reached the server);
            # the short one nothing.
            self.assertEqual(len(got), 2, [g[:50] for g in got])
            for g in got:
                self.assertTrue(g.startswith(b"COOKIE ") and len(g) <= 64, g[:50])
        # The server still serves a real client, stays small, and stops cleanly. The file (98 datagrams)
        # fits in the client's socket buffer even unprivileged (208 KiB): intact whatever the load.
        small = os.urandom(50000)
        self.put("small.bin", small)
        r, out = self.fetch(srv.port, "small.bin", None, "--protocol", "raw", "--timeout", "500ms", "--idle", "3s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(out), small)
        self.assertLess(vm_kib(srv.pid, "VmHWM"), (64 << 10) + (MEM_SLACK >> 10))
        self.assertEqual(srv.terminate(), 0)

    def test_rate_cap_holds(self):
        """bytes <= burst + rate x (last datagram - GET sent): the client's clock starts before the server
        can send, and a late reader only lengthens the time, so the check cannot flake on a slow machine."""
        rate = 1 << 20
        burst = max(1024, rate // 200)
        data = os.urandom(int(2.5 * rate))
        self.put("paced.bin", data)
        srv = self.serve("--protocol", "raw", "--rate", "1MiB")
        r, out = self.fetch(srv.port, "paced.bin", None, "--protocol", "raw", "--timeout", "500ms", "--idle", "3s",
                            "--json")
        # A client that falls behind may lose datagrams (exit 5): the bound holds for what arrived.
        self.assertIn(r.returncode, (0, EXIT["protocol"]), r.stderr)
        j = json.loads(r.stdout)
        self.assertGreater(j["bytes"], len(data) // 2, j)
        self.assertLessEqual(j["bytes"], burst + rate * j["seconds"] + 512, j)
        # Not starved either: within 3x of the cap (generous for a loaded machine, scaled for sanitizers).
        self.assertLess(j["seconds"], scaled(3 * len(data) / rate + 2), j)
        if r.returncode == 0:
            self.assertEqual(self.read(out), data)
        self.assertEqual(srv.terminate(), 0)

    def test_raw_fetch_streams_to_disk_with_bounded_memory(self):
        from test_hostile_udpfile_client import run_measured
        self.put("small.bin", os.urandom(4 << 20))
        big = os.urandom(1 << 20) * 64  # 64 MiB
        self.put("big.bin", big)
        srv = self.serve("--protocol", "raw", "--rate", "256MiB")

        def fetch(name):
            return run_measured([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, name, "-o",
                                 os.path.join(self.out, name), "--protocol", "raw", "--timeout", "500ms", "--idle", "1s"])

        rc, err, base = fetch("small.bin")
        self.assertIn(rc, (0, EXIT["protocol"]), err)
        rc, err, peak = fetch("big.bin")
        # At full speed the receive buffer may overflow (exit 5, nothing kept): memory is bounded either way.
        self.assertIn(rc, (0, EXIT["protocol"]), err)
        if rc == 0:
            self.assertEqual(self.read(os.path.join(self.out, "big.bin")), big)
        self.assertGreater(base, 0)
        self.assertLess(peak - base, 24 * 1024, "peak %d KiB vs %d KiB for a 4 MiB file" % (peak, base))
        self.assertEqual(srv.terminate(), 0)


class Interop(UdpFileBase):
    def test_tftp_hpa_atftp_and_curl_against_netlab(self):
        data = os.urandom(1024 * 1024 + 333)
        self.put("x.bin", data)
        srv = self.serve()
        port = str(srv.port)
        clients = {
            "tftp-hpa": lambda out: ["tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", "x.bin", out],
            "atftp": lambda out: ["atftp", "--option", "blksize 1428", "--option", "windowsize 16", "-g", "-r",
                                  "x.bin", "-l", out, "127.0.0.1", port],
            "curl": lambda out: ["curl", "-sS", "--tftp-blksize", "8192", "-o", out,
                                 "tftp://127.0.0.1:%s/x.bin" % port],
            "curl-no-options": lambda out: ["curl", "-sS", "--tftp-no-options", "-o", out,
                                            "tftp://127.0.0.1:%s/x.bin" % port],
        }
        for name, argv in clients.items():
            with self.subTest(client=name):
                out = os.path.join(self.out, name)
                r = subprocess.run(argv(out), capture_output=True, timeout=scaled(30))
                self.assertEqual(r.returncode, 0, r.stderr)
                # tftp-hpa exits 0 even on failure: the content is the check.
                self.assertEqual(sha(self.read(out)), sha(data), name)
        # tftp-hpa's default netascii mode: text arrives with native line ends.
        self.put("n.txt", b"a\nb\n")
        out = os.path.join(self.out, "n.txt")
        subprocess.run(["tftp", "127.0.0.1", port, "-c", "get", "n.txt", out], capture_output=True, timeout=scaled(10))
        self.assertEqual(self.read(out), b"a\nb\n")
        self.assertEqual(srv.terminate(), 0)

    def test_netlab_fetch_against_tftpd_hpa(self):
        data = os.urandom(2 * 1024 * 1024 + 5)
        self.put("h.bin", data)
        hpa, port = start_tftpd_hpa(self, self.root)
        for extra in ([], ["--blksize", "512", "--windowsize", "1"], ["--no-options"]):
            with self.subTest(flags=extra):
                r, out = self.fetch(port, "h.bin", None, "--force", "--json", "--sha256", *extra)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["sha256"], sha(data))
        r, out = self.fetch(port, "missing.bin")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        self.assertIn(b"File not found", r.stderr)
        hpa.kill()

    def test_fallback_when_server_ignores_options(self):
        """A minimal RFC 1350 server (no options at all) in a thread: fetch falls back to 512-byte blocks."""
        import threading
        data = os.urandom(512 * 3 + 100)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.settimeout(scaled(10))
        self.addCleanup(lsock.close)
        errors = []

        def plain_server():
            try:
                req, peer = lsock.recvfrom(2048)
                assert b"blksize" in req
                t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                t.bind(("127.0.0.1", 0))
                t.settimeout(scaled(5))
                blocks = [data[i:i + 512] for i in range(0, len(data) + 1, 512)]
                for n, chunk in enumerate(blocks, 1):
                    for _ in range(5):
                        t.sendto(struct.pack("!HH", 3, n) + chunk, peer)
                        ack, _ = t.recvfrom(100)
                        if ack == struct.pack("!HH", 4, n):
                            break
                t.close()
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(e)

        th = threading.Thread(target=plain_server, daemon=True)
        th.start()
        r, out = self.fetch(lsock.getsockname()[1], "any.bin", None, "--json")
        th.join(scaled(10))
        self.assertEqual(errors, [])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(out), data)
        self.assertEqual(json.loads(r.stdout)["blksize"], 512)


if __name__ == "__main__":
    unittest.main()
