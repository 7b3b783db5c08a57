"""End-to-end tests of issue 15 for udp-file: where a fetch writes (devices, FIFOs, directories), the
server's `transfer` events (--json), the abort line's byte counts, and one meaning of "retransmitted
blocks" on client and server.

Real binary on 127.0.0.1:0; a Python TFTP client for the half-finished transfer. Every wait is bounded.
"""
import json
import os
import re
import signal
import socket
import stat
import struct
import threading
import time

from netlab_e2e import EXIT, NETLAB, scaled
from test_udp_file import UdpFileBase, error_of, parse_oack, rrq, sha


class OutputTargets(UdpFileBase):
    def test_dev_null_is_written_into_not_replaced(self):
        self.put("a.bin", os.urandom(300000))
        srv = self.serve()
        before = os.stat("/dev/null")
        for extra in ([], ["--force"]):
            with self.subTest(flags=extra):
                r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "a.bin", "-o", "/dev/null", "--json", *extra)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["bytes"], 300000)
                after = os.stat("/dev/null")
                self.assertTrue(stat.S_ISCHR(after.st_mode), "/dev/null is no longer a character device")
                self.assertEqual((after.st_ino, after.st_rdev), (before.st_ino, before.st_rdev))
                self.assertFalse(os.path.exists("/dev/null.part"))
        self.assertEqual(srv.terminate(), 0)

    def test_fifo_is_written_into_and_stays_a_fifo(self):
        data = os.urandom(2 * 1024 * 1024 + 7)
        self.put("f.bin", data)
        srv = self.serve()
        fifo = os.path.join(self.out, "pipe")
        os.mkfifo(fifo)
        got, errors = [], []

        def reader():
            try:
                with open(fifo, "rb") as f:  # blocks until the fetch opens the FIFO for writing
                    while True:
                        chunk = f.read(65536)
                        if not chunk:
                            break
                        got.append(chunk)
            except OSError as e:
                errors.append(e)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "f.bin", "-o", fifo, "--force", "--sha256")
        th.join(scaled(10))
        self.assertFalse(th.is_alive(), "the FIFO's reader never saw the end of the data")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(errors, [])
        self.assertEqual(sha(b"".join(got)), sha(data))
        self.assertIn(sha(data).encode(), r.stdout)
        self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced")
        self.assertEqual(sorted(os.listdir(self.out)), ["pipe"])  # no pipe.part left behind
        self.assertEqual(srv.terminate(), 0)

    def test_fifo_without_reader_waits_and_sigint_is_exit_130(self):
        self.put("w.bin", b"data")
        srv = self.serve()
        fifo = os.path.join(self.out, "pipe")
        os.mkfifo(fifo)
        p = self.spawn([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, "w.bin", "-o", fifo])
        # Wait until it blocks in the FIFO's open (openat = 257 on x86-64, 56 on arm64).
        deadline = time.monotonic() + scaled(10)
        blocked = False
        while time.monotonic() < deadline and not blocked:
            try:
                with open("/proc/%d/syscall" % p.pid) as f:
                    blocked = f.read().split(" ")[0] in ("257", "56")
            except OSError:
                break
            time.sleep(0.01)
        self.assertTrue(blocked, "the fetch never waited in open()")
        self.assertEqual(p.terminate(signal.SIGINT), EXIT["interrupted"], p.stderr())
        self.assertIn("interrupted while waiting for a reader of", p.stderr())
        self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode))
        self.assertEqual(srv.terminate(), 0)

    def test_block_device_is_refused_even_with_force(self):
        if os.geteuid() != 0:
            self.skipTest("making a block device node needs root")
        self.put("b.bin", b"data")
        srv = self.serve()
        node = os.path.join(self.out, "blk")
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 250))  # a loop device number nothing uses
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "b.bin", "-o", node, "--force")
        self.assertEqual(r.returncode, EXIT["local_io"], r.stderr)
        self.assertRegex(r.stderr, rb"^netlab: udp-file fetch: output .*blk is a block device \(.+\)\n$")
        self.assertTrue(stat.S_ISBLK(os.stat(node).st_mode))
        self.assertEqual(sorted(os.listdir(self.out)), ["blk"])
        self.assertEqual(srv.terminate(), 0)

    def test_output_directory_saves_dir_slash_name(self):
        data = os.urandom(5000)
        self.put("d.bin", data)
        srv = self.serve()
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "d.bin", "-o", self.out, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        saved = os.path.join(self.out, "d.bin")
        self.assertEqual(json.loads(r.stdout)["output"], saved)
        self.assertEqual(self.read(saved), data)
        # DIR/NAME exists now: the usual rule, exit 6 without --force, replaced with it.
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "d.bin", "-o", self.out)
        self.assertEqual(r.returncode, EXIT["local_io"], r.stderr)
        self.assertRegex(r.stderr, rb"^netlab: udp-file fetch: output .*d\.bin exists \(use --force")
        r = self.netlab("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "d.bin", "-o", self.out + "/", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(self.out)), ["d.bin"])
        self.assertEqual(srv.terminate(), 0)


def half_finished_read(port, name, blocks_to_ack):
    """An RRQ (blksize 1428, window 1) whose client acknowledges `blocks_to_ack` blocks and then falls
    silent. Returns the payload bytes received."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(scaled(5))
        s.sendto(rrq(name, blksize=1428, timeout=1), ("127.0.0.1", port))
        pkt, peer = s.recvfrom(70000)
        parse_oack(pkt)
        s.sendto(struct.pack("!HH", 4, 0), peer)
        got, block = 0, 0
        while block < blocks_to_ack:
            pkt, _ = s.recvfrom(70000)
            op, n = struct.unpack("!HH", pkt[:4])
            if op == 3 and n == block + 1:
                block = n
                got += len(pkt) - 4
                s.sendto(struct.pack("!HH", 4, n), peer)
        return got
    finally:
        s.close()


class ServerEventsAndLogs(UdpFileBase):
    def test_transfer_events_for_read_write_and_refusal(self):
        data = os.urandom(100000)
        self.put("r.bin", data)
        srv = self.serve("--allow-upload")
        r, out = self.fetch(srv.port, "r.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.netlab("udp-file", "put", "127.0.0.1:%d" % srv.port, out, "up.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        r, _ = self.fetch(srv.port, "missing.bin")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        events = [srv.await_json("transfer", timeout=scaled(5)) for _ in range(3)]
        for e in events:
            for field in ("id", "peer", "op", "file", "bytes", "seconds", "result"):
                self.assertIn(field, e)
            self.assertRegex(e["peer"], r"^127\.0\.0\.1:\d+$")
        read, write, refused = events
        self.assertEqual((read["op"], read["file"], read["bytes"], read["result"]), ("read", "r.bin", len(data), "ok"))
        self.assertEqual((write["op"], write["file"], write["bytes"], write["result"]), ("write", "up.bin", len(data), "ok"))
        self.assertEqual((refused["op"], refused["file"], refused["result"]), ("read", "missing.bin", "error"))
        self.assertIn("no such file (ERROR 1)", refused["error"])
        self.assertNotIn("error", read)
        self.assertEqual(len({e["id"] for e in events}), 3)
        self.assertEqual(srv.terminate(), 0)

    def test_raw_mode_streams_are_transfer_events_too(self):
        data = os.urandom(20000)
        self.put("raw.bin", data)
        srv = self.serve("--protocol", "raw")
        r, out = self.fetch(srv.port, "raw.bin", None, "--protocol", "raw")
        self.assertEqual(r.returncode, 0, r.stderr)
        r, _ = self.fetch(srv.port, "nope.bin", None, "--protocol", "raw")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        ok = srv.await_json("transfer", timeout=scaled(5))
        self.assertEqual((ok["proto"], ok["op"], ok["file"], ok["bytes"], ok["result"]), ("raw", "read", "raw.bin", len(data), "ok"))
        self.assertRegex(ok["peer"], r"^127\.0\.0\.1:\d+$")
        refused = srv.await_json("transfer", timeout=scaled(5))
        self.assertEqual((refused["file"], refused["result"]), ("nope.bin", "error"))
        self.assertIn("no such file", refused["error"])
        self.assertNotEqual(ok["id"], refused["id"])
        self.assertEqual(srv.terminate(), 0)

    def test_text_mode_prints_only_the_readiness_line(self):
        self.put("t.bin", b"x" * 1000)
        p = self.spawn([NETLAB, "udp-file", "serve", "--root", self.root, "--listen", "127.0.0.1:0"])
        line = p.readline(scaled(10))
        m = re.match(rb"listening tftp 127\.0\.0\.1:(\d+)", line or b"")
        self.assertIsNotNone(m, line)
        r, _ = self.fetch(int(m.group(1)), "t.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(p.terminate(), 0)
        self.assertEqual(p.stdout_rest(), b"")

    def test_abort_line_counts_the_bytes_really_sent(self):
        self.put("big.bin", os.urandom(1024 * 1024))
        srv = self.serve("--retries", "1", "--max-silence", "1500ms")
        got = half_finished_read(srv.port, "big.bin", 30)
        self.assertEqual(got, 30 * 1428)
        e = srv.await_json("transfer", timeout=scaled(10))
        self.assertEqual(e["result"], "error")
        self.assertEqual(e["bytes"], 30 * 1428)          # acknowledged
        self.assertGreaterEqual(e["bytes_sent"], 30 * 1428)  # block 31 went out too
        self.assertEqual(srv.terminate(), 0)
        m = re.search(rb"RRQ big\.bin: .*\(after (\d+) B sent, (\d+) B acknowledged", srv.stderr().encode())
        self.assertIsNotNone(m, srv.stderr().encode()[-800:])
        self.assertGreaterEqual(int(m.group(1)), 30 * 1428)
        self.assertEqual(int(m.group(2)), 30 * 1428)

    def test_retransmitted_blocks_mean_the_same_on_both_sides(self):
        """With losses injected on the server's DATA only, every block the client counts as retransmitted
        (a number it had seen or passed) was resent by the server, and the server's count exceeds the
        client's by at most the packets lost (a lost resend is never seen). Windows resent after a
        partial ACK count: at 2% loss they are most of the resends."""
        for window, size in (("16", 8 << 20), ("1", 1 << 20)):  # window 1: one 50 ms timeout per loss
            data = os.urandom(size)
            self.put("l.bin", data)
            with self.subTest(windowsize=window):
                srv = self.serve("--simulate-loss", "0.02", "--seed", "3")
                r, out = self.fetch(srv.port, "l.bin", None, "--json", "--force", "--blksize", "1428",
                                    "--windowsize", window, "--timeout", "50ms", "--retries", "20")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(sha(self.read(out)), sha(data))
                client = json.loads(r.stdout)
                server = srv.await_json("transfer", timeout=scaled(5))
                self.assertEqual(srv.terminate(), 0)
                m = re.search(rb"RRQ l\.bin: sent .* (\d+) retransmitted block\(s\), (\d+) simulated loss", srv.stderr().encode())
                self.assertIsNotNone(m, srv.stderr().encode()[-800:])
                logged, losses = int(m.group(1)), int(m.group(2))
                self.assertEqual(logged, server["retransmitted_blocks"])
                self.assertEqual(client["retransmissions"], client["retransmitted_blocks"])
                self.assertGreater(losses, 0)
                # Each lost block is sent again at least once; a window resent after a partial ACK more.
                self.assertGreaterEqual(server["retransmitted_blocks"], losses)
                self.assertLessEqual(client["retransmitted_blocks"], server["retransmitted_blocks"])
                self.assertGreaterEqual(client["retransmitted_blocks"], server["retransmitted_blocks"] - losses)
                if window == "16":  # partial windows resent: far more blocks than were lost
                    self.assertGreater(server["retransmitted_blocks"], 3 * losses)
                self.assertRegex(srv.stderr().encode(), rb"RRQ l\.bin: sent \d+ B .*, \d+ retransmitted block\(s\)")


if __name__ == "__main__":
    import unittest
    unittest.main()
