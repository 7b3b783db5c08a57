#!/usr/bin/python3
"""netlab's benchmark harness (issue 5). Run it through scripts/bench.sh, which builds everything first.

For each cell of the matrix every contender's server is started on 127.0.0.1, then driven by the SAME
client (netlab's own load mode, or bench/tools/connbench for connection rate and idle connections),
and every ws/tcp echo cell a second time by an independent client, bench/tools/go-load (Go +
gorilla/websocket, issue 17; its server CPU is sampled at the start and end of its timed window),
alternating contenders run by run (A B C A B C ...), RUNS runs each; medians are reported. For each run
the server's CPU time (utime+stime, plus reaped children, from /proc/PID/stat, summed over its process
tree) is read before and after, so CPU per message is the cost of the server alone even though the
client shares the 2 cores. Peak RSS is VmHWM (single process) or the largest sampled sum of VmRSS over
the process tree (forking servers: socat, ncat, in.tftpd).

Results: bench/results/<stamp>[-quick].json and .md (and latest[-quick].{json,md}).
A netlab feature the matrix needs that is not built yet is recorded as "missing", never faked.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import platform
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
NODE_ENV = dict(os.environ, NODE_PATH="/usr/share/nodejs")
CLIENT_GROUP = {"netlab": "", "go": ", go-load client"}  # suffix of an echo cell's group, per client


def loadavg():
    """The 1-minute load average: recorded beside every run (the machine is shared)."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None

# ----------------------------------------------------------------------------------------------
# /proc helpers


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from `state` on (index 0 = field 3)


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat_fields(d)[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(pid, forks):
    if not forks:
        return [pid]
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_seconds(pid, forks):
    """utime+stime+cutime+cstime summed over the live tree (reaped children live in cutime/cstime)."""
    total = 0
    for p in process_tree(pid, forks):
        try:
            f = _stat_fields(p)
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid, forks):
    return sum(status_kb(p, "VmRSS") for p in process_tree(pid, forks))


def listening(port, proto):
    """True when something on this host has `port` bound (tcp: in LISTEN state)."""
    files = ["/proc/net/tcp", "/proc/net/tcp6"] if proto == "tcp" else ["/proc/net/udp", "/proc/net/udp6"]
    for name in files:
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[1].split(":")[1], 16) == port and (proto != "tcp" or parts[3] == "0A"):
                        return True
        except OSError:
            pass
    return False


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# Servers


class Server:
    """One contender's server process (its own process group, so forked children stop with it)."""

    def __init__(self, name, argv, logdir, env=None, proto="tcp", port=None, forks=False, autoreap=False):
        self.name, self.argv, self.env, self.proto, self.forks = name, argv, env, proto, forks
        # A server that ignores SIGCHLD (in.tftpd) loses its children's CPU time from cutime/cstime:
        # sample the tree every 50 ms and keep each child's last reading instead.
        self.autoreap = autoreap
        self._child_cpu = {}
        self.port = port  # None: the server prints a JSON readiness line with its port
        self.log = open(os.path.join(logdir, f"server-{name}.log"), "ab")
        self.p = None
        self.peak_tree_kb = 0
        self._sampling = False

    def start(self, timeout=15):
        argv = [a.format(port=self.port) if isinstance(a, str) else a for a in self.argv]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                  env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        if self.port is None:
            buf = b""
            while time.monotonic() < deadline:
                r, _, _ = select.select([self.p.stdout], [], [], 0.1)
                if r:
                    chunk = os.read(self.p.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    buf += chunk
                    for line in buf.split(b"\n")[:-1]:
                        # netlab's text readiness line, "listening tcp 127.0.0.1:40213": the servers run
                        # without --json, which would add per-connection events (connection, closed,
                        # transfer) that the reference servers do not pay for.
                        m = re.match(rb"^listening \S+ \S*:(\d+)$", line)
                        if m:
                            self.port = int(m.group(1))
                            return self._ready()
                        # The reference servers' (uws-echo.js, node-ws-echo.js) JSON readiness line.
                        if line.startswith(b"{"):
                            try:
                                ready = json.loads(line)
                            except ValueError:
                                continue
                            if ready.get("event") == "listening" and ready.get("port"):
                                self.port = int(ready["port"])
                                return self._ready()
                if self.p.poll() is not None:
                    break
            self.stop()
            raise RuntimeError(f"{self.name}: no readiness line (see server-{self.name}.log)")
        while time.monotonic() < deadline:
            if listening(self.port, self.proto):
                return self._ready()
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name}: not listening on {self.port} (see server-{self.name}.log)")

    def _ready(self):
        threading.Thread(target=self._drain, daemon=True).start()
        if self.autoreap:
            threading.Thread(target=self._sample_children, daemon=True).start()
        return self

    def _sample_children(self):
        while self.p.poll() is None:
            for pid in process_tree(self.p.pid, True)[1:]:
                try:
                    f = _stat_fields(pid)
                    self._child_cpu[pid] = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
                except (OSError, ValueError, IndexError):
                    pass
            time.sleep(0.05)

    def _drain(self):
        try:
            while self.p.stdout.read(65536):
                pass
        except (OSError, ValueError):
            pass

    def cpu(self):
        if self.autoreap:
            return tree_cpu_seconds(self.p.pid, False) + sum(self._child_cpu.values()) / CLK
        return tree_cpu_seconds(self.p.pid, self.forks)

    def rss_kb(self):
        return tree_rss_kb(self.p.pid, self.forks)

    def hwm_kb(self):
        return max(status_kb(self.p.pid, "VmHWM"), self.peak_tree_kb)

    def sample_rss(self, interval=0.5):
        """Forking servers: sample the tree's RSS in the background while a run is going."""
        if not self.forks:
            return
        self._sampling = True

        def loop():
            while self._sampling and self.p.poll() is None:
                self.peak_tree_kb = max(self.peak_tree_kb, self.rss_kb())
                time.sleep(interval)
        threading.Thread(target=loop, daemon=True).start()

    def stop_sampling(self):
        self._sampling = False

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        if self.p is None:
            return
        self._sampling = False
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.log.close()


# ----------------------------------------------------------------------------------------------
# Running one client


def run_json_client(argv, timeout, logdir, event, env=None, cwd=None):
    """Runs a client to completion and returns its last JSON object whose event is `event`."""
    with open(os.path.join(logdir, "clients.log"), "ab") as log:
        log.write((" ".join(argv) + "\n").encode())
        log.flush()
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                           timeout=timeout, env=env, cwd=cwd)
    found = None
    for line in r.stdout.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if isinstance(j, dict) and j.get("event") == event:
            found = j
    if found is None:
        raise RuntimeError(f"client exit {r.returncode}, no {event} result: {r.stdout[-300:]!r}")
    found["exit"] = r.returncode
    return found


