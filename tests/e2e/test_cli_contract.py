"""The command line's contract (issue 15): unknown commands named with a suggestion, `netlab help`,
netlab's own wording for every usage error, one stderr line with a hint for every failure, the
--json error event as the last stdout line, and stdin that is a directory as exit 6.
"""
import json
import os
import re
import socket
import subprocess
import unittest

from netlab_e2e import EXIT, NETLAB, NetlabTestCase, scaled, unused_port

# netlab: <command>: <what> (<hint>)   (the command part is absent for top-level errors)
FAILURE_LINE = re.compile(r"^netlab: (?:[a-z-]+(?: [a-z-]+)?: )?.+ \(.+\)$")
CLI11_WORDING = ("required but received", "is required", "were not expected", "was not expected",
                 "A subcommand is required", "Could not convert", "not in range")


class CliContract(NetlabTestCase):
    def assert_one_failure_line(self, r, code):
        self.assertEqual(r.returncode, code, r.stderr)
        lines = r.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], FAILURE_LINE)
        for raw in CLI11_WORDING:
            self.assertNotIn(raw, lines[0])
        return lines[0]

    def test_unknown_commands_get_a_suggestion(self):
        r = self.netlab("tcp", "diall", "127.0.0.1:1")
        line = self.assert_one_failure_line(r, EXIT["usage"])
        self.assertEqual(line, "netlab: tcp: unknown command 'diall' (did you mean 'dial'?)")
        r = self.netlab("tpc", "dial")
        self.assertEqual(self.assert_one_failure_line(r, EXIT["usage"]),
                         "netlab: unknown command 'tpc' (did you mean 'tcp'?)")
        r = self.netlab("udp", "xyzzy")
        line = self.assert_one_failure_line(r, EXIT["usage"])
        self.assertIn("unknown command 'xyzzy'", line)
        self.assertIn("serve, send", line)

    def test_help_command(self):
        top = self.netlab("help")
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertEqual(top.stdout, self.netlab("--help").stdout)
        self.assertIn(b"help", top.stdout)
        group = self.netlab("help", "tcp")
        self.assertEqual(group.returncode, 0)
        self.assertEqual(group.stdout, self.netlab("tcp", "--help").stdout)
        cmd = self.netlab("help", "udp", "send")
        self.assertEqual(cmd.returncode, 0)
        self.assertEqual(cmd.stdout, self.netlab("udp", "send", "--help").stdout)
        self.assertIn(b"--broadcast", cmd.stdout)
        bad = self.netlab("help", "tcp", "dail")
        self.assertEqual(self.assert_one_failure_line(bad, EXIT["usage"]),
                         "netlab: tcp: unknown command 'dail' (did you mean 'dial'?)")

    def test_usage_errors_in_netlabs_words_with_a_hint(self):
        cases = [
            (["tcp", "serve", "--mode", "echo", "--mode", "ack"], "--mode was given 2 times"),
            (["tcp", "serve", "--listen", ":1", "--listen", ":2"], "--listen was given 2 times"),
            (["tcp", "dial"], "missing argument 'target'"),
            (["udp-file", "fetch", "127.0.0.1:69"], "missing argument 'remote'"),
            (["udp-file", "fetch", "127.0.0.1:69", "a", "b", "c", "d"], "unexpected arguments 'b c d'"),
            (["udp", "send", "127.0.0.1:9", "a", "b"], "unexpected argument 'b'"),
            (["tcp", "dial", "127.0.0.1:1", "--timout", "1"], "unknown option '--timout' (did you mean '--timeout'?"),
            (["tcp", "serve", "--threads", "abc"], "--threads: 'abc' is not a whole number from 1 to 256"),
            (["udp", "serve", "--mode", "ech"], "--mode: 'ech' is not one of ack, echo, print (did you mean 'echo'?"),
            (["tcp", "dial", "127.0.0.1:1", "-m"], "--message needs a value (TEXT)"),
            (["tcp"], "missing command: serve or dial"),
            ([], "missing command group"),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                r = self.netlab(*args)
                line = self.assert_one_failure_line(r, EXIT["usage"])
                self.assertIn(expected, line)

    def test_runtime_failures_have_a_hint_and_json_error_last(self):
        port = unused_port(socket.SOCK_STREAM)
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        cases = [
            (["tcp", "dial", "127.0.0.1:%d" % port, "-m", "x"], "tcp dial", EXIT["network"]),
            (["udp", "send", "127.0.0.1:%d" % silent.getsockname()[1], "x", "--timeout", "200ms"], "udp send",
             EXIT["timeout"]),
            (["udp", "diall"], "udp", EXIT["usage"]),
            (["tcp", "serve", "--threads", "0"], "tcp serve", EXIT["usage"]),
        ]
        for args, command, code in cases:
            with self.subTest(args=args):
                r = self.netlab(*args)
                line = self.assert_one_failure_line(r, code)
                self.assertEqual(r.stdout, b"")
                r = self.netlab("--json", *args)
                self.assertEqual(self.assert_one_failure_line(r, code), line)
                last = json.loads(r.stdout.splitlines()[-1])
                self.assertEqual(last["event"], "error")
                self.assertEqual(last["command"], command)
                self.assertEqual(last["exit"], code)
                self.assertEqual(line, "netlab: %s%s (%s)" % (command + ": " if command else "", last["message"],
                                                              last["hint"]))

    def test_stdin_that_is_a_directory_is_exit_6(self):
        # Found before any connection: no server is needed, and none is reached.
        srv = self.server("udp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        tcp_port = unused_port(socket.SOCK_STREAM)
        for args in (["tcp", "dial", "127.0.0.1:%d" % tcp_port],
                     ["tcp", "dial", "127.0.0.1:%d" % tcp_port, "-m", "x", "-"],
                     ["udp", "send", "127.0.0.1:%d" % srv.port]):
            with self.subTest(args=args):
                root = os.open("/", os.O_RDONLY)
                try:
                    r = subprocess.run([NETLAB] + args, stdin=root, capture_output=True, timeout=scaled(20))
                finally:
                    os.close(root)
                line = self.assert_one_failure_line(r, EXIT["local_io"])
                self.assertIn("stdin is a directory", line)
        self.assertEqual(srv.terminate(), 0)


if __name__ == "__main__":
    unittest.main()
