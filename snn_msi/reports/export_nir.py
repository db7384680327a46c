"""`snn-msi export-nir CHECKPOINT OUT.nir`: a trained checkpoint as a NIR graph (see `snn_msi.nir`)."""

from __future__ import annotations

import argparse
from collections import Counter

from . import register_command


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,40,32, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected positive dimensions like 1,40,32, got {text!r}")
    return dims


@register_command("export-nir", description="write a checkpoint's spiking network as a NIR graph (nir.read loads it)")
def _export_nir_command(q) -> None:
    from ..argtypes import positive_int
    from ..nir.exporter import OUTPUTS, PARTS, POOLS
    from ..nir.timing import INTEGRATIONS

    q.add_argument("checkpoint", help="best.pt / last.pt of a run, or its folder (for its best.pt)")
    q.add_argument("out", help="the .nir file to write (HDF5)")
    q.add_argument("--overwrite", action="store_true", help="replace OUT where it exists")
    q.add_argument("--data-root", help="the data's folder, where it is not where the run found it")
    q.add_argument(
        "--dt",
        type=float,
        default=None,
        help="simulation step in seconds that time constants are "
        "written at (default 1e-4, as snnTorch's NIR import assumes; Norse: pass its dt=; Sinabs: 1)",
    )
    q.add_argument("--audio-shape", type=_shape, help="one audio input C,F,frames (default: a test sample's)")
    q.add_argument("--visual-shape", type=_shape, help="one video frame C,H,W (default: a test sample's)")
    q.add_argument("--frames", type=positive_int, help="video frames per clip (default: a test sample's)")
    q.add_argument(
        "--outputs",
        choices=OUTPUTS,
        default="all",
        help="all: output.fused, output.audio and "
        "output.visual; fused: only output.fused (nirtorch, under snnTorch's import, hangs on several outputs)",
    )
    q.add_argument(
        "--part",
        choices=PARTS,
        help="one part with one input and one output (nirtorch-based importers: "
        "snnTorch, Norse, Sinabs, Rockpool take one input); the fusion part reads the audio features, then "
        "the visual features",
    )
    q.add_argument(
        "--pool",
        choices=POOLS,
        default="avg",
        help="the backbones' global average pool as AvgPool2d "
        "(snnTorch) or SumPool2d with 1/N folded into the next Affine (Norse and Sinabs map no AvgPool2d)",
    )
    q.add_argument(
        "--integration",
        choices=INTEGRATIONS,
        default="euler",
        help="time constants for tools that step "
        "by forward Euler (snnTorch, Norse) or by exponential decay (Sinabs with --dt 1, Rockpool)",
    )
    q.set_defaults(func=_run)


def _run(args) -> int:
    from ..nir import DEFAULT_DT, export_checkpoint

    dt = DEFAULT_DT if args.dt is None else args.dt
    options = dict(outputs=args.outputs, part=args.part, pool=args.pool, integration=args.integration)
    graph = export_checkpoint(
        args.checkpoint,
        args.out,
        dt=dt,
        audio_shape=args.audio_shape,
        visual_shape=args.visual_shape,
        frames=args.frames,
        overwrite=args.overwrite,
        data_root=args.data_root,
        **options,
    )
    kinds = Counter(type(n).__name__ for n in graph.nodes.values())
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
    print(f"wrote {args.out}: {len(graph.nodes)} nodes ({summary}), {len(graph.edges)} edges, dt = {dt:g} s")
    return 0