def run_windowed_client(argv, server, timeout, logdir):
    """Runs bench/tools/go-load, sampling the server's CPU at its window lines, so the CPU per message
    covers the timed messages only. Returns the load result with server_cpu_s set."""
    with open(os.path.join(logdir, "clients.log"), "ab") as log:
        log.write((" ".join(argv) + "\n").encode())
        log.flush()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    c0 = c1 = found = None
    try:
        for line in p.stdout:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            ev = j.get("event") if isinstance(j, dict) else None
            if ev == "window" and j.get("phase") == "start":
                c0 = server.cpu()
            elif ev == "window" and j.get("phase") == "end":
                c1 = server.cpu()
            elif ev == "load":
                found = j
        p.wait()
    finally:
        killer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    if found is None or c0 is None or c1 is None:
        raise RuntimeError(f"go-load exit {p.returncode}, no load result")
    found["exit"] = p.returncode
    found["server_cpu_s"] = c1 - c0
    return found


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ----------------------------------------------------------------------------------------------
# The harness


BASELINE = "@baseline"  # suffix of a contender served by the --baseline binary


class _Swap:
    """A view of a Bench whose netlab binary is another one (for the --baseline contenders)."""

    def __init__(self, b, nl):
        self._b, self.nl = b, nl

    def __getattr__(self, name):
        return getattr(self._b, name)


