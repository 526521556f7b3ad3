#!/usr/bin/env python3
"""Plots the long soak's samples to a PNG and checks that they stay flat after warm-up.

    python3 tests/soak/plot.py SAMPLES.csv OUT.png [WARMUP_SECONDS]

SAMPLES.csv: a header `t,<name>_rss_kib,<name>_fds,...` then one row per sample (t in seconds).
The PNG (standard library only: no plotting package is installed for this) has two panels,
RSS on top and open file descriptors below, each series scaled to its panel's maximum, one
colour per process in header order (printed on stdout), a grey line at the end of warm-up and
light lines every 10 minutes.

Flat means: for every series whose name does not start with `restarted_` (a node restarted
during the run starts again from zero), the mean of the last third of the samples after
warm-up is at most 15 % (RSS, plus 2 MiB) or 8 descriptors above the mean of the first third.
Exits 1 when a series is not flat, 2 on bad input.
"""

import csv
import struct
import sys
import zlib

WIDTH, HEIGHT, MARGIN = 960, 560, 20
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def png(path, pixels):
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)))
        out.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        out.write(chunk(b"IEND", b""))


def line(pixels, x0, y0, x1, y1, colour):
    steps = max(abs(x1 - x0), abs(y1 - y0), 1)
    for i in range(steps + 1):
        x = round(x0 + (x1 - x0) * i / steps)
        y = round(y0 + (y1 - y0) * i / steps)
        for dy in (0, 1):
            if 0 <= x < WIDTH and 0 <= y + dy < HEIGHT:
                row = pixels[y + dy]
                row[3 * x : 3 * x + 3] = bytearray(colour)


def panel(pixels, top, bottom, times, series, t_max, warmup):
    left, right = MARGIN, WIDTH - MARGIN
    for x in range(left, right):
        for y in (top, bottom):
            pixels[y][3 * x : 3 * x + 3] = bytearray((0, 0, 0))
    tick = 600
    while tick < t_max:
        x = left + round((right - left) * tick / t_max)
        line(pixels, x, top, x, bottom, (225, 225, 225))
        tick += 600
    if 0 < warmup < t_max:
        x = left + round((right - left) * warmup / t_max)
        line(pixels, x, top, x, bottom, (150, 150, 150))
    for index, (_, values) in enumerate(series):
        peak = max(values) or 1
        points = [
            (left + round((right - left) * t / t_max), bottom - round((bottom - top - 4) * v / peak))
            for t, v in zip(times, values)
        ]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            line(pixels, x0, y0, x1, y1, COLOURS[index % len(COLOURS)])


def flat(name, values, times, warmup):
    kept = [v for t, v in zip(times, values) if t >= warmup]
    if len(kept) < 3:
        return True, "too few samples after warm-up"
    third = max(len(kept) // 3, 1)
    first = sum(kept[:third]) / third
    last = sum(kept[-third:]) / third
    allowed = first * 1.15 + 2048 if name.endswith("_rss_kib") else first + 8
    return last <= allowed, f"first third {first:.0f}, last third {last:.0f}, allowed {allowed:.0f}"


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        print("no samples", file=sys.stderr)
        return 2
    header, data = rows[0], [[float(x) for x in row] for row in rows[1:] if row]
    warmup = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
    times = [row[0] for row in data]
    t_max = max(times[-1], 1.0)
    columns = {name: [row[i] for row in data] for i, name in enumerate(header) if i > 0}
    rss = [(n, v) for n, v in columns.items() if n.endswith("_rss_kib")]
    fds = [(n, v) for n, v in columns.items() if n.endswith("_fds")]
    pixels = [bytearray(b"\xff" * (3 * WIDTH)) for _ in range(HEIGHT)]
    middle = HEIGHT // 2
    panel(pixels, MARGIN, middle - MARGIN // 2, times, rss, t_max, warmup)
    panel(pixels, middle + MARGIN // 2, HEIGHT - MARGIN, times, fds, t_max, warmup)
    png(sys.argv[2], pixels)
    for index, (name, _) in enumerate(rss):
        print(f"colour {COLOURS[index % len(COLOURS)]}: {name[: -len('_rss_kib')]}")
    failed = False
    for name, values in columns.items():
        ok, detail = flat(name, values, times, warmup)
        restarted = name.startswith("restarted_")
        verdict = "flat" if ok else ("grew (restarted node, not judged)" if restarted else "GREW")
        print(f"{name}: {verdict}: {detail}")
        failed |= not ok and not restarted
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
