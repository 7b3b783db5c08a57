#!/usr/bin/python3
"""Before/after table of two bench.py results (issue 14: "show the before/after table").

  bench/compare.py bench/results/BEFORE.json bench/results/AFTER.json [--out FILE.md]

For every cell present in both: netlab's main metric (msgs/s, conns/s, KB/conn, MB/s) and CPU per
unit, before and after, their ratio, and the cell's ratio to its best reference in each run (the
targets are stated against the references, so a reference that moved with the machine's load shows
here); then every target of both runs side by side. Each run's commit and load average head it.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


def cell_key(c):
    return (c["group"], c["name"])


def fmt(v, nd=0):
    return bench.fnum(v, nd) if v is not None else "–"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    A, B = load(a.before), load(a.after)
    out = ["# netlab benchmarks: before / after\n"]
    for label, r, path in (("before", A, a.before), ("after", B, a.after)):
        out.append(f"- **{label}**: `{os.path.basename(path)}`, {r['date']}, commit {r.get('commit', '?')} "
                   f"(sources {r.get('source_commit', '?')}), load average at start `{r.get('loadavg_start', '?')}`, "
                   f"end `{r.get('loadavg_end', '?')}`; `{r['command']}`")
    out.append("\nratio = after / before (throughput: higher is better; CPU, KB: lower is better); "
               "vs ref = netlab / best reference in the same run.\n")
    out.append("| group | cell | netlab | before | after | ratio | CPU before | CPU after | CPU ratio | "
               "vs ref before | vs ref after |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    bcells = {cell_key(c): c for c in B["cells"]}
    for ca in A["cells"]:
        cb = bcells.get(cell_key(ca))
        if cb is None:
            continue
        metric, _, cpu = bench.primary(ca)
        ra, rb = bench.ratios(ca), bench.ratios(cb)
        for k in ca["contenders"]:
            if not bench.is_netlab(k):
                continue
            ma = ca["contenders"][k].get("median", {})
            mb = cb["contenders"].get(k, {}).get("median", {})
            va, vb = ma.get(metric), mb.get(metric)
            ua, ub = (ma.get(cpu), mb.get(cpu)) if cpu else (None, None)
            out.append(f"| {ca['group']} | {ca['name']} | {k} | {fmt(va)} | {fmt(vb)} | "
                       f"{fmt(vb / va, 2) if va and vb else '–'} | {fmt(ua, 2)} | {fmt(ub, 2)} | "
                       f"{fmt(ub / ua, 2) if ua and ub else '–'} | "
                       f"{fmt(ra.get(k, {}).get('ratio'), 2)} | {fmt(rb.get(k, {}).get('ratio'), 2)} |")
    out.append("\n| target | before | after |\n|---|---:|---:|")
    tb = {t["target"]: t for t in B.get("targets", [])}

    def tv(t):
        if t is None or t.get("value") is None:
            return "–"
        return f"{'**' if t['met'] else ''}{t['value']:.3f}{'**' if t['met'] else ''}"
    for t in A.get("targets", []):
        out.append(f"| {t['target']} | {tv(t)} | {tv(tb.get(t['target']))} |")
    out.append("\nBold: met.")
    text = "\n".join(out) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