class Bench:
    def __init__(self, a):
        self.a = a
        self.nl = os.path.join(a.build, "netlab")
        self.tools = os.path.join(a.build, "bench")
        self.logdir = tempfile.mkdtemp(prefix="netlab-bench-")
        self.cells = []
        self.helps = {}
        self.t0 = time.monotonic()

    # -- feature detection: a contender needs these flags in `netlab <group> <cmd> --help`
    def has(self, group, cmd, *flags):
        key = (group, cmd)
        if key not in self.helps:
            r = subprocess.run([self.nl, group, cmd, "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            self.helps[key] = r.stdout.decode(errors="replace") if r.returncode == 0 else ""
        return all(f in self.helps[key] for f in flags)

    def say(self, msg):
        print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", flush=True)

    # -- server factories
    def srv(self, kind, **kw):
        if kind.endswith(BASELINE):
            # The same server from the --baseline binary (issue 14's before/after, alternated in one run).
            s = Bench.srv(_Swap(self, self.a.baseline), kind[:-len(BASELINE)], **kw)
            s.name = kind
            return s
        L, B = self.logdir, self.tools
        if kind == "netlab-tcp":
            return Server(kind, [self.nl, "tcp", "serve", "--mode", "echo", "--listen", "127.0.0.1:0",
                                 "--idle-timeout", "0"], L)
        if kind == "go-tcp":
            return Server(kind, [f"{B}/go-tcp-echo"], L)
        if kind == "socat":
            return Server(kind, ["socat", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=4096", "PIPE"],
                          L, port=free_port(), forks=True)
        if kind == "ncat":
            return Server(kind, ["ncat", "-l", "127.0.0.1", "{port}", "--keep-open", "--max-conns", "5000",
                                 "--exec", "/bin/cat"], L, port=free_port(), forks=True)
        if kind == "netlab-ws":
            extra = ["--idle-timeout", "0"] if self.has("ws-echo", "serve", "--idle-timeout") else []
            return Server(kind, [self.nl, "ws-echo", "serve", "--listen", "127.0.0.1:0", *extra], L,
                          proto="tcp")
        if kind == "gorilla":
            return Server(kind, [f"{B}/go-ws-echo"], L)
        if kind == "node-ws":
            return Server(kind, ["node", os.path.join(ROOT, "bench/reference/node-ws-echo.js")], L, env=NODE_ENV)
        if kind == "uws":
            return Server(kind, ["node", os.path.join(ROOT, "bench/reference/uws-echo.js")], L,
                          env=dict(os.environ, NODE_PATH=os.path.join(B, "uws", "node_modules")))
        if kind == "netlab-udp":
            return Server(kind, [self.nl, "udp", "serve", "--mode", "echo", "--listen", "127.0.0.1:0"],
                          L, proto="udp")
        if kind == "go-udp":
            return Server(kind, [f"{B}/go-udp-echo"], L, proto="udp")
        if kind == "netlab-tftp":
            return Server(kind, [self.nl, "udp-file", "serve", "--root", kw["root"], "--listen", "127.0.0.1:0",
                                 *kw.get("extra", [])], L, proto="udp")
        if kind == "tftpd-hpa":
            return Server(kind, ["/usr/sbin/in.tftpd", "--foreground", "--address", "127.0.0.1:{port}", "--secure",
                                 kw["root"], "--user", "root"], L, proto="udp",
                          port=free_port(socket.SOCK_DGRAM), forks=True, autoreap=True)
        if kind == "iperf3":
            return Server(kind, ["iperf3", "-s", "-B", "127.0.0.1", "-p", "{port}"], L, port=free_port())
        raise KeyError(kind)

    # -- load clients (all netlab's own load mode)
    def load_argv(self, proto, port, conns, size, pipeline=1):
        d = f"{self.a.duration}s"
        common = ["--connections", str(conns), "--duration", d, "--size", str(size), "--json"]
        if pipeline > 1:
            common += ["--pipeline", str(pipeline)]
        if proto == "tcp":
            return [self.nl, "tcp", "dial", f"127.0.0.1:{port}", *common]
        if proto == "ws":
            return [self.nl, "ws-echo", "dial", f"ws://127.0.0.1:{port}/echo", *common]
        if proto == "udp":
            return [self.nl, "udp", "send", f"127.0.0.1:{port}", *common]
        raise KeyError(proto)

    def load_missing(self, proto, pipeline=1):
        group, cmd = {"tcp": ("tcp", "dial"), "ws": ("ws-echo", "dial"), "udp": ("udp", "send")}[proto]
        flags = ["--connections", "--duration", "--size"] + (["--pipeline"] if pipeline > 1 else [])
        if not self.has(group, cmd, *flags):
            return f"netlab {group} {cmd} has no load mode ({' '.join(flags)}) yet"
        return None

    def server_missing(self, kind):
        kind = kind[:-len(BASELINE)] if kind.endswith(BASELINE) else kind
        need = {"netlab-tcp": ("tcp", "serve", "--mode"), "netlab-ws": ("ws-echo", "serve", "--listen"),
                "netlab-udp": ("udp", "serve", "--mode"), "netlab-tftp": ("udp-file", "serve", "--root")}
        if kind in need and not self.has(*need[kind]):
            return f"netlab {need[kind][0]} {need[kind][1]} is not built yet"
        if kind == "uws" and not os.path.exists(os.path.join(self.tools, "uws", "node_modules", "uwebsockets",
                                                             "uws.js")):
            return "uwebsockets (npm) is not installed: run bench/setup.sh BUILD_DIR"
        return None

    # -- one cell: several contenders, alternating runs
    def cell(self, group, name, kinds, run_one, params, unit="msgs", fresh=False):
        """run_one(server, kind) -> dict of metrics for one run (must include 'count' = messages or
        connections or bytes handled, used for CPU per unit)."""
        cell = {"group": group, "name": name, "params": params, "unit": unit, "contenders": {}}
        self.cells.append(cell)
        self.say(f"{group}: {name}")
        servers = {}
        for k in kinds:
            miss = self.server_missing(k)
            cell["contenders"][k] = {"runs": [], "missing": miss} if miss else {"runs": []}
        active = [k for k in kinds if not cell["contenders"][k].get("missing")]
        try:
            if not fresh:
                for k in active:
                    try:
                        servers[k] = self.srv(k, **params.get("srv", {})).start()
                    except Exception as e:  # noqa: BLE001 - recorded, the matrix goes on
                        cell["contenders"][k]["error"] = str(e)
                active = [k for k in active if k in servers]
            for i in range(self.a.runs):
                for k in active:
                    s = servers.get(k)
                    try:
                        if fresh:
                            s = self.srv(k, **params.get("srv", {})).start()
                        elif not s.alive():
                            raise RuntimeError("server died")
                        s.sample_rss()
                        la = loadavg()
                        c0 = s.cpu()
                        r = run_one(s, k)
                        time.sleep(0.2 if s.forks else 0.05)  # let forked children exit and be reaped
                        if "server_cpu_s" not in r:  # go-load's runs measure their own window
                            r["server_cpu_s"] = s.cpu() - c0
                        r["loadavg"] = la
                        s.stop_sampling()
                        if r.get("count"):
                            r["cpu_us_per_unit"] = r["server_cpu_s"] * 1e6 / r["count"]
                        r["peak_rss_kb"] = s.hwm_kb()
                        cell["contenders"][k]["runs"].append(r)
                    except Exception as e:  # noqa: BLE001
                        cell["contenders"][k]["runs"].append({"error": str(e)[:300]})
                    finally:
                        if fresh and s is not None:
                            s.stop()
        finally:
            for s in servers.values():
                s.stop()
        self.summarize(cell)
        return cell

    def summarize(self, cell):
        for k, c in cell["contenders"].items():
            ok = [r for r in c["runs"] if "error" not in r]
            c["ok_runs"] = len(ok)
            if not ok:
                continue
            keys = set().union(*(r.keys() for r in ok))
            c["median"] = {key: median([r.get(key) for r in ok]) for key in sorted(keys)
                           if all(isinstance(r.get(key), (int, float)) for r in ok if key in r)}
            c["median"]["peak_rss_kb"] = max(r.get("peak_rss_kb", 0) for r in ok)
        m = {k: c.get("median", {}) for k, c in cell["contenders"].items()}
        msg = "  ".join(f"{k}={fmt_main(cell, v)}" for k, v in m.items() if v) or "no results"
        self.say(f"  -> {msg}")

    # ------------------------------------------------------------------------------------------
    # Matrix groups

    def echo_cells(self, proto, kinds, conns, size, pipeline=1):
        """The same echo cell once per load client (--clients), netlab's first."""
        for client in self.a.clients:
            self.echo_cell(proto, kinds, conns, size, pipeline, client=client)

    def echo_cell(self, proto, kinds, conns, size, pipeline=1, label=None, client="netlab"):
        group = {"tcp": "tcp echo", "ws": "ws echo"}[proto] + CLIENT_GROUP[client]
        name = label or f"{size_label(size)} x {conns} conn" + (f", pipeline {pipeline}" if pipeline > 1 else "")
        miss = self.load_missing(proto, pipeline) if client == "netlab" else None
        if miss:
            return self.missing_cell(group, name, kinds, miss)

        def one(s, k):
            if client == "go":
                target = f"ws://127.0.0.1:{s.port}/echo" if proto == "ws" else f"127.0.0.1:{s.port}"
                argv = [f"{self.tools}/go-load", "-proto", proto, "-target", target, "-c", str(conns),
                        "-size", str(size), "-d", str(self.a.duration), "-pipeline", str(pipeline)]
                r = run_windowed_client(argv, s, self.a.duration + 90, self.logdir)
            else:
                r = run_json_client(self.load_argv(proto, s.port, conns, size, pipeline), self.a.duration + 90,
                                    self.logdir, "load")
            return {"msgs_per_s": r["msgs_per_s"], "mb_per_s": r["mb_per_s"], "p50_us": r["latency_us"]["p50"],
                    "p99_us": r["latency_us"]["p99"], "errors": r["errors"] + r.get("connect_errors", 0),
                    "count": r["messages"], **({"server_cpu_s": r["server_cpu_s"]} if "server_cpu_s" in r else {})}
        return self.cell(group, name, kinds, one, {"connections": conns, "size": size, "pipeline": pipeline,
                                                   "client": client})

    def missing_cell(self, group, name, kinds, why):
        cell = {"group": group, "name": name, "params": {}, "unit": "msgs",
                "contenders": {k: {"runs": [], "missing": why} for k in kinds}}
        self.cells.append(cell)
        self.say(f"{group}: {name}: MISSING ({why})")
        return cell

    def rate_cell(self, proto, kinds, conns=10, size=64):
        group = "connection rate"
        name = f"{proto}: {conns} workers, connect + one {size} B exchange + close"

        def one(s, k):
            argv = [f"{self.tools}/connbench", "rate", "--proto", proto, "--port", str(s.port), "--connections",
                    str(conns), "--duration", str(self.a.duration), "--size", str(size)]
            r = run_json_client(argv, self.a.duration + 60, self.logdir, "connrate")
            return {"conns_per_s": r["conns_per_s"], "p50_us": r["latency_us"]["p50"],
                    "p99_us": r["latency_us"]["p99"], "errors": r["errors"], "count": r["conns"]}
        return self.cell(group, name, kinds, one, {"connections": conns, "size": size}, unit="conns")

    def idle_cell(self, kinds, count):
        group = "ws idle"
        name = f"{count} idle connections"

        def one(s, k):
            time.sleep(0.3)
            before = s.rss_kb()
            p = subprocess.Popen([f"{self.tools}/connbench", "idle", "--port", str(s.port), "--count", str(count)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                r, _, _ = select.select([p.stdout], [], [], 120)
                if not r:
                    raise RuntimeError("connbench idle: no result within 120 s")
                ready = json.loads(p.stdout.readline())
                time.sleep(1.0)  # let the server settle (lazy allocations, GC)
                after = s.rss_kb()
                p.stdin.write(b"\n")
                p.stdin.flush()
                done = json.loads(p.stdout.readline() or b"{}")
            finally:
                try:
                    p.stdin.close()
                except OSError:
                    pass
                p.wait(30)
            n = ready["open"]
            return {"open": n, "errors": ready["errors"] + done.get("dropped", 0),
                    "open_seconds": ready["seconds"], "rss_before_kb": before, "rss_after_kb": after,
                    "kb_per_conn": (after - before) / n if n else None, "count": n}
        return self.cell(group, name, kinds, one, {"count": count}, unit="conns", fresh=True)

    def udp_cell(self, kinds, senders, size=64):
        group = "udp echo"
        name = f"{size} B x {senders} sender" + ("s" if senders > 1 else "")
        miss = self.load_missing("udp")
        if miss:
            return self.missing_cell(group, name, kinds, miss)

        def one(s, k):
            r = run_json_client(self.load_argv("udp", s.port, senders, size), self.a.duration + 90, self.logdir,
                                "load")
            return {"msgs_per_s": r["msgs_per_s"], "mb_per_s": r["mb_per_s"], "p50_us": r["latency_us"]["p50"],
                    "p99_us": r["latency_us"]["p99"], "errors": r["errors"] + r.get("connect_errors", 0),
                    "count": r["messages"]}
        return self.cell(group, name, kinds, one, {"connections": senders, "size": size})

    # TFTP: each contender = (server kind, server extra flags, client argv builder)
    def tftp_group(self, size_mib):
        group = "udp-file (TFTP)"
        root = tempfile.mkdtemp(prefix="netlab-bench-tftp-")
        outdir = tempfile.mkdtemp(prefix="netlab-bench-out-")
        fname = "big.bin"
        path = os.path.join(root, fname)
        h = hashlib.sha256()
        with open(path, "wb") as f:
            chunk = os.urandom(1 << 20)
            for i in range(size_mib):
                # Different bytes in every MiB (a repeated chunk could hide a misplaced block).
                c = bytes([i & 0xff]) + chunk[1:]
                f.write(c)
                h.update(c)
        digest = h.hexdigest()
        nbytes = size_mib << 20
        out = os.path.join(outdir, "out.bin")
        self.say(f"{group}: {size_mib} MiB file, sha256 {digest[:16]}...")

        have_fetch = self.has("udp-file", "fetch", "--blksize")
        have_loss = self.has("udp-file", "fetch", "--simulate-loss") and self.has("udp-file", "serve",
                                                                                 "--simulate-loss")

        def nl_fetch(extra):
            def argv(port):
                return [self.nl, "udp-file", "fetch", f"127.0.0.1:{port}", fname, "-o", out, "--force", "--json",
                        *extra]
            return argv

        contenders = [
            ("netlab<-netlab default", "netlab-tftp", [], nl_fetch([]), None if have_fetch else "fetch"),
            ("netlab<-netlab blksize 1428", "netlab-tftp", [], nl_fetch(["--blksize", "1428"]),
             None if have_fetch else "fetch"),
            ("tftpd-hpa<-tftp-hpa", "tftpd-hpa", [],
             lambda port: ["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", fname, out], None),
            ("tftpd-hpa<-curl", "tftpd-hpa", [],
             lambda port: ["curl", "-sS", "-o", out, f"tftp://127.0.0.1:{port}/{fname}"], None),
        ]
        for b in self.a.atftp_blksizes:
            contenders.append((f"tftpd-hpa<-atftp blksize {b}", "tftpd-hpa", [],
                               (lambda b: lambda port: ["atftp", "--option", f"blksize {b}", "-g", "-r", fname, "-l",
                                                        out, "127.0.0.1", str(port)])(b), None))
        if not self.a.quick:
            for pct in (1, 5):
                loss = ["--simulate-loss", f"{pct / 100:g}", "--seed", "7"]
                contenders.append((f"netlab<-netlab {pct}% loss", "netlab-tftp", loss, nl_fetch(loss),
                                   None if have_loss else "loss"))

        cell = {"group": group, "name": f"{size_mib} MiB file over loopback", "params": {"bytes": nbytes},
                "unit": "MiB", "contenders": {}}
        self.cells.append(cell)
        servers = {}
        for label, kind, sx, _, miss in contenders:
            if miss == "fetch" or self.server_missing(kind):
                cell["contenders"][label] = {"runs": [], "missing": "netlab udp-file serve/fetch not built yet"}
            elif miss == "loss":
                cell["contenders"][label] = {"runs": [], "missing": "netlab udp-file has no --simulate-loss yet"}
            else:
                cell["contenders"][label] = {"runs": []}
        try:
            for i in range(self.a.runs):
                for label, kind, sx, argv_of, _ in contenders:
                    c = cell["contenders"][label]
                    if c.get("missing"):
                        continue
                    s = None
                    try:
                        # A fresh server per run: VmHWM then belongs to this transfer alone.
                        s = self.srv(kind, root=root, extra=sx).start()
                        s.sample_rss(0.25)
                        if os.path.exists(out):
                            os.unlink(out)
                        # No writeback or discard of an earlier run's output lands in this one.
                        os.sync()
                        c0 = s.cpu()
                        t0 = time.monotonic()
                        with open(os.path.join(self.logdir, "clients.log"), "ab") as log:
                            argv = argv_of(s.port)
                            log.write((" ".join(argv) + "\n").encode())
                            log.flush()
                            r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=log,
                                               stdin=subprocess.DEVNULL, timeout=300)
                        secs = time.monotonic() - t0
                        time.sleep(0.2)
                        cpu = s.cpu() - c0
                        s.stop_sampling()
                        got = sha256_file(out) if os.path.exists(out) else None
                        ok = got == digest
                        run = {"seconds": secs, "mb_per_s": nbytes / secs / 1e6 if ok else 0.0,
                               "server_cpu_s": cpu, "cpu_ms_per_mib": cpu * 1000 / size_mib,
                               "exit": r.returncode, "digest_ok": ok, "peak_rss_kb": s.hwm_kb(),
                               "errors": 0 if ok else 1}
                        c["runs"].append(run)
                    except Exception as e:  # noqa: BLE001
                        c["runs"].append({"error": str(e)[:300]})
                    finally:
                        if s is not None:
                            s.stop()
            # The ceiling: one iperf3 TCP stream over loopback.
            c = cell["contenders"]["iperf3 (TCP ceiling)"] = {"runs": []}
            for i in range(self.a.runs):
                s = None
                try:
                    s = self.srv("iperf3").start()
                    j = json.loads(subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(s.port), "-t",
                                                   str(max(2, int(self.a.duration))), "-J"],
                                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                                  timeout=60).stdout)
                    rx = j["end"]["sum_received"]
                    c["runs"].append({"mb_per_s": rx["bytes"] / rx["seconds"] / 1e6, "seconds": rx["seconds"],
                                      "errors": 0})
                except Exception as e:  # noqa: BLE001
                    c["runs"].append({"error": str(e)[:300]})
                finally:
                    if s is not None:
                        s.stop()
        finally:
            for p in (path, out):
                if os.path.exists(p):
                    os.unlink(p)
            os.rmdir(root)
            os.rmdir(outdir)
        self.summarize(cell)

    # ------------------------------------------------------------------------------------------

    def with_baseline(self, kinds):
        """With --baseline, each netlab contender is followed by the same server from the baseline binary."""
        if not self.a.baseline:
            return kinds
        out = []
        for k in kinds:
            out += [k, k + BASELINE] if is_netlab(k) else [k]
        return out

    def run(self):
        a = self.a
        only = set(a.only.split(",")) if a.only else None

        def want(g):
            # "anchor" (issue 17's cells) runs only when asked for by name.
            return g in only if only is not None else g != "anchor"
        ws_kinds = self.with_baseline([k for k in ["netlab-ws", "gorilla", "node-ws", "uws"] if k not in a.without])
        tcp_kinds = self.with_baseline([k for k in ["netlab-tcp", "go-tcp", "socat", "ncat"] if k not in a.without])
        udp_kinds = self.with_baseline(["netlab-udp", "go-udp"])
        if want("anchor"):
            # Issue 17: the independent client against netlab, gorilla and uWebSockets.js.
            kinds = self.with_baseline([k for k in ["netlab-ws", "gorilla", "uws"] if k not in a.without])
            for conns, size in ((100, 64), (1, 16384), (10, 16384), (100, 16384), (1000, 16384)):
                for client in a.clients:
                    self.echo_cell("ws", kinds, conns, size, client=client)
        if a.quick:
            if want("ws"):
                self.echo_cells("ws", ws_kinds, 100, 64)
            if want("tcp"):
                self.echo_cells("tcp", tcp_kinds, 100, 64)
                self.echo_cells("tcp", tcp_kinds, 1, 65536)
            if want("udp"):
                self.udp_cell(udp_kinds, 16)
            if want("rate"):
                self.rate_cell("ws", ws_kinds)
            if want("idle"):
                self.idle_cell(ws_kinds, 1000)
            if want("tftp"):
                self.tftp_group(32)
            return
        if want("ws"):
            for size in (64, 16384):
                for conns in (1, 10, 100, 1000):
                    self.echo_cells("ws", ws_kinds, conns, size)
            self.echo_cells("ws", ws_kinds, 1, 64, pipeline=16)
        if want("tcp"):
            for size in (64, 16384):
                for conns in (1, 10, 100, 1000):
                    self.echo_cells("tcp", tcp_kinds, conns, size)
            self.echo_cells("tcp", tcp_kinds, 1, 65536)
        if want("rate"):
            self.rate_cell("ws", ws_kinds)
            self.rate_cell("tcp", tcp_kinds)
        if want("idle"):
            self.idle_cell(ws_kinds, 1000)
            self.idle_cell(ws_kinds, 10000)
        if want("udp"):
            self.udp_cell(udp_kinds, 1)
            self.udp_cell(udp_kinds, 16)
        if want("tftp"):
            self.tftp_group(256)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def size_label(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def fmt_main(cell, m):
    if "msgs_per_s" in m:
        return f"{m['msgs_per_s']:.0f}/s"
    if "conns_per_s" in m:
        return f"{m['conns_per_s']:.0f}conn/s"
    if "kb_per_conn" in m:
        return f"{m['kb_per_conn']:.1f}KB/conn"
    if "mb_per_s" in m:
        return f"{m['mb_per_s']:.0f}MB/s"
    return "?"


# ----------------------------------------------------------------------------------------------
# Report

def is_netlab(k):
    return k.startswith("netlab")


def machine():
    def sh(*cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
        except OSError:
            return ""
    lscpu = {}
    for line in sh("lscpu").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            lscpu[k.strip()] = v.strip()
    return {"cpu": lscpu.get("Model name", "?"), "nproc": os.cpu_count(), "kernel": platform.release(),
            "hypervisor": lscpu.get("Hypervisor vendor", ""), "mem_gb": round(os.sysconf("SC_PHYS_PAGES") *
                                                                            os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
            "go": sh("go", "version").strip(), "node": sh("node", "--version").strip(),
            "socat": (sh("socat", "-V").splitlines() or ["?"])[1:2],
            "netlab": sh(os.environ.get("NETLAB_BIN", "netlab"), "--version").strip()}


def primary(cell):
    """(metric, higher_is_better, cpu metric) of a cell."""
    if cell["group"] == "ws idle":
        return "kb_per_conn", False, None
    if cell["group"] == "connection rate":
        return "conns_per_s", True, "cpu_us_per_unit"
    if cell["group"].startswith("udp-file"):
        return "mb_per_s", True, "cpu_ms_per_mib"
    return "msgs_per_s", True, "cpu_us_per_unit"


def ratios(cell):
    """For each netlab contender: its primary metric and CPU over the best reference's."""
    metric, higher, cpu = primary(cell)
    refs = {k: c["median"] for k, c in cell["contenders"].items()
            if not is_netlab(k) and "median" in c and metric in c["median"] and not k.startswith("iperf3")}
    out = {}
    if not refs:
        return out
    best = (max if higher else min)(refs, key=lambda k: refs[k][metric])
    best_cpu = None
    if cpu:
        with_cpu = {k: v for k, v in refs.items() if v.get(cpu)}
        best_cpu = min(with_cpu, key=lambda k: with_cpu[k][cpu]) if with_cpu else None
    for k, c in cell["contenders"].items():
        if is_netlab(k) and "median" in c and c["median"].get(metric) is not None:
            m = c["median"]
            r = {"best_ref": best, "ratio": m[metric] / refs[best][metric] if refs[best][metric] else None}
            if best_cpu and m.get(cpu):
                r["best_cpu_ref"] = best_cpu
                r["cpu_ratio"] = m[cpu] / refs[best_cpu][cpu]
            out[k] = r
    return out


def find(cells, group, name_prefix):
    for c in cells:
        if c["group"] == group and c["name"].startswith(name_prefix):
            return c
    return None


def med(cell, k, key):
    if not cell:
        return None
    c = cell["contenders"].get(k, {})
    return c.get("median", {}).get(key)


def targets(cells, quick):
    """Issue 5's targets, each evaluated from this run's medians."""
    T = []

    def add(name, value, ok, detail):
        T.append({"target": name, "value": value, "met": ok, "detail": detail})

    def rat(a, b):
        return a / b if a is not None and b else None

    c = find(cells, "ws echo", "64 B x 100 conn")
    nl, go = med(c, "netlab-ws", "msgs_per_s"), med(c, "gorilla", "msgs_per_s")
    r = rat(nl, go)
    add("ws 64 B x 100: msgs/s >= 1.25x gorilla", r, r is not None and r >= 1.25,
        f"{fnum(nl)} vs {fnum(go)} msgs/s")
    cr = rat(med(c, "netlab-ws", "cpu_us_per_unit"), med(c, "gorilla", "cpu_us_per_unit"))
    add("ws 64 B x 100: CPU/msg <= 0.8x gorilla", cr, cr is not None and cr <= 0.8, "")
    pr = rat(med(c, "netlab-ws", "p99_us"), med(c, "gorilla", "p99_us"))
    add("ws 64 B x 100: p99 <= gorilla's", pr, pr is not None and pr <= 1.0, "")
    for conns in (1, 10, 100, 1000):
        c = find(cells, "ws echo", f"16 KiB x {conns} conn")
        if c is None:
            continue
        best = max([v for v in (med(c, "gorilla", "msgs_per_s"), med(c, "node-ws", "msgs_per_s")) if v] or [0])
        r = rat(med(c, "netlab-ws", "msgs_per_s"), best)
        add(f"ws 16 KiB x {conns}: msgs/s >= best of gorilla, node", r, r is not None and r >= 1.0, "")
    c = find(cells, "ws idle", "10000")
    v = med(c, "netlab-ws", "kb_per_conn")
    add("ws 10,000 idle: <= 12 KB per connection", v, v is not None and v <= 12,
        f"gorilla {fnum(med(c, 'gorilla', 'kb_per_conn'), 1)}, node {fnum(med(c, 'node-ws', 'kb_per_conn'), 1)}")
    for c in cells:
        if c["group"] == "tcp echo":
            r = rat(med(c, "netlab-tcp", "msgs_per_s"), med(c, "go-tcp", "msgs_per_s"))
            add(f"tcp {c['name']}: >= 1.0x Go", r, r is not None and r >= 1.0, "")
    c = find(cells, "tcp echo", "64 KiB x 1")
    for ref in ("socat", "ncat"):
        r = rat(med(c, "netlab-tcp", "msgs_per_s"), med(c, ref, "msgs_per_s"))
        add(f"tcp 64 KiB x 1: >= 3x {ref}", r, r is not None and r >= 3.0, "")
    c = find(cells, "udp echo", "64 B x 16")
    r = rat(med(c, "netlab-udp", "msgs_per_s"), med(c, "go-udp", "msgs_per_s"))
    add("udp 16 senders: replies/s >= 1.5x Go", r, r is not None and r >= 1.5, "")
    c = find(cells, "udp-file (TFTP)", "")
    if c:
        nl = med(c, "netlab<-netlab default", "mb_per_s")
        r = rat(nl, med(c, "tftpd-hpa<-tftp-hpa", "mb_per_s"))
        add("tftp: netlab<->netlab >= 50x tftpd-hpa+tftp-hpa", r, r is not None and r >= 50, "")
        at = [med(c, k, "mb_per_s") for k in c["contenders"] if k.startswith("tftpd-hpa<-atftp")]
        at = [x for x in at if x]
        r = rat(nl, max(at) if at else None)
        add("tftp: netlab<->netlab >= 1.2x tftpd-hpa+atftp (best blksize)", r, r is not None and r >= 1.2, "")
        r = rat(nl, med(c, "iperf3 (TCP ceiling)", "mb_per_s"))
        add("tftp: netlab<->netlab >= 50% of iperf3 loopback", r, r is not None and r >= 0.5, "")
        if not quick:
            v = med(c, "netlab<-netlab 5% loss", "mb_per_s")
            runs = c["contenders"].get("netlab<-netlab 5% loss", {}).get("runs", [])
            dig = bool(runs) and all(x.get("digest_ok") for x in runs)
            add("tftp: 5% loss >= 100 MB/s, digest intact", v, v is not None and v >= 100 and dig,
                f"digest {'ok' if dig else 'NOT ok / not run'}")
    # Issue 17's targets, measured with the independent client (bench/tools/go-load).
    g = "ws echo" + CLIENT_GROUP["go"]
    c = find(cells, g, "64 B x 100 conn")
    if c:
        cr = rat(med(c, "netlab-ws", "cpu_us_per_unit"), med(c, "gorilla", "cpu_us_per_unit"))
        add("go-load ws 64 B x 100: CPU/msg <= 0.8x gorilla", cr, cr is not None and cr <= 0.8, "")
        cr = rat(med(c, "netlab-ws", "cpu_us_per_unit"), med(c, "uws", "cpu_us_per_unit"))
        add("go-load ws 64 B x 100: CPU/msg <= 1.0x uWebSockets.js", cr, cr is not None and cr <= 1.0, "")
        r = rat(med(c, "netlab-ws", "msgs_per_s"), med(c, "uws", "msgs_per_s"))
        add("go-load ws 64 B x 100: msgs/s >= 1.0x uWebSockets.js", r, r is not None and r >= 1.0, "")
    for conns in (1, 10, 100, 1000):
        c = find(cells, g, f"16 KiB x {conns} conn")
        if c:
            r = rat(med(c, "netlab-ws", "msgs_per_s"), med(c, "uws", "msgs_per_s"))
            add(f"go-load ws 16 KiB x {conns}: msgs/s >= 1.0x uWebSockets.js", r, r is not None and r >= 1.0, "")
    return T


def baseline_lines(res):
    """For every netlab contender that has a NAME@baseline twin in its cell: metric and CPU, after over before."""
    rows = []
    for c in res["cells"]:
        metric, _, cpu = primary(c)
        for k, cc in c["contenders"].items():
            twin = c["contenders"].get(k + BASELINE)
            if not is_netlab(k) or k.endswith(BASELINE) or twin is None:
                continue
            a, b = cc.get("median", {}), twin.get("median", {})
            va, vb = a.get(metric), b.get(metric)
            ua, ub = (a.get(cpu), b.get(cpu)) if cpu else (None, None)
            rows.append(f"| {c['group']} | {c['name']} | {k} | {fnum(vb)} | {fnum(va)} | "
                        f"{f'{va / vb:.2f}' if va and vb else '–'} | {fnum(ub, 2)} | {fnum(ua, 2)} | "
                        f"{f'{ua / ub:.2f}' if ua and ub else '–'} |")
    if not rows:
        return []
    return ["| group | cell | server | before | after | after/before | CPU before | CPU after | CPU after/before |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|", *rows]


def anchor_lines(res):
    """Issue 17: for every go-load ws cell, netlab over uWebSockets.js and over gorilla (medians), then
    each run's msgs/s, server CPU per message and the 1-minute load when it started."""
    out = []
    for c in res["cells"]:
        if c["group"] != "ws echo" + CLIENT_GROUP["go"] or "netlab-ws" not in c["contenders"]:
            continue
        ratios_txt = []
        for ref, label in (("uws", "uWS"), ("gorilla", "gorilla")):
            m = med(c, "netlab-ws", "msgs_per_s"), med(c, ref, "msgs_per_s")
            u = med(c, "netlab-ws", "cpu_us_per_unit"), med(c, ref, "cpu_us_per_unit")
            if m[0] and m[1] and u[0] and u[1]:
                ratios_txt.append(f"netlab/{label}: msgs/s {m[0] / m[1]:.2f}×, CPU/msg {u[0] / u[1]:.2f}×")
        out.append(f"\n**{c['name']}** — " + ("; ".join(ratios_txt) or "no ratio") + "\n")
        out.append("| server | runs: msgs/s | runs: CPU µs/msg | runs: load 1m | median msgs/s | median CPU µs/msg |\n"
                   "|---|---|---|---|---:|---:|")
        for k, cc in c["contenders"].items():
            ok = [r for r in cc.get("runs", []) if "error" not in r]
            if not ok:
                out.append(f"| {k} | {cc.get('missing') or 'failed'} | | | | |")
                continue
            out.append(f"| {k} | {', '.join(fnum(r.get('msgs_per_s')) for r in ok)} | "
                       f"{', '.join(fnum(r.get('cpu_us_per_unit'), 2) for r in ok)} | "
                       f"{', '.join(fnum(r.get('loadavg'), 2) for r in ok)} | "
                       f"{fnum(med(c, k, 'msgs_per_s'))} | {fnum(med(c, k, 'cpu_us_per_unit'), 2)} |")
    return out


def fnum(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float) and nd == 0 and abs(v) < 10:
        return f"{v:.2f}"
    return f"{v:,.{nd}f}"


def markdown(res):
    out = []
    m = res["machine"]
    out.append(f"# netlab benchmark results ({'quick' if res['quick'] else 'full'} run)\n")
    out.append(f"- Date: {res['date']}  \n- Command: `{res['command']}`  \n"
               f"- Machine: {m['cpu']}, {m['nproc']} CPUs ({m['hypervisor'] or 'bare metal'}), "
               f"{m['mem_gb']} GiB, Linux {m['kernel']}  \n- {m['go']}; node {m['node']}; {m['netlab']}  \n"
               f"- Commit: {res.get('commit', '?')} (netlab's sources last changed in {res.get('source_commit', '?')}); "
               f"load average at start `{res.get('loadavg_start', '?')}`, at end `{res.get('loadavg_end', '?')}`  \n"
               f"- Load clients for the ws/tcp echo cells: {', '.join(res.get('clients', ['netlab']))}  \n"
               + (f"- Baseline (`NAME@baseline` contenders): `{res['baseline']}`  \n" if res.get("baseline") else "")
               + f""
               f"- {res['runs']} runs per contender, alternated, {res['duration']} s each; medians. "
               f"CPU = the server's user+sys time per message (per connection, per MiB) from /proc; "
               f"ratio = netlab / best reference in the same cell (throughput: higher is better; "
               f"CPU and KB: lower is better).\n")
    groups = []
    for c in res["cells"]:
        if c["group"] not in groups:
            groups.append(c["group"])
    for g in groups:
        out.append(f"\n## {g}\n")
        cells = [c for c in res["cells"] if c["group"] == g]
        metric, higher, cpu = primary(cells[0])
        if g == "ws idle":
            out.append("| cell | server | KB/conn | RSS before MB | RSS after MB | open | errors | ratio |\n"
                       "|---|---|---:|---:|---:|---:|---:|---:|")
        elif g.startswith("udp-file"):
            out.append("| cell | contenders (server <- client) | MB/s | server CPU ms/MiB | peak RSS MB | digest ok | "
                       "ratio | CPU ratio |\n|---|---|---:|---:|---:|---:|---:|---:|")
        elif g == "connection rate":
            out.append("| cell | server | conns/s | p50 µs | p99 µs | CPU µs/conn | peak RSS MB | errors | ratio | "
                       "CPU ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        else:
            out.append("| cell | server | msgs/s | MB/s | p50 µs | p99 µs | CPU µs/msg | peak RSS MB | errors | "
                       "ratio | CPU ratio | load 1m |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in cells:
            rs = ratios(c)
            for k, cc in c["contenders"].items():
                name = f"**{k}**" if is_netlab(k) else k
                if cc.get("missing"):
                    out.append(f"| {c['name']} | {name} | missing: {cc['missing']} |")
                    continue
                if "median" not in cc:
                    errs = [r.get("error") for r in cc["runs"] if "error" in r] or [cc.get("error", "no runs")]
                    out.append(f"| {c['name']} | {name} | failed: {str(errs[0])[:120]} |")
                    continue
                mm = cc["median"]
                r = rs.get(k, {})
                ratio = f"{r['ratio']:.2f}× {r['best_ref']}" if r.get("ratio") else ""
                cratio = f"{r['cpu_ratio']:.2f}× {r['best_cpu_ref']}" if r.get("cpu_ratio") else ""
                errs = sum(x.get("errors", 0) for x in cc["runs"] if "error" not in x)
                failed = sum(1 for x in cc["runs"] if "error" in x)
                errtxt = f"{errs}" + (f" ({failed} runs failed)" if failed else "")
                rss = fnum(mm.get("peak_rss_kb", 0) / 1024, 1) if mm.get("peak_rss_kb") else "–"
                if g == "ws idle":
                    out.append(f"| {c['name']} | {name} | {fnum(mm.get('kb_per_conn'), 1)} | "
                               f"{fnum(mm['rss_before_kb'] / 1024, 1)} | {fnum(mm['rss_after_kb'] / 1024, 1)} | "
                               f"{fnum(mm['open'])} | {errtxt} | {ratio} |")
                elif g.startswith("udp-file"):
                    dig = all(x.get("digest_ok", True) for x in cc["runs"] if "error" not in x)
                    out.append(f"| {c['name']} | {name} | {fnum(mm.get('mb_per_s'), 0)} | "
                               f"{fnum(mm.get('cpu_ms_per_mib'), 2)} | {rss} | {'yes' if dig else 'NO'} | "
                               f"{ratio} | {cratio} |")
                elif g == "connection rate":
                    out.append(f"| {c['name']} | {name} | {fnum(mm.get('conns_per_s'))} | {fnum(mm.get('p50_us'))} | "
                               f"{fnum(mm.get('p99_us'))} | {fnum(mm.get('cpu_us_per_unit'), 1)} | {rss} | "
                               f"{errtxt} | {ratio} | {cratio} |")
                else:
                    las = [x["loadavg"] for x in cc["runs"] if x.get("loadavg") is not None]
                    la = f"{min(las):.1f}–{max(las):.1f}" if las else "–"
                    out.append(f"| {c['name']} | {name} | {fnum(mm.get('msgs_per_s'))} | {fnum(mm.get('mb_per_s'), 1)}"
                               f" | {fnum(mm.get('p50_us'))} | {fnum(mm.get('p99_us'))} | "
                               f"{fnum(mm.get('cpu_us_per_unit'), 2)} | {rss} | {errtxt} | {ratio} | {cratio} | {la} |")
    ab = baseline_lines(res)
    if ab:
        out.append("\n## Before / after in this run (--baseline, alternated)\n")
        out.extend(ab)
    anchor = anchor_lines(res)
    if anchor:
        out.append("\n## Issue 17: netlab against uWebSockets.js and gorilla, independent client (go-load)\n")
        out.extend(anchor)
    out.append("\n## Targets (issues 5 and 17)\n")
    out.append("| target | value | met |\n|---|---:|---|")
    for t in res["targets"]:
        v = t["value"]
        # Three decimals: a ratio of 1.248 must not read as the 1.25 it misses.
        vs = "–" if v is None else f"{v:.3f}"
        met = "**yes**" if t["met"] else ("no" if v is not None else "not measured")
        det = f" ({t['detail']})" if t.get("detail") else ""
        out.append(f"| {t['target']}{det} | {vs} | {met} |")
    return "\n".join(out) + "\n"


def git(*args):
    r = subprocess.run(["git", "-C", ROOT, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.stdout.decode().strip() if r.returncode == 0 else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--quick", action="store_true", help="reduced matrix, under 2 minutes")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=None, help="seconds per load run (default 2, quick 1)")
    ap.add_argument("--only", default="", help="comma list of groups: ws,tcp,rate,idle,udp,tftp,anchor (issue "
                    "17: ws 64 B x 100 and 16 KiB cells, netlab vs gorilla vs uWebSockets.js)")
    ap.add_argument("--clients", default="netlab,go",
                    help="load clients for the ws/tcp echo cells: netlab (its own load mode), go (bench/tools/go-load)")
    ap.add_argument("--baseline", default="", help="another netlab binary (e.g. the commit before a change): its "
                    "servers join every echo, rate, idle and udp cell as NAME@baseline, alternated with the others")
    ap.add_argument("--without", default="", help="comma list of contenders to leave out (e.g. uws,node-ws)")
    ap.add_argument("--atftp-blksizes", default="1428,8192,65464")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--tag", default="", help="suffix for the result file names")
    a = ap.parse_args()
    a.duration = a.duration or (1.0 if a.quick else 2.0)
    a.clients = [c for c in a.clients.split(",") if c]
    if not a.clients or any(c not in CLIENT_GROUP for c in a.clients):
        ap.error("--clients: a comma list of netlab, go")
    a.without = set(x for x in a.without.split(",") if x)
    a.atftp_blksizes = [int(x) for x in a.atftp_blksizes.split(",") if x]
    if a.quick:
        a.atftp_blksizes = a.atftp_blksizes[-1:]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.environ["NETLAB_BIN"] = os.path.join(a.build, "netlab")
    b = Bench(a)
    print(f"logs: {b.logdir}", flush=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    with open("/proc/loadavg") as f:
        loadavg_start = f.read().strip()
    try:
        b.run()
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", flush=True)
    res = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "quick": a.quick, "runs": a.runs, "duration": a.duration,
           "commit": git("rev-parse", "--short=12", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain",
                                                                                                   "--", "lib", "cmd") else ""),
           "source_commit": git("log", "-1", "--format=%h %cs", "--", "lib", "cmd", "CMakeLists.txt"),
           "baseline": a.baseline or None, "loadavg_start": loadavg_start, "loadavg_end": open("/proc/loadavg").read().strip(), "clients": a.clients,
           "command": "scripts/bench.sh " + " ".join(sys.argv[1:]), "machine": machine(),
           "wall_seconds": round(time.monotonic() - b.t0, 1), "cells": b.cells}
    for c in b.cells:
        c["ratios"] = ratios(c)
    res["targets"] = targets(b.cells, a.quick)
    os.makedirs(a.out, exist_ok=True)
    stem = started.strftime("%Y%m%dT%H%MZ") + ("-quick" if a.quick else "") + (f"-{a.tag}" if a.tag else "")
    md = markdown(res)
    # A partial run (--only) does not replace latest[-quick], which stands for a whole matrix.
    for name in (stem,) if a.only else (stem, "latest-quick" if a.quick else "latest"):
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(res, f, indent=1)
        with open(os.path.join(a.out, name + ".md"), "w") as f:
            f.write(md)
    print(md)
    print(f"wrote {a.out}/{stem}.md and .json ({res['wall_seconds']} s)")


if __name__ == "__main__":
    main()
