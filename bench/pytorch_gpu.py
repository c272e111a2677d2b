#!/usr/bin/env python3
"""PyTorch on an NVIDIA GPU, beside `landscape --device cuda bench` (issue 8).

Same networks as pytorch_cpu.py (imported from it): ResNet-20, ResNet-56, VGG-9 at width 1.
For each: inference images/s (fp32 NCHW, channels-last, channels-last + bf16 autocast, batch
1024), training images/s (batch 128, SGD Nesterov), and grid points/s of a loss surface over N
images resident on the GPU, two ways:
  reference: the reference code's loop (set_weights, then eval_loss at batch 128 with a .item()
             per batch), as loss-landscape runs it on a GPU;
  tuned:     BatchNorm folded into the convolutions, channels-last, bf16 autocast, batch 1024,
             one host sync per point.
Prints a table; --json writes the numbers. Usage:
  python3 bench/pytorch_gpu.py --json out.json [--images 10000] [--device cuda]
"""
import argparse
import copy
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_cpu import (FusedEvaluator, build, calibrate_bn, count_macs,  # noqa: E402
                         eval_loss, random_direction, set_weights)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup=2, repeats=5):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def fused_loss_acc(fused, batches, bf16):
    """FusedEvaluator.loss_acc on any device: sums stay on the device, one sync at the end."""
    dev = batches[0][0].device
    loss = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    total = 0
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        for x, y in batches:
            out = fused(x).float()
            loss += F.cross_entropy(out, y, reduction="sum").double()
            correct += (out.argmax(1) == y).sum()
            total += x.shape[0]
    return loss.item() / total, 100.0 * correct.item() / total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet20,resnet56,vgg9")
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--points", type=int, default=3, help="grid points per surface timing")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 3, 32, 32, generator=gen)
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    results = []

    def add(model, measure, batch, seconds, images_per_call, macs, points=None):
        r = {"model": model, "measure": measure, "batch": batch, "images_per_s": images_per_call / seconds,
             "points_per_s": points / seconds if points else None,
             "gmacs_per_s": images_per_call / seconds * macs / 1e9}
        results.append(r)
        extra = "  %.3f points/s" % r["points_per_s"] if points else ""
        print("%-10s %-24s batch %5d  %12.0f images/s%s" % (model, measure, batch, r["images_per_s"], extra), flush=True)

    for name in args.models.split(","):
        cpu_model = build(name, 1.0)
        macs = count_macs(cpu_model)
        calibrate_bn(cpu_model, images[:512])
        model = cpu_model.to(device).eval()
        x_dev, y_dev = images.to(device), labels.to(device)

        for fmt, bf16, label in [(torch.contiguous_format, False, "eval_fp32_nchw"),
                                 (torch.channels_last, False, "eval_fp32_channels_last"),
                                 (torch.channels_last, True, "eval_bf16_channels_last")]:
            m = model.to(memory_format=fmt)
            xb = x_dev[:1024].contiguous(memory_format=fmt)

            def fwd():
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    m(xb)
            add(name, label, 1024, timed(fwd, device, warmup=3, repeats=10), 1024, macs)
        model = model.to(memory_format=torch.contiguous_format)

        train_model = build(name, 1.0).to(device).train()
        opt = torch.optim.SGD(train_model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        xt, yt = x_dev[:128], y_dev[:128]

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(train_model(xt), yt).backward()
            opt.step()
        add(name, "train_step_fp32", 128, timed(lambda: [step() for _ in range(10)], device), 1280, macs)

        weights = [p.data.clone() for p in model.parameters()]
        direction = [d.to(device) for d in random_direction([w.cpu() for w in weights], gen)]
        loader = [(x_dev[i:i + 128], y_dev[i:i + 128]) for i in range(0, args.images, 128)]
        criterion = torch.nn.CrossEntropyLoss()
        coords = iter(range(10**6))

        def reference_points():
            for _ in range(args.points):
                set_weights(model, weights, [direction], 0.01 * next(coords))
                eval_loss(model, criterion, loader)
        seconds = timed(reference_points, device, warmup=1, repeats=3)
        add(name, "grid_reference_b128", 128, seconds, args.points * args.images, macs, points=args.points)

        # FusedEvaluator adds zero biases on the CPU: build it on a CPU copy, then move both.
        src = copy.deepcopy(model).cpu()
        fused = FusedEvaluator(src, channels_last=True)
        src.to(device)
        fused.fused.to(device)
        big = [(x_dev[i:i + 1024].contiguous(memory_format=torch.channels_last), y_dev[i:i + 1024])
               for i in range(0, args.images, 1024)]
        for bf16, label in [(False, "grid_tuned_fp32"), (True, "grid_tuned_bf16")]:
            def tuned_points():
                for _ in range(args.points):
                    set_weights(src, weights, [direction], 0.01 * next(coords))
                    fused.refresh()
                    fused_loss_acc(fused.fused, big, bf16)
            seconds = timed(tuned_points, device, warmup=1, repeats=3)
            add(name, label, 1024, seconds, args.points * args.images, macs, points=args.points)

    meta = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
            "images": args.images, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(meta, f, indent=2)


if __name__ == "__main__":
    main()
