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
With --claims F32_RESULTS:BF16_RESULTS (repeatable; two result folders of one figure, the
second reproduced with bf16 surfaces) it also writes claims.csv: each claim check's verdict and
measured value in both. `just precision` runs all of it.
Usage:
  python3 bench/precision_check.py --workdir runs --landscape target/release/landscape \
      --out results/precision [--claims results/figure5:target/precision/figure5]
"""
import argparse
import csv
import io
import os
import subprocess
import sys


def twin_of(bf16_dir, metas):
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
    ap.add_argument("--claims", action="append", default=[], metavar="F32_DIR:BF16_DIR")
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
        twin = twin_of(d, metas)
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
    rows.sort(key=lambda r: (r["run"], r["points"]))
    print(write_table(os.path.join(args.out, "summary.csv"), rows), end="")
    claims = []
    for pair in args.claims:
        exact, rounded = pair.split(":")
        with open(os.path.join(exact, "findings.csv")) as f:
            a = list(csv.DictReader(f))
        with open(os.path.join(rounded, "findings.csv")) as f:
            b = list(csv.DictReader(f))
        if [r["check"] for r in a] != [r["check"] for r in b]:
            sys.exit(f"{exact} and {rounded} check different claims")
        for x, y in zip(a, b):
            claims.append({"figure": os.path.basename(os.path.normpath(exact)), "claim": x["claim"],
                           "check": x["check"], "verdict f32": x["verdict"], "verdict bf16": y["verdict"],
                           "measured f32": x["measured"], "measured bf16": y["measured"]})
    if claims:
        print(write_table(os.path.join(args.out, "claims.csv"), claims), end="")
        changed = sum(c["verdict f32"] != c["verdict bf16"] for c in claims)
        print(f"{changed} of {len(claims)} claim verdicts change with bf16 surfaces")


def write_table(path, rows):
    """Writes rows (dicts) as CSV atomically; returns the text."""
    columns = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(out.getvalue())
    os.replace(tmp, path)
    return out.getvalue()


if __name__ == "__main__":
    main()
