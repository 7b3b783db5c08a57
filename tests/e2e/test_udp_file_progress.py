"""End-to-end tests of udp-file's progress bar (issue 15): it fits the terminal's width (tmux at 60
columns: no redraw wraps) and is redrawn at most ~10 times a second.

A slow transfer on purpose: 512-byte blocks, window 1, and 5% of the server's DATA dropped (each loss
costs a 20 ms timeout). tmux runs on its own socket; only the tmux server started here is stopped.
"""
import os
import shutil
import subprocess
import time

from netlab_e2e import NETLAB, scaled
from test_udp_file import UdpFileBase

SLOW = ["--blksize", "512", "--windowsize", "1", "--timeout", "20ms", "--retries", "20"]


class ProgressBar(UdpFileBase):
    def slow_server(self):
        self.put("slow.bin", os.urandom(1024 * 1024))
        return self.serve("--simulate-loss", "0.05", "--seed", "9")

    def test_redraws_fit_and_are_paced_when_forced_into_a_file(self):
        srv = self.slow_server()
        out = os.path.join(self.out, "slow.bin")
        env = dict(os.environ, COLUMNS="60")
        started = time.monotonic()
        r = subprocess.run([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, "slow.bin", "-o", out,
                            "--progress"] + SLOW, capture_output=True, timeout=scaled(60), env=env,
                           stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(elapsed, 0.5, "the transfer was too fast to draw a bar")
        redraws = [d for d in r.stderr.split(b"\r") if d.strip(b"\x1b[K")]
        self.assertGreater(len(redraws), 0, r.stderr[-300:])
        # At most ~10 a second (the bar draws 5).
        self.assertLessEqual(len(redraws), 10 * elapsed + 2, "%d redraws in %.2f s" % (len(redraws), elapsed))
        for d in redraws:
            visible = d.replace(b"\x1b[K", b"")
            self.assertLessEqual(len(visible), 59, visible)  # the last column is never written
            self.assertNotIn(b"\n", visible)
        self.assertIn(b"%", redraws[0])
        self.assertEqual(srv.terminate(), 0)

    def test_tmux_at_60_columns_shows_one_unwrapped_line(self):
        if not shutil.which("tmux"):
            self.skipTest("tmux is not installed (scripts/deps.sh installs it)")
        srv = self.slow_server()
        sock = "netlab-e2e-%d" % os.getpid()
        tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
        self.addCleanup(subprocess.run, tmux + ["kill-server"], capture_output=True, timeout=10)
        out = os.path.join(self.out, "slow.bin")
        cmd = " ".join([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, "slow.bin", "-o", out] + SLOW)
        subprocess.run(tmux + ["new-session", "-d", "-x", "60", "-y", "10", "-s", "t", cmd + "; echo EXIT=$?; sleep 60"],
                       check=True, timeout=10, env=dict(os.environ, TERM="xterm"))
        screens_with_bar = 0
        deadline = time.monotonic() + scaled(60)
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "t"], capture_output=True, text=True,
                                    timeout=10).stdout
            rows = [row for row in screen.split("\n") if row.strip()]
            if any(row.startswith("EXIT=") for row in rows):
                break
            if rows and "%" in rows[0]:
                screens_with_bar += 1
                # One row: a redraw that wrapped would leave a second row of bar fragments.
                self.assertEqual(len(rows), 1, screen)
                self.assertLessEqual(len(rows[0].rstrip()), 59, screen)
            time.sleep(0.05)  # polling the screen: the transfer's own pace is the event
        self.assertIn("EXIT=0", screen)
        self.assertGreater(screens_with_bar, 0, "never saw the bar")
        rows = [row for row in screen.split("\n") if row.strip()]
        self.assertTrue(rows[0].startswith("fetched slow.bin -> "), screen)  # the bar was wiped
        self.assertEqual(srv.terminate(), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
