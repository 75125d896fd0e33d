"""Time the training form against the deployed (folded) form of re-parameterised networks.

Not a test. Runs fp32 on the CPU (or --device), median of --runs timed forward passes after --warmup, and
prints milliseconds side by side with the speed-up and the largest output difference.

    python benchmarks/deploy_speed.py --size 128 --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from srkit.archs._blocks import SharpeningConv
from srkit.archs.ecbsr import build_ecbsr_m16c64
from srkit.archs.span import build_span
from srkit.deployment import deploy


def sharpening_stack(channels: int = 32, depth: int = 8) -> nn.Module:
    """A plain SR-style body of SharpeningConvs with ReLUs: (B, 3, H, W) -> (B, 3, H, W)."""
    layers: list[nn.Module] = [SharpeningConv(3, channels), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [SharpeningConv(channels, channels), nn.ReLU()]
    layers.append(SharpeningConv(channels, 3))
    return nn.Sequential(*layers)


def median_ms(model: nn.Module, x: torch.Tensor, runs: int, warmup: int) -> float:
    """Median wall time of one forward pass, in milliseconds."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128, help="LR height and width")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [
        ("ECBSR-M16C64 x4 (Y)", build_ecbsr_m16c64(4), 1),
        ("SPAN x4", build_span(4), 3),
        ("SharpeningConv x8 (32 ch)", sharpening_stack(), 3),
    ]
    print(f"fp32, {args.device}, {torch.get_num_threads()} threads, LR {args.size}x{args.size}, "
          f"median of {args.runs} runs")
    print(f"{'model':28s} {'train ms':>10s} {'deploy ms':>10s} {'speed-up':>9s} {'params train/deploy':>22s} "
          f"{'max |diff|':>11s}")
    for name, model, ch in cases:
        model = model.to(args.device).eval()
        fused = deploy(model)
        x = torch.rand(1, ch, args.size, args.size, device=args.device)
        t_train = median_ms(model, x, args.runs, args.warmup)
        t_dep = median_ms(fused, x, args.runs, args.warmup)
        with torch.inference_mode():
            diff = (model(x) - fused(x)).abs().max().item()
        n_train = sum(q.numel() for q in model.parameters() if q.requires_grad)
        n_dep = sum(q.numel() for q in fused.parameters())
        print(f"{name:28s} {t_train:10.1f} {t_dep:10.1f} {t_train / t_dep:8.2f}x {n_train:>11,d}/{n_dep:<10,d} "
              f"{diff:11.2e}")


if __name__ == "__main__":
    main()
