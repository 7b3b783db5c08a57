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

    def check_redraws(self, argv, what):
        """Runs argv (a fetch or put with --progress, stderr not a terminal, COLUMNS=60) and checks the
        redraws: fitted to 59 columns, at most ~10 a second."""
        env = dict(os.environ, COLUMNS="60")
        started = time.monotonic()
        r = subprocess.run(argv, capture_output=True, timeout=scaled(60), env=env, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(elapsed, 0.5, "the %s was too fast to draw a bar" % what)
        redraws = [d for d in r.stderr.split(b"\r") if d.strip(b"\x1b[K")]
        self.assertGreater(len(redraws), 0, r.stderr[-300:])
        # At most ~10 a second (the bar draws 5).
        self.assertLessEqual(len(redraws), 10 * elapsed + 2, "%d redraws in %.2f s" % (len(redraws), elapsed))
        for d in redraws:
            visible = d.replace(b"\x1b[K", b"")
            self.assertLessEqual(len(visible), 59, visible)  # the last column is never written
            self.assertNotIn(b"\n", visible)
        self.assertIn(b"%", redraws[0])
        return r

    def test_redraws_fit_and_are_paced_when_forced_into_a_file(self):
        srv = self.slow_server()
        out = os.path.join(self.out, "slow.bin")
        self.check_redraws([NETLAB, "udp-file", "fetch", "127.0.0.1:%d" % srv.port, "slow.bin", "-o", out,
                            "--progress"] + SLOW, "fetch")
        self.assertEqual(srv.terminate(), 0)

    def test_put_draws_the_same_bar(self):
        srv = self.serve("--allow-upload")
        src = os.path.join(self.out, "up.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(1024 * 1024))
        # The client drops 5% of its own DATA: each loss costs it a 20 ms timeout.
        r = self.check_redraws([NETLAB, "udp-file", "put", "127.0.0.1:%d" % srv.port, src, "--progress",
                                "--simulate-loss", "0.05", "--seed", "4"] + SLOW, "put")
        self.assertIn(b"put ", r.stdout)
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
            bar_rows = [i for i, row in enumerate(rows) if "%" in row]
            if bar_rows:
                screens_with_bar += 1
                # One row, the last: a redraw that wrapped leaves the bar's tail on the next row, and
                # the next redraw starts there (log lines above it, e.g. a repeated request, are fine).
                self.assertEqual(bar_rows, [len(rows) - 1], screen)
                self.assertLessEqual(len(rows[-1].rstrip()), 59, screen)
            time.sleep(0.05)  # polling the screen: the transfer's own pace is the event
        self.assertIn("EXIT=0", screen)
        self.assertGreater(screens_with_bar, 0, "never saw the bar")
        rows = [row for row in screen.split("\n") if row.strip()]
        self.assertTrue(any(row.startswith("fetched slow.bin -> ") for row in rows), screen)
        self.assertFalse(any("%" in row for row in rows), screen)  # the bar was wiped
        self.assertEqual(srv.terminate(), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
