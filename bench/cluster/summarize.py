#!/usr/bin/env python3
"""Markdown table of the cluster broadcast bench (bench/cluster.sh): medians per server kind
and load (ack-paced window w=N, or fixed rate N/s) over the repetitions in a JSON-lines file written by cluster-bench."""

import json
import statistics
import sys
from collections import defaultdict

ORDER = ["sockeye-redis", "node-redis", "socketioxide-redis", "sockeye-streams", "node-streams",
         "sockeye-pyredis", "python-redis", "sockeye-pyamqp", "python-amqp",
         "sockeye-postgres", "node-postgres", "sockeye-nats"]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}".replace(",", " ")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RESULTS.jsonl")
    runs = defaultdict(list)
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("scenario") != "cluster-broadcast":
                continue
            params = r["params"]
            load = (f"{params['rate']:g}/s" if params.get("rate")
                    else f"w={params['window']}")
            runs[(r["label"], load, params["n"])].append(r)
    rank = {k: i for i, k in enumerate(ORDER)}
    keys = sorted(runs, key=lambda k: (k[2], k[1].endswith("/s"), k[1], rank.get(k[0], 99), k[0]))
    print("| server + adapter | receivers | load | deliveries / server CPU-s | deliveries/s "
          "| p50 ms | p99 ms | delivered % | server CPU % | broker CPU % | others CPU % | runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        rs = runs[key]
        m = [r["metrics"] for r in rs]
        print("| " + " | ".join([
            key[0], str(key[2]), str(key[1]),
            fmt(med(x["deliveries_per_server_cpu_s"] for x in m)),
            fmt(med(x["deliveries_per_s"] for x in m)),
            fmt(med(x["latency"]["p50_us"] / 1e3 for x in m), 1),
            fmt(med(x["latency"]["p99_us"] / 1e3 for x in m), 1),
            fmt(med(x["delivered_pct"] for x in m), 2),
            fmt(med(r["server"]["cpu_pct"] for r in rs)),
            fmt(med(r["broker"]["cpu_pct"] for r in rs)),
            fmt(med(r["client"]["others_cpu_pct"] for r in rs)),
            str(len(rs)),
        ]) + " |")


if __name__ == "__main__":
    main()
