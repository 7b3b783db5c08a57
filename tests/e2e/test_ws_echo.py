"""ws-echo serve end to end with Python `websockets` (Debian's /usr/bin/python3) as the client.

Covers what exists so far: echo keeps the opcode and bytes (sizes around the frame-length
boundaries, UTF-8, empty), other paths 404, --max-message → 1009, SIGTERM → 1001 to every client.
`ws-echo dial` is not implemented yet, so nothing here exercises it.
"""
import asyncio
import signal
import unittest

import websockets

from netlab_e2e import NetlabTestCase, scaled


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, scaled(timeout)))


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


if __name__ == "__main__":
    unittest.main()
