#!/usr/bin/python3
"""Alternated A/B (A B C A B C ...) of ws or tcp echo servers under bench/tools/go-load (issue 17).

Each contender is a server command line that prints a JSON readiness line with its port (netlab,
bench/reference/*); all are started once, then driven in turn RUNS times. Per run: msgs/s, the
server's CPU per message over go-load's timed window (utime+stime from /proc/PID/stat) split into
user and system, and the 1-minute load average when the run started. Medians at the end; JSON to
--out. Example (variants of netlab's flags against uWebSockets.js):

  bench/ab.py --go-load build-release/bench/go-load --conns 100 --size 64 --runs 5 \\
      'threads2=build-release/netlab ws-echo serve --listen 127.0.0.1:0 --json' \\
      'threads1=build-release/netlab ws-echo serve --listen 127.0.0.1:0 --json --threads 1' \\
      'uws=env NODE_PATH=build-release/bench/uws/node_modules node bench/reference/uws-echo.js'
"""
import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the harness: Server, run_windowed_client, /proc readers)


class SplitServer(bench.Server):
    """A Server whose cpu() also remembers the user/system split of its last reading."""

    def cpu(self):
        f = bench._stat_fields(self.p.pid)
        self.last_split = (int(f[11]) / bench.CLK, int(f[12]) / bench.CLK)
        return sum(self.last_split)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("contenders", nargs="+", help="NAME=COMMAND LINE (prints a JSON readiness line)")
    ap.add_argument("--go-load", required=True)
    ap.add_argument("--proto", default="ws", choices=["ws", "tcp"])
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    logdir = tempfile.mkdtemp(prefix="netlab-ab-")
    servers, results = {}, {}
    try:
        for spec in a.contenders:
            name, cmd = spec.split("=", 1)
            servers[name] = SplitServer(name, shlex.split(cmd), logdir).start()
            results[name] = []
        for i in range(a.runs):
            for name, s in servers.items():
                target = f"ws://127.0.0.1:{s.port}/echo" if a.proto == "ws" else f"127.0.0.1:{s.port}"
                la = bench.loadavg()
                split = {}

                class Probe:  # samples the split at go-load's window lines
                    def cpu(self_inner):
                        v = s.cpu()
                        split.setdefault("start", s.last_split)
                        split["end"] = s.last_split
                        return v
                argv = [a.go_load, "-proto", a.proto, "-target", target, "-c", str(a.conns), "-size", str(a.size),
                        "-d", str(a.duration)]
                r = bench.run_windowed_client(argv, Probe(), a.duration + 60, logdir)
                n = r["messages"] or 1
                run = {"msgs_per_s": r["msgs_per_s"], "cpu_us": r["server_cpu_s"] * 1e6 / n,
                       "user_us": (split["end"][0] - split["start"][0]) * 1e6 / n,
                       "sys_us": (split["end"][1] - split["start"][1]) * 1e6 / n,
                       "p99_us": r["latency_us"]["p99"], "errors": r["errors"] + r["connect_errors"], "loadavg": la}
                results[name].append(run)
                print(f"run {i + 1} {name:12s} {run['msgs_per_s']:9.0f} msgs/s  {run['cpu_us']:6.2f} µs/msg "
                      f"(user {run['user_us']:.2f} sys {run['sys_us']:.2f})  load {la}", flush=True)
    finally:
        for s in servers.values():
            s.stop()
    print(f"\nmedians, {a.proto} {a.size} B x {a.conns}, {a.runs} alternated {a.duration:g} s runs (go-load):")
    for name, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in ("msgs_per_s", "cpu_us", "user_us", "sys_us")}
        print(f"  {name:12s} {m['msgs_per_s']:9.0f} msgs/s  {m['cpu_us']:6.2f} µs/msg (user {m['user_us']:.2f} "
              f"sys {m['sys_us']:.2f})  loads {', '.join(str(r['loadavg']) for r in runs)}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"proto": a.proto, "size": a.size, "conns": a.conns, "duration": a.duration,
                       "contenders": {spec.split('=', 1)[0]: spec.split('=', 1)[1] for spec in a.contenders},
                       "runs": results}, f, indent=1)


if __name__ == "__main__":
    main()
