"""The built-in ws-echo page in headless Chromium (issue 16): its frame list (direction, opcode,
size, latency) and connection state, checked through the DOM and in a screenshot.

Chromium is driven over its DevTools protocol with Python's websockets (tests/e2e/test_ws_echo.py's
Cdp); scripts/deps.sh installs chromium, and the test is skipped only where it is not installed.
"""
import base64
import os
import shutil
import signal
import struct
import tempfile
import unittest

import websockets

from netlab_e2e import CHROMIUM, NetlabTestCase, start_chromium
from test_ws_echo import Cdp, run

STATE = "document.getElementById('state').textContent"
# Every frame row as [dir, opcode, size, latency cell, data cell].
FRAMES = ("[...document.querySelectorAll('#frames tbody tr')].map(r => [r.dataset.dir, r.dataset.opcode, "
          "Number(r.dataset.size), r.cells[4].textContent, r.cells[5].textContent])")


def click(element_id):
    return "document.getElementById(%r).click(); true" % element_id


def png_size(data):
    """(width, height) of a PNG, from its IHDR chunk; fails on anything else."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack("!II", data[16:24])


class WsPageInChromium(NetlabTestCase):
    def start_chromium(self):
        return start_chromium(self, "--window-size=1000,1000")

    @unittest.skipUnless(os.access(CHROMIUM, os.X_OK), "chromium is not installed (%s)" % CHROMIUM)
    def test_the_page_shows_frames_and_the_connection_state(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        browser, devtools = self.start_chromium()
        shots = tempfile.mkdtemp(prefix="netlab-page-")
        self.addCleanup(shutil.rmtree, shots, True)

        async def go():
            async with websockets.connect(devtools, max_size=None) as ws:
                cdp = Cdp(ws)
                page = await cdp.open_page("http://127.0.0.1:%d/" % srv.port)
                self.assertEqual(await cdp.wait_for(page, "%s === 'open' && %s" % (STATE, STATE), 10,
                                                    "the state 'open'"), "open")
                await cdp.eval(page, "document.getElementById('msg').value = 'hello frames'; true")
                await cdp.eval(page, click("send"))
                await cdp.eval(page, click("binary"))
                rows = await cdp.wait_for(page, "(%s).filter(r => r[0] === 'in').length >= 2 && (%s)"
                                          % (FRAMES, FRAMES), 10, "both echoes in the frame list")
                out = [r for r in rows if r[0] == "out"]
                back = [r for r in rows if r[0] == "in"]
                self.assertEqual([(r[1], r[2]) for r in out], [("text", 12), ("binary", 12)])
                self.assertEqual([(r[1], r[2]) for r in back], [("text", 12), ("binary", 12)])
                self.assertEqual(back[0][4], "hello frames")
                self.assertTrue(back[1][4].startswith("68 65 6c 6c 6f"), back[1])  # "hello" in hex
                for r in back:  # each echo's latency, measured from its send
                    self.assertRegex(r[3], r"^\d+\.\d ms$")
                # The screenshot: the page renders (a PNG of the window), with the frame table in view.
                shot = await cdp.call("Page.captureScreenshot", page, format="png")
                png = base64.b64decode(shot["data"])
                with open(os.path.join(shots, "page.png"), "wb") as f:
                    f.write(png)
                width, height = png_size(png)
                self.assertGreater(width, 300)
                self.assertGreater(height, 300)
                self.assertGreater(len(png), 5000)  # not a blank page
                box = await cdp.eval(page, "JSON.stringify(document.getElementById('frames')"
                                           ".getBoundingClientRect())")
                self.assertIn('"width":', box)
                self.assertNotIn('"width":0,', box)

                # The page closes: close frames both ways, state "closed".
                await cdp.eval(page, click("disconnect"))
                await cdp.wait_for(page, "%s === 'closed'" % STATE, 10, "the state 'closed'")
                rows = await cdp.eval(page, FRAMES)
                self.assertEqual(rows[-2][:3], ["out", "close", 5])
                self.assertEqual(rows[-1][:3], ["in", "close", 5])
                self.assertEqual(rows[-1][4], "1000 bye")

                # The server closes: 1001 shows up, and the state goes from "open" to "closed".
                await cdp.eval(page, click("connect"))
                await cdp.wait_for(page, "%s === 'open'" % STATE, 10, "the state 'open' again")
                srv.p.send_signal(signal.SIGTERM)
                await cdp.wait_for(page, "%s === 'closed'" % STATE, 10, "the state 'closed' after SIGTERM")
                rows = await cdp.eval(page, FRAMES)
                self.assertEqual(rows[-1][:3], ["in", "close", 2 + len("server shutting down")])
                self.assertEqual(rows[-1][4], "1001 server shutting down")
        run(go(), 90)
        browser.terminate(signal.SIGTERM, 10)
        self.assertEqual(srv.wait(), 0)
        err = srv.stderr()
        self.assertIn("GET / → 200", err)
        self.assertNotIn("→ 404", err)  # the icon is served (issue 15)
        self.assertEqual(err.count("ws open "), 2, err)


if __name__ == "__main__":
    unittest.main()
