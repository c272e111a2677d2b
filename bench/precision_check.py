#!/usr/bin/env python3
"""Does bf16 inference distort the low-loss contours? (issue 8)

Pairs every bf16 surface in a work directory with its f32 twin (the same meta.toml without the
`precision` line), runs `landscape compare-surfaces` on each pair, and writes one CSV per pair
plus summary.csv: loss at the centre in both, largest loss difference overall and in the
low-loss region, the largest Jaccard distance between the two sublevel sets over the contour
levels below a loss of 2, and the landscape measures on both.

Make the bf16 surfaces first, from the cached f32 reproductions, e.g.
  landscape run experiments/figure5.toml --scale quick --dataset fashion-mnist \
      --set analysis.2d.precision=bf16
Usage:
  python3 bench/precision_check.py --workdir runs --landscape target/release/landscape \
      --out results/precision
"""
import argparse
import csv
import io
import os
import subprocess
import sys


def twin_of(workdir, bf16_dir, metas):
    """The f32 surface directory whose meta.toml is bf16_dir's without the precision line."""
    with open(os.path.join(bf16_dir, "meta.toml")) as f:
        wanted = "".join(line for line in f if not line.startswith("precision"))
    for d, text in metas.items():
        if text == wanted:
            return d
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="runs")
    ap.add_argument("--landscape", default="target/release/landscape")
    ap.add_argument("--out", default="results/precision")
    ap.add_argument("--low", type=float, default=2.0, help="levels below this loss count as low")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    metas = {}
    for name in sorted(os.listdir(args.workdir)):
        path = os.path.join(args.workdir, name, "meta.toml")
        if name.startswith(("surface-", "interp-")) and os.path.exists(path):
            with open(path) as f:
                metas[os.path.join(args.workdir, name)] = f.read()
    rows = []
    for d, text in metas.items():
        if 'precision = "bf16"' not in text:
            continue
        if not os.path.exists(os.path.join(d, "surface.csv")):
            print(f"{d}: not finished, skipped", file=sys.stderr)
            continue
        twin = twin_of(args.workdir, d, metas)
        if twin is None:
            print(f"{d}: no f32 twin in {args.workdir}, skipped", file=sys.stderr)
            continue
        run = next(line.split('"')[1] for line in text.splitlines() if line.startswith("run ="))
        table = os.path.join(args.out, f"{os.path.basename(twin)}_vs_bf16.csv")
        subprocess.run([args.landscape, "--workdir", args.workdir, "compare-surfaces", twin, d,
                        "--csv", table], check=True, stdout=subprocess.DEVNULL)
        with open(table) as f:
            cells = list(csv.DictReader(f))
        value = {(c["quantity"], c["level"]): float(c["value"]) for c in cells}
        low_levels = [c for c in cells if c["quantity"] == "Jaccard distance" and float(c["level"]) < args.low]
        row = {
            "run": run,
            "f32 surface": os.path.basename(twin),
            "bf16 surface": os.path.basename(d),
            "points": sum(1 for line in open(os.path.join(d, "surface.csv"))) - 1,
            "centre loss f32": value[("loss at the centre (A)", "")],
            "centre loss bf16": value[("loss at the centre (B)", "")],
            "max relative difference": value[("max relative difference", "")],
            "low-loss max abs difference": value[("low-loss max abs difference", "")],
            f"max Jaccard distance below {args.low:g}": max((float(c["value"]) for c in low_levels), default=float("nan")),
        }
        for (q, level), v in value.items():
            if q.endswith(" (A)") and not q.startswith(("loss at the centre", "inside")):
                row[q[:-4] + " f32"] = v
                row[q[:-4] + " bf16"] = value[(q[:-4] + " (B)", level)]
        rows.append(row)
    if not rows:
        sys.exit(f"no bf16 surface with an f32 twin in {args.workdir}")
    columns = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    tmp = os.path.join(args.out, ".summary.csv.tmp")
    with open(tmp, "w") as f:
        f.write(out.getvalue())
    os.replace(tmp, os.path.join(args.out, "summary.csv"))
    print(out.getvalue(), end="")


if __name__ == "__main__":
    main()
