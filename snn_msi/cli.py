"""The ``snn-msi`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def _cmd_neurons(args: argparse.Namespace) -> int:
    import neurons

    if not args.demo:
        width = max(map(len, neurons.available()))
        for name, desc in neurons.available().items():
            print(f"{name:<{width}}  {desc}")
        return 0
    from .plots import spike_raster

    # a fixed input: 40 neurons with drive ramping from 0 to 2 thresholds, 100 steps
    steps, n = 100, 40
    x = torch.linspace(0.0, 2.0, n).expand(steps, n).contiguous()
    rows, rasters = [], {}
    for name in neurons.available():
        kind = neurons.info(name).kind
        neuron = neurons.create(name, step_mode="m")
        with torch.no_grad():
            out = neuron(x)
        rate = out.float().mean().item()
        rows.append((name, kind, rate))
        if kind != "analogue":
            rasters[name] = out
    print(f"{'neuron':<20} {'kind':<20} {'firing rate':>11}   (ramp input 0..2, {steps} steps, {n} neurons)")
    for name, kind, rate in rows:
        label = f"{rate:11.3f}" if kind != "analogue" else f"{'(analogue)':>11}"
        print(f"{name:<20} {kind:<20} {label}")
    path = spike_raster(rasters, Path(args.out) / "neuron_raster.png", "registered neurons, ramp input")
    print(f"raster plot: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snn-msi", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("neurons", help="list the neuron registry (or --demo: rates table + raster plot)")
    q.add_argument("--demo", action="store_true", help="run every neuron on a fixed ramp input")
    q.add_argument("--out", default="runs/neurons", help="folder for the raster PNG")
    q.set_defaults(func=_cmd_neurons)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
