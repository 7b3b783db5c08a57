"""Hostile peers against `netlab udp serve` (issue 13, hostile-peer suite, udp part).

Attacks: malformed, empty and maximum-size datagrams; the reply loops of CVE-2024-2169 (a spoofed
datagram whose source is the server itself, or another echo server); privileged source ports; a
flood while a normal client still gets its answer. Each asserts: a normal client is answered, memory
stays under a stated bound (VmHWM), the server goes idle again (CPU time from /proc), and SIGTERM
exits 0. Spoofed sources need a raw socket (root or CAP_NET_RAW); those tests skip without it.
Only loopback; every loop bounded in count and time; only processes started here are stopped.
"""
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
import unittest

from netlab_e2e import MEM_SLACK, NetlabTestCase, cpu_seconds, scaled, vm_kib

RSS_BOUND_KB = (48 << 10) + (MEM_SLACK >> 10)




def raw_socket():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    except PermissionError:
        return None
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    return s


def spoof(raw, src, dst, payload):
    """Sends one UDP datagram from `src` (address, port) to `dst`, whatever socket owns src."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))  # the kernel fills id and checksum
    raw.sendto(ip + udp, (dst[0], 0))


def ask(port, data, timeout=0.5, retries=10):
    """A normal client: one request, retried (UDP may drop under a flood); the reply or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(scaled(timeout))
        for _ in range(retries + 1):
            s.sendto(data, ("127.0.0.1", port))
            try:
                while True:
                    reply, _ = s.recvfrom(65536)
                    if reply.endswith(data):
                        return reply
            except socket.timeout:
                continue
    return None


def idle_within(pid, seconds, window=0.5):
    """True once the process uses under 10% of a CPU over `window`, checked for up to `seconds`."""
    deadline = time.monotonic() + scaled(seconds)
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)  # a measurement window, not a synchronisation
        if cpu_seconds(pid) - before < 0.1 * window:
            return True
    return False


