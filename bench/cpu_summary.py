#!/usr/bin/env python3
"""Joins one CPU session's landscape and PyTorch measurements into summary.csv.

Reads the JSON files `landscape bench --json` and `bench/pytorch_cpu.py --json` wrote in a
session folder (named `<side>_<what>[_<isa>]_t<threads>[_r<round>].json`, see
bench/cpu_session.sh: landscape's kernels forced to `<isa>` beside PyTorch held to it;
where a measure was taken in several rounds, each side's best round counts: on a shared host
the slower rounds measure the neighbours) and writes
`summary.csv` there with the columns

    model,measure,batch,threads,isa,landscape,pytorch,ratio

one row per model and measure: landscape's images/s beside PyTorch's on the same CPU and
thread count, ratio = landscape / pytorch. Training steps compare with PyTorch's training
step of the same batch; grid points with the reference code's surface loop
(`grid_point_vs_reference`) and with the tuned PyTorch loop (`grid_point_vs_tuned`);
burn's own training (LANDSCAPE_CPU_KERNELS=off) appears as its own rows.

Usage: python3 bench/cpu_summary.py bench/results/cpu-<date>
"""

import csv
import glob
import json
import os
import re
import sys


ISAS = ("avx512", "avx2", "neon", "portable")


def load(folder, side):
    """[(threads, run isa, PyTorch's reported capability, record)] for every
    `<side>_*_t<threads>.json` of the folder; the run isa is "" in folders of before the
    instruction-set runs."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, side + "_*_t*.json"))):
        name = os.path.basename(path)
        threads = int(re.search(r"_t(\d+)(_r\d+)?\.json$", name).group(1))
        tag = re.search(r"_(%s)_t\d+" % "|".join(ISAS), name)
        doc = json.load(open(path))
        records = doc["results"] if isinstance(doc, dict) else doc
        capability = doc.get("cpu_capability", "") if isinstance(doc, dict) else ""
        for r in records:
            out.append((threads, tag.group(1) if tag else "", capability, r))
    return out


def isa_of(engine):
    return {
        "cpu-kernels-avx512": "avx512",
        "cpu-kernels-avx2": "avx2",
        "cpu-kernels-neon": "neon",
        "cpu-kernels-portable": "portable",
        "burn": "burn",
    }.get(engine, engine)


def main(folder):
    ours = load(folder, "landscape")
    theirs = load(folder, "pytorch")
    torch = {}
    for threads, tag, capability, r in theirs:
        if r.get("width", 1.0) != 1.0:
            continue
        key = (r["model"], r["measure"], r["batch"], threads, tag)
        if key not in torch or torch[key][0] < r["images_per_s"]:
            torch[key] = (r["images_per_s"], capability)
    best = {}
    for threads, tag, _, r in ours:
        if r.get("width", 1.0) != 1.0:
            continue
        key = (r["model"], r["measure"], r["batch"], threads, r.get("engine", ""))
        if key not in best or best[key][2]["images_per_s"] < r["images_per_s"]:
            best[key] = (threads, tag, r)
    rows = []
    for threads, tag, r in best.values():
        model, batch, engine = r["model"], r["batch"], r.get("engine", "")
        pairs = []
        if r["measure"] == "train_step":
            measure = "train_step" if engine != "burn" else "train_step_burn"
            pairs.append((measure, ("train_b%d" % batch,)))
        elif r["measure"] == "grid_point":
            pairs.append(("grid_point_vs_reference", ("surface_ref",)))
            pairs.append(("grid_point_vs_tuned", ("surface_tuned",)))
        elif r["measure"] == "eval":
            pairs.append(("eval", ("eval_b%d" % batch,)))
        for measure, names in pairs:
            match = None
            for name in names:
                for (m, n, b, t, g), v in torch.items():
                    if m == model and n == name and t == threads and g == tag and (
                        name.startswith("surface") or b == batch
                    ):
                        match = v
            pt, pt_isa = match if match else (None, "")
            ratio = r["images_per_s"] / pt if pt else None
            rows.append(
                dict(
                    model=model,
                    measure=measure,
                    batch=batch,
                    threads=threads,
                    isa=isa_of(engine) + ("/pytorch-" + pt_isa.lower() if pt_isa else ""),
                    landscape="%.1f" % r["images_per_s"],
                    pytorch="%.1f" % pt if pt else "",
                    ratio="%.2f" % ratio if ratio else "",
                )
            )
    path = os.path.join(folder, "summary.csv")
    with open(path + ".partial", "w", newline="") as f:
        w = csv.DictWriter(
            f,
            fieldnames=["model", "measure", "batch", "threads", "isa", "landscape", "pytorch", "ratio"],
            lineterminator="\n",
        )
        w.writeheader()
        for row in sorted(rows, key=lambda r: (r["measure"], r["model"], r["batch"], r["threads"])):
            w.writerow(row)
    os.replace(path + ".partial", path)
    print(open(path).read(), end="")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
