"""Every --json line of every command validates against docs/events.schema.json (issue 15).

The vocabulary is one contract for all commands (docs/cli.md): each test runs commands with --json
(servers, clients, load modes, failures), collects every stdout line and validates each against the
schema; failures must end stdout with the `error` event. Real binary on 127.0.0.1:0 only.
"""
import base64
import json
import os
import shutil
import socket
import tempfile
import unittest

import jsonschema

from netlab_e2e import EXIT, NETLAB, NetlabTestCase, scaled, unused_port

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "../../docs/events.schema.json")
with open(SCHEMA_PATH) as f:
    SCHEMA = json.load(f)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class JsonEvents(NetlabTestCase):
    def validate_lines(self, raw, source):
        """Parses and validates every stdout line; returns the events."""
        events = []
        for line in raw.split(b"\n"):
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                self.fail("%s: not JSON: %r" % (source, line))
            errors = sorted(e.message for e in VALIDATOR.iter_errors(ev))
            self.assertEqual(errors, [], "%s: %r" % (source, ev))
            events.append(ev)
        return events

    def run_json(self, *args, input=None, timeout=20):
        r = self.netlab("--json", *args, input=input, timeout=timeout)
        return r, self.validate_lines(r.stdout, " ".join(args))

    def stop_server(self, srv):
        self.assertEqual(srv.terminate(), 0, srv.stderr())
        rest = srv.stdout_rest()
        return self.validate_lines(b"\n".join(srv.lines) + b"\n" + rest, " ".join(srv.args))

    def assert_error_last(self, r, events, command, code):
        self.assertEqual(r.returncode, code, r.stderr)
        self.assertTrue(events, r.stderr)
        last = events[-1]
        self.assertEqual(last["event"], "error")
        self.assertEqual(last["command"], command)
        self.assertEqual(last["exit"], code)
        # The stderr line stays, with the same message and hint.
        self.assertIn(("%s (%s)" % (last["message"], last["hint"])).encode(), r.stderr)

    def test_schema_is_valid_and_covers_the_vocabulary(self):
        jsonschema.Draft202012Validator.check_schema(SCHEMA)
        for ev in ("listening", "connected", "connection", "message", "data", "reply", "datagram", "ping",
                   "pong", "closed", "transfer", "fetched", "put", "load", "error"):
            self.assertIn(ev, SCHEMA["properties"]["event"]["enum"])
        # Payloads are text or base64, never both, never a raw "from" instead of "peer".
        bad = [{"event": "data", "bytes": 1},
               {"event": "data", "bytes": 1, "text": "x", "base64": "eA=="},
               {"event": "reply", "from": "127.0.0.1:1", "bytes": 1, "text": "x"},
               {"event": "closed", "peer": "127.0.0.1:1", "sent": 1, "received": 1},
               {"event": "error", "command": "tcp dial", "exit": 3, "message": "x"}]
        for ev in bad:
            self.assertFalse(VALIDATOR.is_valid(ev), ev)

    def test_tcp_serve_and_dial(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        r, events = self.run_json("tcp", "dial", "127.0.0.1:%d" % srv.port, "-m", "hello", "--half-close")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([e["event"] for e in events][0], "connected")
        self.assertEqual(events[-1]["event"], "closed")
        self.assertEqual(events[-1]["bytes_out"], 5)
        self.assertEqual("".join(e["text"] for e in events if e["event"] == "data"), "hello")
        # Binary bytes come back as base64, never U+FFFD.
        r, events = self.run_json("tcp", "dial", "127.0.0.1:%d" % srv.port, "-e", "-m", "\\xff\\x00A",
                                  "--half-close")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = b"".join(base64.b64decode(e["base64"]) for e in events if e["event"] == "data")
        self.assertEqual(data, b"\xff\x00A")
        server_events = self.stop_server(srv)
        kinds = [e["event"] for e in server_events]
        self.assertEqual(kinds.count("connection"), 2, kinds)
        self.assertEqual(kinds.count("closed"), 2, kinds)

    def test_tcp_load_and_failures(self):
        srv = self.server("tcp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        r, events = self.run_json("tcp", "dial", "127.0.0.1:%d" % srv.port, "--count", "50", "--size", "16")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(events[-1]["event"], "load")
        self.stop_server(srv)
        port = unused_port(socket.SOCK_STREAM)
        r, events = self.run_json("tcp", "dial", "127.0.0.1:%d" % port, "-m", "x")
        self.assert_error_last(r, events, "tcp dial", EXIT["network"])
        r, events = self.run_json("tcp", "diall", "127.0.0.1:1")
        self.assert_error_last(r, events, "tcp", EXIT["usage"])
        self.assertEqual(events[-1]["hint"], "did you mean 'dial'?")
        r, events = self.run_json("tcp", "serve", "--mode", "echo", "--mode", "ack")
        self.assert_error_last(r, events, "tcp serve", EXIT["usage"])

    def test_udp_serve_send_print_and_load(self):
        srv = self.server("udp", "serve", "--listen", "127.0.0.1:0", "--mode", "echo")
        r, events = self.run_json("udp", "send", "127.0.0.1:%d" % srv.port, "ping")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(events[0]["event"], "reply")
        self.assertEqual(events[0]["text"], "ping")
        self.assertEqual(events[0]["peer"], "127.0.0.1:%d" % srv.port)
        r, events = self.run_json("udp", "send", "127.0.0.1:%d" % srv.port, input=b"\xfe\xff")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(base64.b64decode(events[0]["base64"]), b"\xfe\xff")
        r, events = self.run_json("udp", "send", "127.0.0.1:%d" % srv.port, "--count", "20", "--size", "32")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(events[-1]["event"], "load")
        self.stop_server(srv)

        printer = self.server("udp", "serve", "--listen", "127.0.0.1:0", "--mode", "print")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.sendto(b"who\n", ("127.0.0.1", printer.port))
            ev = printer.await_json("datagram")
            self.assertEqual(ev["peer"], "127.0.0.1:%d" % s.getsockname()[1])
        self.stop_server(printer)

        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        r, events = self.run_json("udp", "send", "127.0.0.1:%d" % silent.getsockname()[1], "x",
                                  "--timeout", "300ms")
        self.assert_error_last(r, events, "udp send", EXIT["timeout"])

    def test_ws_echo_serve_dial_and_load(self):
        srv = self.server("ws-echo", "serve", "--listen", "127.0.0.1:0")
        url = "ws://127.0.0.1:%d/echo" % srv.port
        r, events = self.run_json("ws-echo", "dial", url, "-m", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("message", [e["event"] for e in events])
        r, events = self.run_json("ws-echo", "dial", url, "--count", "20", "--size", "16")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(events[-1]["event"], "load")
        self.stop_server(srv)
        port = unused_port(socket.SOCK_STREAM)
        r, events = self.run_json("ws-echo", "dial", "ws://127.0.0.1:%d/echo" % port, "-m", "x")
        self.assert_error_last(r, events, "ws-echo dial", EXIT["network"])

    def test_udp_file_serve_and_fetch(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        with open(os.path.join(root, "f.bin"), "wb") as f:
            f.write(os.urandom(3000))
        srv = self.server("udp-file", "serve", "--root", root, "--listen", "127.0.0.1:0")
        out = os.path.join(root, "out.bin")
        r, events = self.run_json("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "f.bin", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(events[-1]["event"], "fetched")
        r, events = self.run_json("udp-file", "fetch", "127.0.0.1:%d" % srv.port, "missing.bin", "-o",
                                  os.path.join(root, "m.bin"))
        self.assertNotEqual(r.returncode, 0)
        self.assert_error_last(r, events, "udp-file fetch", r.returncode)
        self.stop_server(srv)


if __name__ == "__main__":
    unittest.main()
