#!/usr/bin/env python3
"""sockeye against each peer, from sio-bench JSON lines: medians, server CPU efficiency,
ratios, and the issue-19 targets.

    bench/compare.py RESULTS.jsonl [--subject sockeye] [--scripts ../shared/sio-bench/scripts]

Grouping, metric extraction and medians come from sio-bench's scripts/summarize.py (imported,
not copied). On top of it this prints, per configuration, the subject's main figure, its
figure per server CPU-second (main metric / server CPU share: the headline figure), and
the ratio of both to every other peer of the same results file; then each target with
PASS / MISS and the figures it was judged on.
"""

import argparse
import json
import os
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_ORDER = ["socketioxide", "node", "python", "floor", "mock"]


def load(path, summarize):
    runs = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                runs[summarize.config_key(r)][r["label"]].append(r)
    return runs


class Figures:
    """Medians of one peer in one configuration."""

    def __init__(self, summarize, scen, rs):
        s = summarize
        cols = s.COLUMNS[scen]
        self.main = s.median(cols[0][1](r) for r in rs)
        self.runs = len(rs)
        if scen == "connect":
            self.cpu = s.median(s.g(r, "server", "cpu_pct_connecting") for r in rs)
            self.second = s.median(s.kib(s.g(r, "metrics", "rss_per_conn_bytes")) for r in rs)
            self.eff = None  # a connect burst is too short for a CPU share worth dividing by
        else:
            self.cpu = s.median(s.g(r, "server", "cpu_pct") for r in rs)
            self.second = s.median(s.lat(r, "latency", "p99_us") for r in rs)
            self.eff = s.median(per_cpu_second(s, r, cols[0][1]) for r in rs)
        self.noise = max((s.g(r, "client", "others_cpu_pct") or 0) for r in rs)


def per_cpu_second(s, r, metric):
    rate, cpu = metric(r), s.g(r, "server", "cpu_pct")
    if not rate or not cpu:
        return None
    return rate / (cpu / 100.0)


def fmt(v, spec="{:,.0f}"):
    return "–" if v is None else spec.format(v)


def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def second_label(scen):
    return "RSS/conn KiB" if scen == "connect" else "p99 ms"


def second_fmt(scen, v):
    if v is None:
        return "–"
    return f"{v:.1f}" if scen == "connect" else f"{v / 1000:.2f}"


def table(runs, summarize, subject):
    peers = sorted({l for by in runs.values() for l in by if l != subject},
                   key=lambda l: (PEER_ORDER.index(l) if l in PEER_ORDER else 99, l))
    head = ["scenario", "config", f"{subject} main", "second", "per srv CPU-s", "srv CPU%"]
    for p in peers:
        head += [f"vs {p}", f"vs {p} per CPU-s"]
    head.append("max others CPU%")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    figs = {}
    for scen in ["connect", "echo", "binary", "broadcast"]:
        keys = sorted((k for k in runs if k[0] == scen), key=lambda k: summarize.natural(k[1]))
        for k in keys:
            by = runs[k]
            f = {l: Figures(summarize, scen, rs) for l, rs in by.items()}
            figs[k] = f
            me = f.get(subject)
            if me is None:
                continue
            title = summarize.COLUMNS[scen][0][0]
            cells = [scen, k[1], f"{fmt(me.main)} {title}", f"{second_fmt(scen, me.second)} {second_label(scen)}",
                     fmt(me.eff), fmt(me.cpu)]
            for p in peers:
                other = f.get(p)
                cells.append(ratio(me.main, other.main) if other else "–")
                cells.append(ratio(me.eff, other.eff) if other else "–")
            cells.append(fmt(max(x.noise for x in f.values())))
            print("| " + " | ".join(cells) + " |")
    return figs