class HostileUdp(NetlabTestCase):
    def serve(self, *args):
        srv = self.server("udp", "serve", "--listen", "127.0.0.1:0", *args)
        self.assertIsNotNone(ask(srv.port, b"hello"))
        return srv

    def stop(self, srv, what):
        """SIGTERM (exit 0), the memory bound, and the server's totals from its last log line."""
        hwm = vm_kib(srv.pid, "VmHWM")
        self.assertEqual(srv.terminate(), 0, srv.stderr()[-2000:])
        self.assertLess(hwm, RSS_BOUND_KB)
        m = re.search(r"stopped: (\d+) datagram\(s\) in .* (\d+) dropped, \d+ truncated(?:, (\d+) unanswered)?",
                      srv.stderr())
        self.assertTrue(m, srv.stderr()[-2000:])
        print("\n  %s: peak RSS %d KB, %s datagrams in, %s unanswered" % (what, hwm, m.group(1), m.group(3)))
        return int(m.group(1))

    def raw(self):
        r = raw_socket()
        if r is None:
            self.skipTest("spoofing a source address needs a raw socket (root or CAP_NET_RAW)")
        self.addCleanup(r.close)
        return r

    def test_malformed_empty_and_largest_datagrams(self):
        for mode in ("echo", "ack"):
            with self.subTest(mode=mode):
                srv = self.serve("--mode", mode)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(scaled(5))
                    s.connect(("127.0.0.1", srv.port))
                    rnd = random.Random(13)
                    cases = [b"", b"\0", b"\xff" * 3, b"{msg}{peer}{", b"\r\n" * 100, os.urandom(65507)]
                    cases += [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 1500))) for _ in range(200)]
                    for data in cases:
                        s.send(data)
                        reply = s.recv(65536)
                        if mode == "echo":
                            self.assertEqual(reply, data)
                        else:  # the template around it, cut to the largest datagram
                            self.assertEqual(reply, (b"server received: " + data)[:65507])
                self.assertEqual(ask(srv.port, b"normal"), b"normal" if mode == "echo" else b"server received: normal")
                self.stop(srv, "malformed datagrams (%s)" % mode)

    def test_spoofed_datagram_from_the_server_itself_is_not_answered(self):
        raw = self.raw()
        for mode in ("echo", "ack"):
            with self.subTest(mode=mode):
                srv = self.serve("--mode", mode)
                me = ("127.0.0.1", srv.port)
                spoof(raw, me, me, b"loop me")  # answering it would be answering itself, forever
                self.assertTrue(idle_within(srv.pid, 5), "the server keeps talking to itself")
                self.assertIsNotNone(ask(srv.port, b"normal"))
                n = self.stop(srv, "spoofed self-source (%s)" % mode)
                self.assertLessEqual(n, 3)  # hello, the spoofed one, normal
                self.assertIn("this server's own address", srv.stderr())

    def test_two_echo_servers_do_not_loop_forever(self):
        raw = self.raw()
        for a_mode, b_mode in (("echo", "echo"), ("ack", "echo"), ("ack", "ack")):
            with self.subTest(a=a_mode, b=b_mode):
                a = self.serve("--mode", a_mode)
                b = self.serve("--mode", b_mode)
                # One datagram "from B" to A: A answers B, B answers A, ... (CVE-2024-2169).
                spoof(raw, ("127.0.0.1", b.port), ("127.0.0.1", a.port), b"ping-pong")
                self.assertTrue(idle_within(a.pid, 10) and idle_within(b.pid, 5), "the two servers still loop")
                self.assertIsNotNone(ask(a.port, b"normal"))
                self.assertIsNotNone(ask(b.port, b"normal"))
                na, nb = self.stop(a, "loop A (%s)" % a_mode), self.stop(b, "loop B (%s)" % b_mode)
                # echo/echo and ack/echo end after --loop-limit (256) bounces; two ack servers first
                # grow the datagram to 65,507 bytes until it repeats (4,370 bounces measured).
                self.assertLess(na + nb, 2000 if a_mode == "echo" or b_mode == "echo" else 20000)
                self.assertIn("our own replies back", a.stderr() + b.stderr())

    def test_privileged_source_port_is_not_answered_unless_loop_limit_0(self):
        port = None
        for candidate in range(1000, 700, -7):  # a free privileged port (binding one needs root)
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", candidate))
                port = candidate
                break
            except PermissionError:
                s.close()
                self.skipTest("binding a port below 1024 needs root")
            except OSError:
                s.close()
        self.assertIsNotNone(port)
        self.addCleanup(s.close)
        s.settimeout(scaled(0.5))
        guarded = self.serve("--mode", "echo")
        open_ = self.serve("--mode", "echo", "--loop-limit", "0")
        s.sendto(b"from a server port", ("127.0.0.1", guarded.port))
        with self.assertRaises(socket.timeout):
            s.recvfrom(65536)
        s.sendto(b"from a server port", ("127.0.0.1", open_.port))
        self.assertEqual(s.recvfrom(65536)[0], b"from a server port")
        self.stop(guarded, "privileged source port")
        self.stop(open_, "privileged source port, --loop-limit 0")

    def test_flood_while_a_normal_client_is_answered(self):
        srv = self.serve("--mode", "echo")
        flood = ("import socket, time, os\n"
                 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                 "end = time.monotonic() + 3; n = 0; m = os.urandom(64)\n"
                 "while time.monotonic() < end:\n"
                 "    for _ in range(100):\n"
                 "        try: s.sendto(m, ('127.0.0.1', %d)); n += 1\n"
                 "        except OSError: pass\n"
                 "print(n)\n") % srv.port
        floods = [subprocess.Popen([sys.executable, "-c", flood], stdout=subprocess.PIPE) for _ in range(2)]
        try:
            answered = 0
            start = time.monotonic()
            i = 0
            while time.monotonic() - start < 2.5 and i < 200:
                answered += ask(srv.port, b"normal %d" % i, timeout=0.2, retries=15) is not None
                i += 1
            sent = sum(int(f.communicate(timeout=scaled(15))[0]) for f in floods)
        finally:
            for f in floods:
                if f.poll() is None:
                    f.kill()
                    f.wait(5)
        print("\n  flood: %d datagrams in 3 s from 2 senders; normal client %d of %d answered" % (sent, answered, i))
        self.assertEqual(answered, i)
        self.assertGreater(i, 5)
        self.assertTrue(idle_within(srv.pid, 5))
        self.stop(srv, "flood")


if __name__ == "__main__":
    unittest.main()
