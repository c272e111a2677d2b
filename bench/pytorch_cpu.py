#!/usr/bin/env python3
"""PyTorch CPU baseline for the landscape benchmarks.

Measures, on the CPU and at a fixed thread count, the models of Li et al. 2018
("Visualizing the Loss Landscape of Neural Nets") exactly as the reference code
(tomgoldstein/loss-landscape, cifar10/models) defines them:

  eval_b128 / eval_b512   eval-mode forward throughput (no loss), torch.no_grad()
  train_b128 / train_b1024  one SGD step (nesterov, momentum 0.9, wd 5e-4, lr 0.1) on a
                          batch of 128 / 1024
  surface_ref             the reference surface loop: set_weights (p.data = w + d*x)
                          then eval_loss (DataLoader of batch 128, loss.item()*bs,
                          predicted.eq(targets).sum()) over N in-memory images
  surface_tuned           the same loss/accuracy per grid point done the fastest way
                          we found in plain eager PyTorch on a CPU: conv+BN folded by
                          hand (torch.nn.utils.fusion), channels_last, large batch,
                          inference_mode, one .item() per point.  No jit/compile.

Every figure is also given in multiply-adds per second and as a fraction of the CPU's
multiply-add peak at the same thread count: "mac_fraction" is of the FMA (AVX-512, else AVX2)
throughput measured by bench/fma_peak.c (the real ceiling: pipes x lanes x running
clock), "mac_fraction_of_matmul" of a 4096x4096 float32 torch.mm (MKL sgemm, which on
this AMD CPU reaches well under that ceiling; oneDNN convolutions beat it).

See bench/README.md.
"""

import argparse
import copy
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

# --------------------------------------------------------------------------------------
# command line (parsed before torch is imported so OMP_NUM_THREADS can be set first)
# --------------------------------------------------------------------------------------

