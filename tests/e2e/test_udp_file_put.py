"""End-to-end tests of `netlab udp-file put` (issue 16): a TFTP WRQ client with fetch's options, --json
`put` event and exit codes, against netlab's own server (--allow-upload) and tftpd-hpa (-c).

Real binaries on 127.0.0.1 with ephemeral ports. Every wait is bounded; only processes started here
are stopped.
"""
import json
import os
import signal
import socket
import time

from netlab_e2e import EXIT, NETLAB, scaled, start_tftpd_hpa
from test_udp_file import UdpFileBase, sha


class PutToNetlab(UdpFileBase):
    def local(self, name, data):
        path = os.path.join(self.out, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def put_file(self, port, *args, timeout=60):
        return self.netlab("udp-file", "put", "127.0.0.1:%d" % port, *args, timeout=timeout)

    def test_sizes_and_options_arrive_intact(self):
        srv = self.serve("--allow-upload")
        sizes = [0, 1, 511, 512, 513, 1428 * 5, 300001]
        flags = {"auto": [], "rfc1350": ["--blksize", "512", "--windowsize", "1"],
                 "no-options": ["--no-options"], "window": ["--blksize", "1428", "--windowsize", "8"]}
        for n in sizes:
            data = os.urandom(n)
            src = self.local("s%d" % n, data)
            for label, extra in flags.items():
                with self.subTest(size=n, flags=label):
                    remote = "u%d-%s" % (n, label)
                    r = self.put_file(srv.port, src, remote, "--json", *extra)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    ev = json.loads(r.stdout)
                    self.assertEqual((ev["event"], ev["bytes"], ev["remote"], ev["local"]), ("put", n, remote, src))
                    for field in ("server", "seconds", "blksize", "windowsize", "retransmitted_blocks", "timeouts"):
                        self.assertIn(field, ev)
                    if label in ("rfc1350", "no-options"):
                        self.assertEqual((ev["blksize"], ev["windowsize"]), (512, 1))
                    self.assertEqual(self.read(os.path.join(self.root, remote)), data)
        self.assertEqual(srv.terminate(), 0)

    def test_text_summary_default_name_and_netascii(self):
        srv = self.serve("--allow-upload")
        src = self.local("notes.txt", b"one\ntwo\r\nthree\n")
        r = self.put_file(srv.port, src)  # REMOTE defaults to LOCAL's base name
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, rb"^put .*notes\.txt -> notes\.txt: 15 bytes in .*, 0 retransmitted block\(s\)\n$")
        self.assertEqual(self.read(os.path.join(self.root, "notes.txt")), b"one\ntwo\r\nthree\n")
        r = self.put_file(srv.port, src, "n2.txt", "--mode", "netascii")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read(os.path.join(self.root, "n2.txt")), b"one\ntwo\r\nthree\n")
        self.assertEqual(srv.terminate(), 0)

    def test_lossy_upload_is_exact_and_counts_retransmitted_blocks(self):
        srv = self.serve("--allow-upload")
        data = os.urandom(2 * 1024 * 1024 + 11)
        src = self.local("l.bin", data)
        r = self.put_file(srv.port, src, "l.bin", "--json", "--blksize", "1428", "--windowsize", "16",
                          "--simulate-loss", "0.03", "--seed", "5", "--timeout", "50ms", "--retries", "20")
        self.assertEqual(r.returncode, 0, r.stderr)
        ev = json.loads(r.stdout)
        self.assertGreater(ev["simulated_losses"], 0)
        self.assertGreaterEqual(ev["retransmitted_blocks"], ev["simulated_losses"])  # each lost DATA went again
        self.assertEqual(sha(self.read(os.path.join(self.root, "l.bin"))), sha(data))
        srv_event = srv.await_json("transfer", timeout=scaled(5))
        self.assertEqual((srv_event["op"], srv_event["bytes"]), ("write", len(data)))
        # The server, receiving, sees the resent blocks that arrived: never more than were sent.
        self.assertLessEqual(srv_event["retransmitted_blocks"], ev["retransmitted_blocks"])
        self.assertEqual(srv.terminate(), 0)

    def test_refusals_and_local_errors(self):
        src = self.local("r.bin", os.urandom(1000))
        closed = self.serve()  # read-only: no --allow-upload
        r = self.put_file(closed.port, src)
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        self.assertRegex(r.stderr, rb"^netlab: udp-file put: server error 2: uploads are disabled on this server \(.+\)\n$")
        self.assertEqual(os.listdir(self.root), [])
        self.assertEqual(closed.terminate(), 0)

        srv = self.serve("--allow-upload")
        self.put("exists.bin", b"old")
        r = self.put_file(srv.port, src, "exists.bin")
        self.assertEqual(r.returncode, EXIT["protocol"], r.stderr)
        self.assertIn(b"server error 6: file exists", r.stderr)
        self.assertEqual(self.read(os.path.join(self.root, "exists.bin")), b"old")

        r = self.put_file(srv.port, os.path.join(self.out, "missing.bin"))
        self.assertEqual(r.returncode, EXIT["local_io"], r.stderr)
        self.assertRegex(r.stderr, rb"^netlab: udp-file put: cannot read .*missing\.bin: No such file or directory \(.+\)\n$")
        r = self.put_file(srv.port, self.out, "d.bin")
        self.assertEqual(r.returncode, EXIT["local_io"], r.stderr)
        self.assertRegex(r.stderr, rb"^netlab: udp-file put: .* is a directory \(.+\)\n$")
        self.assertEqual(sorted(os.listdir(self.root)), ["exists.bin"])  # nothing asked of the server
        self.assertEqual(srv.terminate(), 0)

        r = self.netlab("udp-file", "put", "127.0.0.1:1", src, "--protocol", "raw")
        self.assertEqual(r.returncode, EXIT["usage"], r.stderr)

    def test_interrupted_put_is_130_and_the_server_removes_the_partial_file(self):
        srv = self.serve("--allow-upload")
        src = self.local("big.bin", os.urandom(4 * 1024 * 1024))
        p = self.spawn([NETLAB, "udp-file", "put", "127.0.0.1:%d" % srv.port, src, "--blksize", "512", "--windowsize", "1",
                        "--simulate-loss", "0.1", "--seed", "2", "--timeout", "50ms", "--retries", "20", "-v"])
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline and "transfer to 127.0.0.1" not in p.stderr():  # the OACK came
            time.sleep(0.01)
        self.assertIn("transfer to 127.0.0.1", p.stderr(), "the upload never started")
        self.assertEqual(len(os.listdir(self.root)), 1)  # the server's temporary file
        self.assertEqual(p.terminate(signal.SIGINT), EXIT["interrupted"], p.stderr())
        ev = srv.await_json("transfer", timeout=scaled(10))
        self.assertEqual((ev["op"], ev["result"]), ("write", "error"))
        self.assertIn("client interrupted", ev["error"])
        self.assertEqual(os.listdir(self.root), [])
        self.assertEqual(srv.terminate(), 0)

    def test_silent_server_times_out(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        src = self.local("t.bin", b"x" * 100)
        r = self.put_file(s.getsockname()[1], src, "--timeout", "20ms", "--retries", "1")
        self.assertEqual(r.returncode, EXIT["timeout"], r.stderr)
        self.assertIn(b"no answer from 127.0.0.1", r.stderr)


class PutToTftpdHpa(UdpFileBase):
    def test_upload_create_with_tftpd_hpa(self):
        hpa, port = start_tftpd_hpa(self, self.root, "-c")
        data = os.urandom(1024 * 1024 + 77)
        src = os.path.join(self.out, "h.bin")
        with open(src, "wb") as f:
            f.write(data)
        # tftpd-hpa ignores windowsize (a window of 1 then) and caps blksize at 65464.
        for label, extra in (("auto", []), ("rfc1350", ["--blksize", "512", "--windowsize", "1"]),
                             ("no-options", ["--no-options"])):
            with self.subTest(flags=label):
                remote = "h-%s.bin" % label
                r = self.netlab("udp-file", "put", "127.0.0.1:%d" % port, src, remote, "--json", *extra, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                ev = json.loads(r.stdout)
                self.assertEqual(ev["bytes"], len(data))
                self.assertEqual(ev["windowsize"], 1)
                self.assertEqual(sha(self.read(os.path.join(self.root, remote))), sha(data))
        hpa.kill()


if __name__ == "__main__":
    import unittest
    unittest.main()
