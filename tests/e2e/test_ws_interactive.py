"""End-to-end tests of `netlab ws-echo dial` interactive mode (issue 16: like wscat).

On a real terminal (a tmux pane: send-keys, capture-pane): "Connected (press Ctrl-C to quit)", `>` for
sent and `<` for received lines in colour, /ping with its RTT, /binary, /close, the server's close
code and reason, Ctrl-C closing with 1000 (exit 0). With stdin piped (-i): the same transcript, plain.
Every wait is bounded; only the tmux server and processes started here are stopped.
"""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

from netlab_e2e import EXIT, NETLAB, NetlabTestCase, scaled

ESC = "\x1b"


class Pane:
    """A private tmux server (its own -L socket) running one command in a 120x40 pane."""

    def __init__(self, command, directory):
        self.sock = "netlab-e2e-%d-%d" % (os.getpid(), time.monotonic_ns())
        self.rc_file = os.path.join(directory, "rc")
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TMUX")}
        env["TERM"] = "xterm-256color"
        # Ctrl-C reaches the whole foreground group: the wrapper shell traps it (a handler, which the
        # command does not inherit, unlike an ignored signal) so it lives to record the exit code.
        script = "trap true INT; %s; echo $? > %s" % (" ".join(shlex.quote(a) for a in command), shlex.quote(self.rc_file))
        self.tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "sh -c %s" % shlex.quote(script), env=env)
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def tmux(self, *args, env=None):
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null"] + list(args), capture_output=True,
                              check=True, timeout=scaled(10), env=env).stdout.decode("utf-8", "replace")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def type_line(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.keys("Enter")

    def screen(self, escapes=False):
        return self.tmux("capture-pane", "-p", "-t", "t", *(["-e"] if escapes else []))

    def await_screen(self, pattern, timeout=10):
        """The pane's text once it matches pattern (a regex); fails after timeout."""
        deadline = time.monotonic() + scaled(timeout)
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.05)  # nothing to wait on: the pane is polled, bounded by the deadline
        raise AssertionError("pane never showed %r within %ss; it shows:\n%s" % (pattern, timeout, text))

    def exit_code(self, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if os.path.exists(self.rc_file):
                with open(self.rc_file) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            time.sleep(0.05)
        raise AssertionError("the command did not end within %ss; pane:\n%s" % (timeout, self.screen()))

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=scaled(10))


class WsInteractiveTerminal(NetlabTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="netlab-wsi-")
        self.srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        self.url = "ws://127.0.0.1:%d/echo" % self.srv.port
        self.pane = None

    def tearDown(self):
        if self.pane:
            self.pane.close()
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        self.pane = Pane([NETLAB, "ws-echo", "dial", self.url, "-"], self.dir)
        self.pane.await_screen(r"Connected \(press Ctrl-C to quit\)")
        return self.pane

    def test_transcript_commands_and_ctrl_c(self):
        p = self.start()
        p.type_line("hello Alvin")
        text = p.await_screen(r"(?m)^< hello Alvin$")
        self.assertRegex(text, r"(?m)^> hello Alvin$")  # the typed line, rewritten with its marker
        self.assertNotRegex(text, r"(?m)^hello Alvin$")
        colours = p.screen(escapes=True)
        self.assertIn(ESC + "[", colours)  # a terminal gets colour
        p.type_line("/ping abc")
        p.await_screen(r"(?m)^< pong abc \(rtt \d+\.\d+ ms\)$")
        p.type_line("/binary 0aff")
        p.await_screen(r"(?m)^< \[binary 2 B\] 0aff$")
        p.type_line("/nope")
        p.type_line("still here")
        p.await_screen(r"(?m)^< still here$")  # an unknown command is named, the session goes on
        p.keys("C-c")
        self.assertEqual(p.exit_code(), 0, p.screen())
        p.await_screen(r'Disconnected \(code: 1000, reason: ""\)')

    def test_close_command_and_the_servers_close(self):
        p = self.start()
        p.type_line("/close 4001 bye now")
        self.assertEqual(p.exit_code(), 0, p.screen())
        p.await_screen(r'Disconnected \(code: 4001, reason: "bye now"\)')
        p.close()
        p = self.start()
        self.assertEqual(self.srv.terminate(), 0)  # the server closes every client with 1001
        self.assertEqual(p.exit_code(), 0, p.screen())
        p.await_screen(r'Disconnected \(code: 1001, reason: "server shutting down"\)')


class WsInteractivePiped(NetlabTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        self.url = "ws://127.0.0.1:%d/echo" % self.srv.port

    def test_piped_stdin_gives_a_plain_transcript(self):
        r = self.netlab("ws-echo", "dial", self.url, "-i", input=b"one\n/ping p1\n/binary 01 02\n//slash\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertNotIn(ESC, out)  # stdout is a pipe: no colour, no cursor movement
        lines = out.splitlines()
        self.assertEqual(lines[0], "Connected (press Ctrl-C to quit)")
        self.assertEqual(lines[1:5], ["> one", "> ping p1", "> [binary 2 B] 0102", "> /slash"])
        received = lines[5:-1]
        self.assertEqual([l for l in received if not l.startswith("< pong")], ["< one", "< [binary 2 B] 0102", "< /slash"])
        self.assertEqual(len([l for l in received if re.fullmatch(r"< pong p1 \(rtt \d+\.\d+ ms\)", l)]), 1, out)
        self.assertEqual(lines[-1], 'Disconnected (code: 1000, reason: "")')

    def test_bad_commands_are_named_and_the_session_goes_on(self):
        r = self.netlab("ws-echo", "dial", self.url, "-i", input=b"/close 1005\n/binary zz\n/what\nok\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"/close: '1005' is not a close code", r.stderr)
        self.assertIn(b"/binary: expected hex bytes", r.stderr)
        self.assertIn(b"unknown command /what", r.stderr)
        self.assertIn(b"< ok\n", r.stdout)

    def test_without_interactive_piped_output_stays_raw(self):
        r = self.netlab("ws-echo", "dial", self.url, input=b"one\n/ping\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"one\n/ping\n"), r.stderr)

    def test_load_mode_refuses_interactive(self):
        r = self.netlab("ws-echo", "dial", self.url, "-i", "--count", "10")
        self.assertEqual(r.returncode, EXIT["usage"], r.stderr)


if __name__ == "__main__":
    unittest.main()
