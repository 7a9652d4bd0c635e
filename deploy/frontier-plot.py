"""The sparsity frontier as an SVG: held-out explained variance against L0, one line per
architecture, from a table such as deploy/frontier-grid.py writes.

    python3 deploy/frontier-plot.py TABLE.tsv OUT.svg [--title TEXT]

TABLE.tsv: tab-separated with a header naming at least the columns architecture, l0 and
heldout_ev (others, such as setting and run, are ignored); one row per trained run. L0 is
drawn on a log scale when every L0 is positive. Standard library only.
"""
import argparse
import csv
import math
import sys
from xml.sax.saxutils import escape

COLORS = {"relu": "#7f7f7f", "topk": "#1f77b4", "batchtopk": "#2ca02c", "jumprelu": "#d62728"}
OTHERS = ["#9467bd", "#8c564b", "#e377c2", "#17becf"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 420, 70, 150, 40, 55


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    missing = {"architecture", "l0", "heldout_ev"} - set(rows[0].keys() if rows else [])
    if not rows:
        sys.exit(f"error: {path}: no rows")
    if missing:
        sys.exit(f"error: {path}: no column {', '.join(sorted(missing))} (header: {', '.join(rows[0].keys())})")
    points = {}
    for i, r in enumerate(rows, 2):
        try:
            l0, ev = float(r["l0"]), float(r["heldout_ev"])
        except ValueError:
            sys.exit(f"error: {path}:{i}: l0 and heldout_ev must be numbers, got {r['l0']!r}, {r['heldout_ev']!r}")
        if not (math.isfinite(l0) and math.isfinite(ev)):
            sys.exit(f"error: {path}:{i}: l0 and heldout_ev must be finite, got {l0}, {ev}")
        points.setdefault(r["architecture"], []).append((l0, ev))
    return {a: sorted(p) for a, p in points.items()}


def ticks(lo, hi, n=5):
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


def svg(points, title):
    l0s = [p[0] for ps in points.values() for p in ps]
    evs = [p[1] for ps in points.values() for p in ps]
    logx = min(l0s) > 0
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    if logx:
        lo, hi = math.floor(math.log10(min(l0s))), math.ceil(math.log10(max(l0s)))
        hi = max(hi, lo + 1)
        xt = [10 ** e * m for e in range(lo, hi + 1) for m in (1, 2, 5) if 10 ** lo <= 10 ** e * m <= 10 ** hi]
        x0, x1 = lo, hi
    else:
        xt = ticks(min(l0s), max(l0s))
        x0, x1 = xt[0], xt[-1]
    yt = ticks(min(evs), max(evs))
    y0, y1 = yt[0], yt[-1]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    X = lambda v: LEFT + (fx(v) - x0) / ((x1 - x0) or 1) * pw
    Y = lambda v: TOP + ph - (v - y0) / ((y1 - y0) or 1) * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT + pw / 2:.1f}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>']
    for v in xt:
        out.append(f'<line x1="{X(v):.1f}" y1="{TOP}" x2="{X(v):.1f}" y2="{TOP + ph}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{X(v):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{v:g}</text>')
    for v in yt:
        out.append(f'<line x1="{LEFT}" y1="{Y(v):.1f}" x2="{LEFT + pw}" y2="{Y(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{LEFT + pw / 2:.1f}" y="{H - 12}" text-anchor="middle">L0, active latents per example{" (log scale)" if logx else ""}</text>')
    out.append(f'<text transform="translate(18 {TOP + ph / 2:.1f}) rotate(-90)" text-anchor="middle">held-out explained variance</text>')
    others = iter(OTHERS)
    for i, (arch, ps) in enumerate(sorted(points.items(), key=lambda kv: list(COLORS).index(kv[0]) if kv[0] in COLORS else 99)):
        color = COLORS.get(arch) or next(others, "#000000")
        path = " ".join(f"{X(l0):.1f},{Y(ev):.1f}" for l0, ev in ps)
        out.append(f'<g class="architecture" data-architecture="{escape(arch)}">')
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for l0, ev in ps:
            out.append(f'<circle cx="{X(l0):.1f}" cy="{Y(ev):.1f}" r="4" fill="{color}"><title>{escape(arch)}: L0 {l0:g}, EV {ev:.4f}</title></circle>')
        ly = TOP + 10 + 20 * i
        out.append(f'<line x1="{LEFT + pw + 15}" y1="{ly}" x2="{LEFT + pw + 40}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<circle cx="{LEFT + pw + 27.5}" cy="{ly}" r="4" fill="{color}"/>')
        out.append(f'<text x="{LEFT + pw + 46}" y="{ly + 4}">{escape(arch)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description="Held-out EV against L0 per architecture, as SVG.")
    ap.add_argument("table")
    ap.add_argument("out")
    ap.add_argument("--title", default="Sparsity frontier: held-out explained variance against L0")
    a = ap.parse_args()
    text = svg(read(a.table), a.title)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
