"""ws-echo serve fed bursts larger than its 4 KiB connection buffer in one write (issue 17): a read
that fills the buffer goes on reading into a 64 KiB per-thread buffer (detail/fast_read.hpp), so
frames straddle both buffers' edges. Every echo must come back whole and in order, and a protocol
error deep in a burst must still close with the right code after the frames before it.
"""
import os
import random
import socket
import unittest

from netlab_e2e import NetlabTestCase, scaled
from test_ws_echo import RawWs, client_frame as frame


class WsBursts(NetlabTestCase):
    def start(self, *extra):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0", *extra)
        ws = RawWs(srv.port, timeout=20)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        return ws

    def messages(self, seed):
        """~300 KiB of messages: small and mid-sized binaries, 64 KiB ± 1 edges, and text made of
        multi-byte characters (so a code point can straddle any read boundary)."""
        rng = random.Random(seed)
        out = []
        for i in range(160):
            n = rng.choice([0, 1, 125, 126, 1000, 4095, 4096, 4097, rng.randrange(1, 9000)])
            out.append((2, bytes(rng.randrange(256) for _ in range(n))))
            if i % 40 == 7:
                out.append((2, os.urandom(65535 + i % 3)))
            if i % 25 == 3:
                out.append((1, ("封印解除😀é" * rng.randrange(1, 900)).encode()))
        return out

    def test_burst_echoes_whole_and_in_order(self):
        ws = self.start()
        msgs = self.messages(17)
        burst = b"".join(frame(op, p) for op, p in msgs)
        # A fragmented text message whose fragments (and a code point) cross the 4 KiB edge.
        text = ("ü" * 5000).encode()
        burst += frame(1, text[:4001], fin=False) + frame(0, text[4001:9001], fin=False) + frame(0, text[9001:])
        self.assertGreater(len(burst), 256 * 1024)
        ws.s.sendall(burst)
        for op, p in msgs + [(1, text)]:
            fin, got_op, got = ws.read_frame()
            self.assertTrue(fin)
            self.assertEqual((got_op, len(got)), (op, len(p)))
            self.assertEqual(got, p)

    def check_error_deep_in_burst(self, bad, code):
        ws = self.start()
        msgs = [(2, os.urandom(3000 + i)) for i in range(40)]  # ~120 KiB before the bad frame
        ws.s.sendall(b"".join(frame(op, p) for op, p in msgs) + bad + frame(2, b"never echoed"))
        for op, p in msgs:
            _, got_op, got = ws.read_frame()
            self.assertEqual((got_op, got), (op, p))
        self.assertEqual(ws.read_close()[0], code)
        self.assertTrue(ws.at_eof(timeout=10))

    def test_invalid_utf8_deep_in_burst_closes_1007(self):
        self.check_error_deep_in_burst(frame(1, b"ok \xff\xfe not utf-8"), 1007)

    def test_unmasked_frame_deep_in_burst_closes_1002(self):
        self.check_error_deep_in_burst(frame(2, b"unmasked", mask=False), 1002)

    def test_burst_over_max_message_closes_1009(self):
        ws = self.start("--max-message", "100KiB")
        msgs = [(2, os.urandom(2000)) for _ in range(20)]
        ws.s.sendall(b"".join(frame(op, p) for op, p in msgs) + frame(2, os.urandom(100 * 1024 + 1)))
        for op, p in msgs:
            _, got_op, got = ws.read_frame()
            self.assertEqual((got_op, got), (op, p))
        self.assertEqual(ws.read_close()[0], 1009)


if __name__ == "__main__":
    unittest.main()