DEFAULT_CONFIGS = "resnet20:1,resnet20:0.25,vgg9:1,vgg9:0.25,resnet56:1:eval"
QUICK_CONFIGS = "resnet20:0.25,vgg9:0.25"
ALL_MEASURES = ["eval_b128", "eval_b512", "train_b128", "train_b1024", "surface_ref", "surface_tuned"]
MEASURE_ALIASES = {
    "all": [m for m in ALL_MEASURES if m != "train_b1024"],
    "eval": ["eval_b128", "eval_b512"],
    "train": ["train_b128", "train_b1024"],
    "surface": ["surface_ref", "surface_tuned"],
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    ap.add_argument("--quick", action="store_true",
                    help="short run: width-0.25 models, few images/points/repeats")
    ap.add_argument("--configs", default=None,
                    help="comma list of model:width[:measures], measures joined by '+' or "
                         "one of all/eval/surface (default: %s; --quick: %s)"
                         % (DEFAULT_CONFIGS, QUICK_CONFIGS))
    ap.add_argument("--images", type=int, default=None,
                    help="images per surface grid point (default 2000; --quick 256)")
    ap.add_argument("--points", type=int, default=None,
                    help="timed grid points per surface measurement (default 4; --quick 2)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats per throughput measurement (default 7; --quick 3)")
    ap.add_argument("--tuned-batch", type=int, default=None,
                    help="batch of surface_tuned (default: the fastest of 64, 128, 256, 512, 1000, "
                         "chosen on one warm-up grid point each)")
    ap.add_argument("--tuned-layout", choices=["channels_last", "contiguous", "auto"],
                    default="channels_last", help="memory format of surface_tuned (default channels_last)")
    ap.add_argument("--matmul-n", type=int, default=None, help="peak matmul size (default 4096)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="before each measurement, wait up to SECONDS for a quiet machine (no rustc/cargo, "
                         "other processes < 0.1 core); default 0 = do not wait")
    ap.add_argument("--max-total-wait", type=float, default=1800.0, metavar="SECONDS",
                    help="stop waiting for quiet once this much waiting was done in all (default 1800)")
    ap.add_argument("--skip-busy", action="store_true",
                    help="once the wait budget is spent, skip (list as skipped) measurements that would "
                         "start on a busy machine instead of running them noisy")
    ap.add_argument("--retries", type=int, default=2,
                    help="redo a measurement disturbed by other processes up to this many times (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--assume-fma-per-cycle", type=int, default=32,
                    help="fp32 FMAs per cycle per core, to turn the measured FMA peak into a clock "
                         "and for the nominal figure (default 32: two 512-bit FMA pipes, Zen 5)")
    ap.add_argument("--no-fma-peak", action="store_true",
                    help="do not build/run bench/fma_peak.c (needs cc with OpenMP)")
    a = ap.parse_args(argv)
    if a.configs is None:
        a.configs = QUICK_CONFIGS if a.quick else DEFAULT_CONFIGS
    if a.images is None:
        a.images = 256 if a.quick else 2000
    if a.points is None:
        a.points = 2 if a.quick else 4
    if a.repeats is None:
        a.repeats = 3 if a.quick else 7
    if a.matmul_n is None:
        a.matmul_n = 2048 if a.quick else 4096
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(ARGS.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

# --------------------------------------------------------------------------------------
# models (reference: loss-landscape cifar10/models/{vgg,resnet}.py), with a width multiplier
# --------------------------------------------------------------------------------------


def scale(channels, width):
    """Channels scaled by width, rounded half away from zero, at least 1 (as our Rust side)."""
    return max(1, int(math.floor(channels * width + 0.5)))


class VGG(nn.Module):
    """Reference VGG: conv3x3(bias)-BN-ReLU blocks, maxpools, Linear-BN1d-ReLU, Linear."""

    CFG = {"vgg9": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]}

    def __init__(self, name="vgg9", width=1.0, num_classes=10):
        super().__init__()
        layers, cin, size = [], 3, 32
        for v in self.CFG[name]:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                size = (size + 1) // 2
            else:
                c = scale(v, width)
                layers += [nn.Conv2d(cin, c, kernel_size=3, padding=1), nn.BatchNorm2d(c),
                           nn.ReLU(inplace=True)]
                cin = c
        self.features = nn.Sequential(*layers)
        n_maps = cin  # reference: cfg[-2], i.e. the last conv's channels (256 at width 1)
        self.fc = nn.Sequential(nn.Linear(n_maps * size * size, n_maps), nn.BatchNorm1d(n_maps),
                                nn.ReLU(inplace=True))
        self.classifier = nn.Linear(n_maps, num_classes)

    def forward(self, x):
        out = self.features(x)
        out = out.reshape(out.size(0), -1)  # reference: view(); reshape also takes channels_last
        out = self.fc(out)
        return self.classifier(out)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNetCifar(nn.Module):
    """Reference ResNet_cifar: 16/32/64 channels, n basic blocks per stage."""

    def __init__(self, n, width=1.0, num_classes=10):
        super().__init__()
        c1, c2, c3 = scale(16, width), scale(32, width), scale(64, width)
        self.in_planes = c1
        self.conv1 = nn.Conv2d(3, c1, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.layer1 = self._make_layer(c1, n, 1)
        self.layer2 = self._make_layer(c2, n, 2)
        self.layer3 = self._make_layer(c3, n, 2)
        self.linear = nn.Linear(c3, num_classes)

    def _make_layer(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, 8)
        out = out.reshape(out.size(0), -1)
        return self.linear(out)


EXPECTED_PARAMS = {"vgg9": 2789706, "resnet20": 272474, "resnet56": 855770}
EXPECTED_MACS = {"resnet20": 40813184}


def build(name, width):
    if name == "vgg9":
        return VGG("vgg9", width)
    if name.startswith("resnet"):
        depth = int(name[len("resnet"):])
        assert (depth - 2) % 6 == 0, name
        return ResNetCifar((depth - 2) // 6, width)
    raise SystemExit("unknown model %r" % name)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def count_macs(model):
    """Forward multiply-adds per image: conv Hout*Wout*Cout*(Cin/groups)*kh*kw, linear in*out."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total[0] += out.shape[2] * out.shape[3] * m.out_channels * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, nn.Linear):
            total[0] += m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    model.train(was_training)
    for h in hs:
        h.remove()
    return total[0]


def bn_modules(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def calibrate_bn(model, x):
    """Give the random net realistic BN running statistics (one cumulative train-mode pass),
    so that the eval-mode activations stay in a normal range, as in a trained net."""
    bns = bn_modules(model)
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    for m in bns:
        m.momentum = 0.1
    model.eval()


# --------------------------------------------------------------------------------------
# the reference surface code (net_plotter.set_weights, evaluation.eval_loss)
# --------------------------------------------------------------------------------------


def set_weights(net, weights, directions, step):
    """net_plotter.set_weights for a 1-D direction: p.data = w + d*step per parameter."""
    changes = [d * step for d in directions[0]]
    for p, w, d in zip(net.parameters(), weights, changes):
        p.data = w + d


def eval_loss(net, criterion, loader):
    """evaluation.eval_loss (CrossEntropyLoss branch, CPU)."""
    correct = 0
    total_loss = 0
    total = 0
    net.eval()
    with torch.no_grad():
        for inputs, targets in loader:
            batch_size = inputs.size(0)
            total += batch_size
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            total_loss += loss.item() * batch_size
            _, predicted = outputs.max(1)
            correct += predicted.eq(targets).sum()
    return total_loss / total, 100. * float(correct) / total


def random_direction(weights, gen):
    """net_plotter.create_random_direction(dir_type='weights', ignore='biasbn', norm='filter')."""
    direction = []
    for w in weights:
        d = torch.randn(w.size(), generator=gen)
        if d.dim() <= 1:
            d.fill_(0)
        else:
            for df, wf in zip(d, w):
                df.mul_(wf.norm() / (df.norm() + 1e-10))
        direction.append(d)
    return direction


# --------------------------------------------------------------------------------------
# the tuned surface evaluator: BN folded into conv/linear, channels_last, big batches
# --------------------------------------------------------------------------------------


class FusedEvaluator:
    """Keeps a BN-folded copy of `model`; refresh() re-folds it from the model's current
    parameters and BN statistics (needed at every grid point, since the weights move)."""

    def __init__(self, model, channels_last):
        self.src = model
        self.fused = copy.deepcopy(model).eval()
        leaves_src = [(n, m) for n, m in model.named_modules() if len(list(m.children())) == 0]
        fused_by_name = dict(self.fused.named_modules())
        self.pairs = []     # (src_layer, src_bn, fused_layer)
        self.plain = []     # (src_layer, fused_layer) for layers without a BN after them
        i = 0
        while i < len(leaves_src):
            name, m = leaves_src[i]
            nxt = leaves_src[i + 1][1] if i + 1 < len(leaves_src) else None
            if isinstance(m, (nn.Conv2d, nn.Linear)) and isinstance(nxt, nn.modules.batchnorm._BatchNorm):
                fl = fused_by_name[name]
                if fl.bias is None:
                    fl.bias = nn.Parameter(torch.zeros(fl.out_features if isinstance(fl, nn.Linear)
                                                       else fl.out_channels,
                                                       device=fl.weight.device, dtype=fl.weight.dtype))
                self._replace(leaves_src[i + 1][0], nn.Identity())
                self.pairs.append((m, nxt, fl))
                i += 2
                continue
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                self.plain.append((m, fused_by_name[name]))
            i += 1
        for p in self.fused.parameters():
            p.requires_grad_(False)
        if channels_last:
            self.fused = self.fused.to(memory_format=torch.channels_last)
        self.refresh()

    def _replace(self, dotted, new):
        parent = self.fused
        parts = dotted.split(".")
        for p in parts[:-1]:
            parent = getattr(parent, p)
        setattr(parent, parts[-1], new)

    @torch.no_grad()
    def refresh(self):
        for layer, bn, fl in self.pairs:
            if isinstance(layer, nn.Conv2d):
                w, b = fuse_conv_bn_weights(layer.weight, layer.bias, bn.running_mean, bn.running_var,
                                            bn.eps, bn.weight, bn.bias)
            else:
                w, b = fuse_linear_bn_weights(layer.weight, layer.bias, bn.running_mean, bn.running_var,
                                              bn.eps, bn.weight, bn.bias)
            fl.weight.copy_(w)   # copy_ keeps fl.weight's (channels_last) layout
            fl.bias.copy_(b)
        for m, fl in self.plain:
            for ps, pf in zip(m.parameters(), fl.parameters()):
                pf.copy_(ps)

    def loss_acc(self, batches):
        loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        total = 0
        with torch.inference_mode():
            for x, y in batches:
                out = self.fused(x)
                loss += F.cross_entropy(out, y, reduction="sum").double()
                correct += (out.argmax(1) == y).sum()
                total += x.shape[0]
        return loss.item() / total, 100. * correct.item() / total


# --------------------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------------------


def build_processes():
    """Names of running compiler processes (rustc / cargo), read from /proc."""
    names = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("rustc", "cargo", "cc1", "cc1plus", "ld", "rust-lld"):
            names.append(comm)
    return sorted(names)


HZ = os.sysconf("SC_CLK_TCK")
OTHER_CORES_QUIET = 0.10   # CPU cores used by other processes below which a measurement is "quiet"


def cpu_counters():
    """(busy s of the whole machine, steal s, CPU s of this process and its waited-for children, wall s)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return ((user + nice + system + irq + softirq) / HZ, steal / HZ, own, time.monotonic())


def disturbance(c0, c1):
    """Cores kept busy by other processes (and stolen by the hypervisor) between two snapshots."""
    wall = max(c1[3] - c0[3], 1e-9)
    other = max(0.0, (c1[0] - c0[0]) - (c1[2] - c0[2])) / wall
    return {"other_cores": round(other, 3), "steal_cores": round((c1[1] - c0[1]) / wall, 3)}


def other_load(window=1.0):
    c0 = cpu_counters()
    time.sleep(window)
    return disturbance(c0, cpu_counters())["other_cores"]


WAIT_BUDGET = [1800.0]     # seconds of waiting for quiet left in this run (--max-total-wait)


def wait_quiet(max_wait):
    """Wait (at most max_wait s, and within the run's total wait budget) until no compiler
    runs and other processes use < 0.1 core."""
    t0 = time.time()
    limit = min(max_wait, WAIT_BUDGET[0])
    while limit > 0 and time.time() - t0 < limit:
        if not build_processes() and other_load() < OTHER_CORES_QUIET:
            break
        time.sleep(3)
    waited = time.time() - t0
    WAIT_BUDGET[0] = max(0.0, WAIT_BUDGET[0] - waited)
    return waited


def timeit(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


class Recorder:
    def __init__(self, peak_mm, peak_fma, max_wait=0.0, retries=0, skip_busy=False):
        self.peak_mm, self.peak_fma = peak_mm, peak_fma
        self.peak = peak_fma or peak_mm   # denominator of mac_fraction
        self.max_wait, self.retries, self.skip_busy = max_wait, retries, skip_busy
        self.skipped = []
        self.results = []

    def measure(self, fn):
        """Run fn() (which returns the keyword arguments of add) after waiting for a quiet
        machine; redo it, up to `retries` times, when other processes disturbed it."""
        for attempt in range(self.retries + 1):
            waited = wait_quiet(self.max_wait)
            if self.skip_busy and (build_processes() or other_load(0.5) >= OTHER_CORES_QUIET):
                self.skipped.append(getattr(fn, "label", "?"))
                print("  ... skipped %s: machine busy and wait budget spent" % getattr(fn, "label", "?"), flush=True)
                return None
            c0 = cpu_counters()
            kw = fn()
            dist = disturbance(c0, cpu_counters())
            busy = build_processes()
            quiet = dist["other_cores"] < OTHER_CORES_QUIET and not busy
            if quiet or attempt == self.retries:
                break
            print("  ... %s %s disturbed (%.2f other cores busy%s), retrying" % (
                kw["model"], kw["measure"], dist["other_cores"], ", " + ",".join(sorted(set(busy))) if busy else ""),
                flush=True)
        kw.update(dist, quiet=quiet, attempts=attempt + 1, waited_s=round(waited, 1))
        return self.add(**kw)

    def add(self, model, width, measure, batch, median_s, per, images, times, macs_img, mac_factor=1,
            points=False, **extra):
        """median_s: seconds per unit (a batch, a step, or a grid point) of `images` images."""
        ips = images / median_s
        macs_s = ips * macs_img * mac_factor
        busy = build_processes()
        r = {
            "model": model, "width": width, "measure": measure, "batch": batch,
            "images_per_s": ips,
            "images_per_s_best": images / min(times),
            "points_per_s": (1.0 / median_s) if points else None,
            "mac_fraction": macs_s / self.peak,
            "mac_fraction_of_matmul": macs_s / self.peak_mm,
            "gmacs_per_s": macs_s / 1e9,
            "macs_per_image": macs_img * mac_factor,
            "median_s_per_" + per: median_s,
            "times_s": [round(t, 6) for t in times],
            "load_avg_1m": os.getloadavg()[0],
            "build_processes_at_end": busy,
        }
        r.update(extra)
        self.results.append(r)
        self.print_row(r)
        return r

    def print_row(self, r):
        flag = "" if r.get("quiet", True) else "NOISY(%.2f other cores)" % r.get("other_cores", -1)
        pts = ("%8.2f" % r["points_per_s"]) if r["points_per_s"] else "       -"
        print("%-9s %5.2f  %-14s %5d %10.1f %s %9.1f %6.1f%% %6.1f%%  %s" % (
            r["model"], r["width"], r["measure"], r["batch"], r["images_per_s"], pts, r["gmacs_per_s"],
            100 * r["mac_fraction"], 100 * r["mac_fraction_of_matmul"], flag), flush=True)

    def rescale(self, peak_mm, peak_fma):
        self.peak_mm, self.peak_fma = peak_mm, peak_fma
        self.peak = peak_fma or peak_mm
        for r in self.results:
            r["mac_fraction"] = r["gmacs_per_s"] * 1e9 / self.peak
            r["mac_fraction_of_matmul"] = r["gmacs_per_s"] * 1e9 / self.peak_mm


def header():
    print("%-9s %5s  %-14s %5s %10s %8s %9s %7s %7s" % (
        "model", "width", "measure", "batch", "images/s", "points/s", "GMAC/s", "%peak", "%mm"))
    print("-" * 86, flush=True)


# --------------------------------------------------------------------------------------
# the measurements
# --------------------------------------------------------------------------------------


def measure_peak(n, threads, repeats):
    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = torch.empty(n, n)
    ts = timeit(lambda: torch.mm(a, b, out=c), 1, repeats)
    return n ** 3 / statistics.median(ts), ts


def measure_fma_peak(threads):
    """Build and run bench/fma_peak.c: the FMA throughput of the best vectors the CPU has
    (AVX-512, else AVX2), the real multiply-add ceiling."""
    import shutil
    import subprocess
    import tempfile
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fma_peak.c")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not os.path.exists(src):
        return None, "no C compiler or fma_peak.c"
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "fma_peak")
        try:
            subprocess.run([cc, "-O2", "-march=native", "-fopenmp", src, "-o", exe], check=True,
                           capture_output=True, text=True)
            out = subprocess.run([exe, str(threads)], check=True, capture_output=True, text=True)
            return float(out.stdout.split()[0]), None
        except (subprocess.CalledProcessError, OSError, ValueError) as e:
            return None, "fma_peak failed: %s" % (getattr(e, "stderr", "") or e)


def measure_onednn_conv(threads, repeats):
    """An achievable-in-practice reference: a VGG-like 3x3 conv (256->256, 8x8, batch 512,
    channels_last) that oneDNN's brgemm kernels run close to the FMA peak."""
    torch.set_num_threads(threads)
    x = torch.randn(512, 256, 8, 8).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ts = timeit(lambda: F.conv2d(x, w, padding=1), 1, repeats)
    return 512 * 8 * 8 * 256 * 256 * 9 / statistics.median(ts)


def run_config(rec, name, width, measures, a):
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    model = build(name, width)
    params = n_params(model)
    macs = count_macs(model)
    if width == 1.0 and name in EXPECTED_PARAMS:
        assert params == EXPECTED_PARAMS[name], (name, params)
    if width == 1.0 and name in EXPECTED_MACS:
        assert macs == EXPECTED_MACS[name], (name, macs)
    info = {"params": params}
    x512 = torch.randn(512, 3, 32, 32, generator=gen)
    y512 = torch.randint(0, 10, (512,), generator=gen)
    calibrate_bn(model, x512[:256])
    R = a.repeats

    def eval_fwd(bs):
        model.eval()
        x = x512[:bs].contiguous()
        with torch.no_grad():
            ts = timeit(lambda: model(x), 2, R)
        return dict(model=name, width=width, measure="eval_b%d" % bs, batch=bs, median_s=statistics.median(ts),
                    per="batch", images=bs, times=ts, macs_img=macs, **info)

    for bs in (128, 512):
        if "eval_b%d" % bs in measures:
            f = lambda bs=bs: eval_fwd(bs)  # noqa: E731
            f.label = "%s:%g:eval_b%d" % (name, width, bs)
            rec.measure(f)

    def train(bs):
        net = copy.deepcopy(model).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        crit = nn.CrossEntropyLoss()
        if bs <= 512:
            x, y = x512[:bs].contiguous(), y512[:bs].contiguous()
        else:
            x = torch.randn(bs, 3, 32, 32, generator=gen)
            y = torch.randint(0, 10, (bs,), generator=gen)

        def step():
            opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            opt.step()

        ts = timeit(step, 3 if bs <= 512 else 1, R)
        # forward + backward (grad wrt inputs and wrt weights) ~ 3x the forward multiply-adds
        return dict(model=name, width=width, measure="train_b%d" % bs, batch=bs, median_s=statistics.median(ts),
                    per="step", images=bs, times=ts, macs_img=macs, mac_factor=3,
                    mac_note="3x forward MACs (fwd + input-grad + weight-grad)", **info)

    for bs in (128, 1024):
        if "train_b%d" % bs in measures:
            f = lambda bs=bs: train(bs)  # noqa: E731
            f.label = "%s:%g:train_b%d" % (name, width, bs)
            rec.measure(f)

    if not any(m.startswith("surface") for m in measures):
        return
    N, P = a.images, a.points
    X = torch.randn(N, 3, 32, 32, generator=gen)
    Y = torch.randint(0, 10, (N,), generator=gen)
    xs = [float(v) for v in np.linspace(-1.0, 1.0, P)] if P > 1 else [0.5]
    weights = [p.data.clone() for p in model.parameters()]
    direction = random_direction(weights, gen)
    ref_vals = []

    def surface_ref():
        loader = DataLoader(TensorDataset(X, Y), batch_size=128, shuffle=False, num_workers=0)
        crit = nn.CrossEntropyLoss()

        def point(xv):
            set_weights(model, weights, [direction], xv)
            return eval_loss(model, crit, loader)

        point(0.0)  # warm-up point, not timed
        ts = []
        ref_vals.clear()
        for xv in xs:
            t0 = time.perf_counter()
            ref_vals.append(point(xv))
            ts.append(time.perf_counter() - t0)
        with torch.no_grad():
            for p, w in zip(model.parameters(), weights):
                p.data = w.clone()
        return dict(model=name, width=width, measure="surface_ref", batch=128, median_s=statistics.median(ts),
                    per="point", images=N, times=ts, macs_img=macs, points=True, images_per_point=N,
                    points_timed=P, loss_acc=list(ref_vals), dataloader="DataLoader(TensorDataset), num_workers=0",
                    **info)

    if "surface_ref" in measures:
        surface_ref.label = "%s:%g:%s" % (name, width, "surface_ref")
        rec.measure(surface_ref)

    def surface_tuned():
        layouts = ["channels_last", "contiguous"] if a.tuned_layout == "auto" else [a.tuned_layout]
        batches = [a.tuned_batch] if a.tuned_batch else [b for b in (64, 128, 256, 512, 1000) if b <= N] or [N]
        params_ = list(model.parameters())

        def set_point(xv):
            with torch.no_grad():
                for p, w, d in zip(params_, weights, direction):
                    torch.add(w, d, alpha=xv, out=p.data)

        variants = {}
        for lay in layouts:
            ev = FusedEvaluator(model, lay == "channels_last")
            Xl = X.contiguous(memory_format=torch.channels_last) if lay == "channels_last" else X
            for bs in batches:
                data = [(Xl[i:i + bs], Y[i:i + bs]) for i in range(0, N, bs)]

                def point(xv, ev=ev, data=data):
                    set_point(xv)
                    ev.refresh()
                    return ev.loss_acc(data)

                point(0.0)  # warm-up
                t0 = time.perf_counter()
                point(0.0)
                variants[(lay, bs)] = (time.perf_counter() - t0, point)
        (lay, bs), (_, point) = min(variants.items(), key=lambda kv: kv[1][0])
        ts, vals = [], []
        for xv in xs:
            t0 = time.perf_counter()
            vals.append(point(xv))
            ts.append(time.perf_counter() - t0)
        extra = {"layout": lay, "images_per_point": N, "points_timed": P, "loss_acc": vals,
                 "variant_probe_s": {"%s/b%d" % k: round(v[0], 5) for k, v in variants.items()},
                 "bn_folded": True, "mode": "inference_mode"}
        if ref_vals:
            extra["max_abs_loss_diff_vs_ref"] = max(abs(u[0] - v[0]) for u, v in zip(ref_vals, vals))
            extra["max_abs_acc_diff_vs_ref"] = max(abs(u[1] - v[1]) for u, v in zip(ref_vals, vals))
        set_point(0.0)
        return dict(model=name, width=width, measure="surface_tuned", batch=bs, median_s=statistics.median(ts),
                    per="point", images=N, times=ts, macs_img=macs, points=True, **extra, **info)

    if "surface_tuned" in measures:
        surface_tuned.label = "%s:%g:%s" % (name, width, "surface_tuned")
        rec.measure(surface_tuned)


def cpu_info():
    info = {"model_name": platform.processor() or "unknown"}
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        first = txt.split("\n\n")[0]
        kv = {}
        for line in first.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                kv[k.strip()] = v.strip()
        info["model_name"] = kv.get("model name", info["model_name"])
        info["family"] = kv.get("cpu family")
        info["model"] = kv.get("model")
        info["mhz"] = float(kv["cpu MHz"]) if "cpu MHz" in kv else None
        flags = kv.get("flags", "").split()
        info["avx512f"] = "avx512f" in flags
        info["logical_cpus"] = txt.count("processor\t:")
        if kv.get("vendor_id") == "AuthenticAMD" and info["family"] == "26":
            info["microarchitecture_guess"] = "AMD Zen 5 (family 1Ah)"
        elif kv.get("vendor_id") == "AuthenticAMD" and info["family"] == "25":
            info["microarchitecture_guess"] = "AMD Zen 3/4 (family 19h)"
    except OSError:
        pass
    return info


def parse_configs(spec):
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        name = parts[0]
        width = float(parts[1]) if len(parts) > 1 else 1.0
        ms = []
        for m in (parts[2].split("+") if len(parts) > 2 else ["all"]):
            ms += MEASURE_ALIASES.get(m, [m])
        for m in ms:
            if m not in ALL_MEASURES:
                raise SystemExit("unknown measure %r (known: %s)" % (m, ", ".join(ALL_MEASURES)))
        out.append((name, width, ms))
    return out


def main(a):
    configs = parse_configs(a.configs)
    WAIT_BUDGET[0] = a.max_total_wait
    torch.set_num_threads(a.threads)
    t_start = time.time()
    cpu = cpu_info()

    # multiply-add peaks: torch.mm and the AVX-512 FMA loop, at the chosen and at one thread.
    # Measured before and after the models; noise only lowers a peak, so the higher is kept.
    def peaks():
        for attempt in range(a.retries + 1):
            waited = wait_quiet(a.wait_quiet)
            c0 = cpu_counters()
            mm, mm_ts = measure_peak(a.matmul_n, a.threads, 5 if not a.quick else 3)
            mm1 = None
            if a.threads != 1:
                mm1, _ = measure_peak(a.matmul_n, 1, 3)
                torch.set_num_threads(a.threads)
            fma, fma_err = (None, "disabled") if a.no_fma_peak else measure_fma_peak(a.threads)
            fma1 = measure_fma_peak(1)[0] if (fma and a.threads != 1) else None
            conv = measure_onednn_conv(a.threads, 3)
            dist = disturbance(c0, cpu_counters())
            quiet = dist["other_cores"] < OTHER_CORES_QUIET and not build_processes()
            if quiet or attempt == a.retries:
                break
        return dict(mm=mm, mm_ts=mm_ts, mm1=mm1, fma=fma, fma_err=fma_err, fma1=fma1, conv=conv,
                    quiet=dict(dist, quiet=quiet, waited_s=round(waited, 1), attempts=attempt + 1))

    p0 = peaks()
    peak, peak_ts, peak1, fma, fma_err, fma1, conv = (p0[k] for k in ("mm", "mm_ts", "mm1", "fma", "fma_err",
                                                                      "fma1", "conv"))
    mhz = cpu.get("mhz")
    nominal = a.threads * a.assume_fma_per_cycle * mhz * 1e6 if mhz else None
    implied_ghz = fma / (a.threads * a.assume_fma_per_cycle) / 1e9 if fma else None
    print("torch %s, %d threads, CPU %s (family %s model %s), mkldnn %s, capability %s" % (
        torch.__version__, a.threads, cpu.get("model_name"), cpu.get("family"), cpu.get("model"),
        torch.backends.mkldnn.is_available(), torch.backends.cpu.get_cpu_capability()))
    print("torch.mm %dx%d (MKL sgemm): %.1f GMAC/s at %d threads%s" % (
        a.matmul_n, a.matmul_n, peak / 1e9, a.threads,
        (", %.1f at 1 thread" % (peak1 / 1e9)) if peak1 else ""))
    if fma:
        print("AVX-512 FMA peak (bench/fma_peak.c): %.1f GMAC/s at %d threads%s = %d x %d FMA/cycle x %.2f GHz"
              % (fma / 1e9, a.threads, (", %.1f at 1 thread" % (fma1 / 1e9)) if fma1 else "",
                 a.threads, a.assume_fma_per_cycle, implied_ghz))
    else:
        print("AVX-512 FMA peak: not measured (%s); %%peak falls back to torch.mm" % fma_err)
    print("oneDNN 3x3 conv 256->256 8x8 b512 channels_last: %.1f GMAC/s" % (conv / 1e9))
    if nominal:
        print("nominal: %d x %d FMA/cycle x %.3f GHz ('cpu MHz') = %.1f GMAC/s" % (
            a.threads, a.assume_fma_per_cycle, mhz / 1e3, nominal / 1e9))
    print("%%peak = fraction of the %s; %%mm = of torch.mm; train counts 3x forward MACs\n"
          % ("measured AVX-512 FMA peak" if fma else "torch.mm rate"))
    header()

    rec = Recorder(peak, fma, a.wait_quiet, a.retries, a.skip_busy)
    for name, width, measures in configs:
        run_config(rec, name, width, measures, a)

    p1 = peaks()
    pmax = lambda k: max((v for v in (p0[k], p1[k]) if v is not None), default=None)  # noqa: E731
    peak, peak1, fma, fma1, conv = pmax("mm"), pmax("mm1"), pmax("fma"), pmax("fma1"), pmax("conv")
    if p1["mm"] > p0["mm"]:
        peak_ts = p1["mm_ts"]
    rec.rescale(peak, fma)
    implied_ghz = fma / (a.threads * a.assume_fma_per_cycle) / 1e9 if fma else None
    print("\npeaks (max of start and end): torch.mm %.1f GMAC/s, FMA %.1f GMAC/s (%.2f GHz), oneDNN conv %.1f"
          % (peak / 1e9, (fma or 0) / 1e9, implied_ghz or 0, conv / 1e9))
    print("final table (fractions of those peaks):")
    header()
    for r in rec.results:
        rec.print_row(r)

    elapsed = time.time() - t_start
    noisy = ["%s:%g:%s" % (r["model"], r["width"], r["measure"]) for r in rec.results if not r.get("quiet", True)]
    print("\ntotal %.0f s; %d of %d measurements quiet (< %.2f cores used by other processes)%s" % (
        elapsed, len(rec.results) - len(noisy), len(rec.results), OTHER_CORES_QUIET,
        ("; NOISY: " + ", ".join(noisy)) if noisy else ""))
    if rec.skipped:
        print("skipped (machine busy): " + ", ".join(rec.skipped))
    doc = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": a.threads,
        "cpu": cpu.get("model_name"),
        "cpu_info": cpu,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "parallel_backend": torch.__config__.parallel_info().splitlines()[-1].strip(),
        "peak": {
            "matmul_n": a.matmul_n,
            "matmul_macs_per_s": peak,
            "matmul_times_s": peak_ts,
            "matmul_macs_per_s_1thread": peak1,
            "start": {k: p0[k] for k in ("mm", "mm1", "fma", "fma1", "conv")},
            "end": {k: p1[k] for k in ("mm", "mm1", "fma", "fma1", "conv")},
            "note": "each figure is the max of the start and end measurements",
            "matmul_note": "torch.mm float32 -> MKL sgemm",
            "fma_macs_per_s": fma,
            "fma_macs_per_s_1thread": fma1,
            "fma_note": fma_err or ("bench/fma_peak.c: 16 independent AVX-512 FMA chains per thread, no memory "
                                    "traffic; implies %.2f GHz at %d fp32 FMA/cycle/core"
                                    % (implied_ghz, a.assume_fma_per_cycle)),
            "onednn_conv3x3_macs_per_s": conv,
            "nominal_theoretical_macs_per_s": nominal,
            "nominal_note": "threads x FMA/cycle x 'cpu MHz' of /proc/cpuinfo (the TSC rate under KVM, "
                            "not the running clock)",
            "mac_fraction_denominator": "fma_macs_per_s" if fma else "matmul_macs_per_s",
        },
        "settings": {"images": a.images, "points": a.points, "repeats": a.repeats, "quick": a.quick,
                     "configs": a.configs, "seed": a.seed},
        "skipped": rec.skipped,
        "quiet": {"all_quiet": not noisy and p0["quiet"]["quiet"] and p1["quiet"]["quiet"], "noisy": noisy, "threshold_other_cores": OTHER_CORES_QUIET,
                  "peaks_start": p0["quiet"], "peaks_end": p1["quiet"],
                  "note": "per result: other_cores = CPU used by other processes during the measurement "
                          "(from /proc/stat minus our own CPU time), steal_cores = hypervisor steal"},
        "elapsed_s": elapsed,
        "results": rec.results,
    }
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
        print("wrote", a.json)
    return doc


if __name__ == "__main__":
    main(ARGS)
