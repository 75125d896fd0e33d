"""Print params / MACs per output pixel / MACs at 1280x720 output / receptive field for every architecture.

Usage: python benchmarks/model_table.py [--scales 2 3 4]
"""

from __future__ import annotations

import argparse

from srkit.archs import ARCHS, build
from srkit.archs.profile import describe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", type=int, nargs="+", default=[4])
    args = ap.parse_args()
    print("| name | scale | params (deployed) | params (training form) | MACs / output px | MACs @720p (G) "
          "| receptive field (LR px) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, spec in ARCHS.items():
        if spec.kind != "generator":
            continue
        for s in args.scales:
            if s not in spec.scales:
                continue
            d = describe(build(name, scale=s))
            rf = "whole image" if d["receptive_field"] is None else d["receptive_field"]
            print(f"| {name} | x{s} | {d['params']:,} | {d['params_training_form']:,} | "
                  f"{d['macs_per_output_pixel']:,.0f} | {d['macs_720p_G']:,.1f} | {rf} |")


if __name__ == "__main__":
    main()