def targets(figs, subject):
    """Each issue-19 target, judged on the medians of the same results file."""
    rows = []

    def get(scen, config, label):
        return figs.get((scen, config), {}).get(label)

    def check(name, ok, detail):
        rows.append((name, "–" if ok is None else ("PASS" if ok else "MISS"), detail))

    def at_least(a, b, factor):
        return None if a is None or b is None else a >= factor * b

    def at_most(a, b, factor=1.0):
        return None if a is None or b is None else a <= factor * b

    # 1. Echo with more than one client: per server CPU-second ≥ 1.3× socketioxide; and the
    # distance to the floor (no target: the physical limit on this stack).
    for n in (100, 1000):
        for size in (64, 4096):
            c = f"n={n} size={size}"
            me, sx, floor = (get("echo", c, l) for l in (subject, "socketioxide", "floor"))
            if me is None:
                continue
            if sx:
                check(f"echo {c}: per CPU-s ≥ 1.3× socketioxide", at_least(me.eff, sx.eff, 1.3),
                      f"{fmt(me.eff)} vs {fmt(sx.eff)} ({ratio(me.eff, sx.eff)})")
            if floor:
                check(f"echo {c}: distance to the floor, per CPU-s", None,
                      f"{fmt(me.eff)} vs {fmt(floor.eff)} ({ratio(me.eff, floor.eff)})")
    # 3. Broadcast, all four ack-paced configurations: ≥ 1.3× socketioxide per CPU-s, p99 no
    # worse than socketioxide's.
    for k in sorted(k for k in figs if k[0] == "broadcast"):
        me, sx, floor = (figs[k].get(l) for l in (subject, "socketioxide", "floor"))
        if me is None or sx is None or "ack-paced" not in k[1]:
            continue
        check(f"broadcast {k[1]}: deliveries per CPU-s ≥ 1.3× socketioxide", at_least(me.eff, sx.eff, 1.3),
              f"{fmt(me.eff)} vs {fmt(sx.eff)} ({ratio(me.eff, sx.eff)})")
        check(f"broadcast {k[1]}: p99 no worse than socketioxide", at_most(me.second, sx.second),
              f"{second_fmt('broadcast', me.second)} ms vs {second_fmt('broadcast', sx.second)} ms")
        if floor:
            check(f"broadcast {k[1]}: distance to the floor, per CPU-s", None,
                  f"{fmt(me.eff)} vs {fmt(floor.eff)} ({ratio(me.eff, floor.eff)})")
    # 4. Open loop at 1 000 clients: rates as a share of socketioxide's saturated closed loop
    # (its echo n=1000 size=64 median in the same file). Below saturation (≤ 85 %): p99 ≤ 10 ms
    # and ≤ socketioxide's; at saturation (≥ 100 %): p99 ≤ 0.5× socketioxide's.
    sat = get("echo", "n=1000 size=64", "socketioxide")
    for k in sorted((k for k in figs if k[0] == "echo" and " open rate=" in k[1]),
                    key=lambda k: float(k[1].split("rate=")[1].rstrip("/s"))):
        me, sx = figs[k].get(subject), figs[k].get("socketioxide")
        if me is None or sx is None or sat is None or not sat.main:
            continue
        rate = float(k[1].split("rate=")[1].rstrip("/s"))
        share = rate / sat.main
        name = f"echo {k[1]} ({share:.0%} of socketioxide's saturated {fmt(sat.main)}/s)"
        figures = f"p99 {second_fmt('echo', me.second)} ms vs {second_fmt('echo', sx.second)} ms"
        if share <= 0.85:
            ok = None if me.second is None else (me.second <= 10_000 and at_most(me.second, sx.second))
            check(f"{name}: p99 ≤ 10 ms and ≤ socketioxide's", ok, figures)
        elif share >= 1.0:
            check(f"{name}: p99 ≤ 0.5× socketioxide's", at_most(me.second, sx.second, 0.5), figures)
    # 5. Memory and handshakes at 10 000 held.
    for transport in ("websocket", "polling-upgrade"):
        me = get("connect", f"n=10000 {transport}", subject)
        if me:
            ok = None if me.second is None else me.second <= 4
            check(f"connect n=10000 {transport}: RSS per idle client ≤ 4 KiB", ok,
                  f"{second_fmt('connect', me.second)} KiB")
    me, sx = get("connect", "n=10000 websocket", subject), get("connect", "n=10000 websocket", "socketioxide")
    if me and sx:
        check("connect n=10000 websocket: connections/s ≥ 1.5× socketioxide", at_least(me.main, sx.main, 1.5),
              f"{fmt(me.main)} vs {fmt(sx.main)} ({ratio(me.main, sx.main)})")
    print("| target | verdict | figures |")
    print("|---|---|---|")
    for name, verdict, detail in rows:
        print(f"| {name} | {verdict} | {detail} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--subject", default="sockeye")
    ap.add_argument("--scripts", default=os.path.join(ROOT, "..", "shared", "sio-bench", "scripts"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.scripts))
    import summarize  # sio-bench's own grouping and medians

    runs = load(args.results, summarize)
    print("Main figure: connections/s, round trips/s or deliveries/s; second: RSS per connection")
    print("(connect) or p99 latency; per srv CPU-s: main figure divided by the server's CPU share.")
    print("Ratios are sockeye's figure over the peer's (higher is better for sockeye).")
    print()
    figs = table(runs, summarize, args.subject)
    print()
    print("### Targets (issue 19)")
    print()
    targets(figs, args.subject)


if __name__ == "__main__":
    main()
