"""The energy report of a trained checkpoint against its trained ReLU twin, at known test accuracy.

``snn-msi energy CHECKPOINT --twin TWIN_CHECKPOINT`` runs :func:`energy_report_for_checkpoint`: both models'
test accuracy (the whole test split), then their operations, memory traffic and energy per inference on
``--samples`` test samples, priced on the 45 nm CMOS profile and (the SNN) on Loihi; a table, CSV / JSON and
plots. The twin is the same recipe with ReLU neurons::

    snn-msi train --config RUN/config.yaml --neuron relu --out RUN_relu
    snn-msi energy RUN/best.pt --twin RUN_relu/best.pt      # or, in one go: snn-msi energy RUN/best.pt --train-twin

Without a twin the comparison is against an untrained ReLU network of the same architecture, and the report
says so. The counting and pricing are :mod:`snn_msi.metrics.energy`.
"""

from __future__ import annotations

from pathlib import Path

import torch

import neurons

from ..metrics.energy import (
    MEMORY_LEVELS,
    PRECISIONS,
    CostModel,
    EnergyReport,
    NeuromorphicProfile,
    energy_report,
    relu_config,
)
from ..schema import ConfigError
from ..training.rundir import canonical_config, config_diff
from . import register_command

#: config keys a twin may differ in without a note (the neuron itself, where it runs, how it loads data)
TWIN_KEYS = ("out", "device", "data.num_workers", "model.neuron", "model.neuron_args", "model.T")


def twin_config(cfg, out: str | Path):
    """The ReLU twin's training config: ``cfg`` with the model's :func:`relu_config` and its own ``out``."""
    return cfg.replace(model=relu_config(cfg.model).to_dict(), out=str(out))


def default_twin_folder(checkpoint: str | Path) -> Path:
    """``runs/demo/IEMF_s0/best.pt`` -> ``runs/demo/IEMF_s0_relu``."""
    run = Path(checkpoint).resolve().parent
    return run.with_name(f"{run.name}_relu")


def train_twin(
    checkpoint: str | Path,
    out: str | Path | None = None,
    overwrite: bool = False,
    data_root: str | Path | None = None,
) -> Path:
    """Train the ReLU twin of a checkpoint with its config (Trainer; a finished twin with the same config is
    reused; ``data_root``: the data's folder where it moved). Returns the twin's ``best.pt``."""
    from ..training import load_model
    from ..training.rundir import checkpoint_file
    from .runs import run_config

    checkpoint = checkpoint_file(checkpoint)
    _, cfg = load_model(checkpoint, data_root=data_root)
    tcfg = twin_config(cfg, out if out is not None else default_twin_folder(checkpoint))
    print(f"training the ReLU twin in {tcfg.out} ({tcfg.epochs} epochs, seed {tcfg.seed})")
    run_config(tcfg.to_dict(), overwrite)
    return Path(tcfg.out) / "best.pt"


def load_twin(path: str | Path, snn_cfg, data_root: str | Path | None = None):
    """A trained twin checkpoint as a one-step ReLU network, its config and the notes on how its recipe
    differs from the SNN's; an error when it is not a ReLU network of the same architecture."""
    from ..metrics.energy import relu_twin
    from ..training import load_model

    trained, cfg = load_model(path, data_root=data_root)
    if neurons.info(cfg.model.neuron).kind != "analogue":
        raise ValueError(
            f"--twin {path}: its neuron is {cfg.model.neuron!r}, not a ReLU twin (train it with --neuron relu)"
        )
    arch = config_diff(snn_cfg.model.to_dict(), cfg.model.to_dict(), ("neuron", "neuron_args", "T"))
    if arch:
        raise ValueError(f"--twin {path}: another architecture ({'; '.join(arch)})")
    twin = relu_twin(cfg.model, trained.state_dict())
    recipe = config_diff(canonical_config(snn_cfg.to_dict()), canonical_config(cfg.to_dict()), TWIN_KEYS)
    notes = [f"the twin's recipe differs from the SNN's: {'; '.join(recipe)}"] if recipe else []
    return twin, cfg, notes


def test_set_of(cfg):
    """The test split of a run's data (its data config and seed)."""
    from ..data import build_datasets

    return build_datasets(cfg.data, cfg.seed)[2]


def energy_report_for_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    samples: int = 64,
    cost: CostModel | None = None,
    neuromorphic: NeuromorphicProfile | None = None,
    twin: str | Path | None = None,
    bins: int = 20,
    quiet: bool = False,
    data_root: str | Path | None = None,
) -> EnergyReport:
    """``snn-msi energy``: both accuracies on the test split, then the counts and energies on ``samples`` test
    samples; prints the table, writes CSV / JSON and plots in ``out`` (default: ``energy/`` beside it)."""
    from torch.utils.data import DataLoader, Subset

    from ..plots import energy_bars, energy_breakdown, firing_rate_bars, spike_histograms, spike_raster
    from ..training import evaluate, load_model
    from ..training.rundir import checkpoint_file

    checkpoint = checkpoint_file(checkpoint)
    model, cfg = load_model(checkpoint, data_root=data_root)
    twin_model, notes = None, []
    if twin is not None:
        twin_model, twin_cfg, notes = load_twin(twin, cfg, data_root)
    test = test_set_of(cfg)
    batch = next(iter(DataLoader(Subset(test, range(min(samples, len(test)))), batch_size=samples)))
    report = energy_report(model, batch.audio, batch.frames, cost, neuromorphic, twin_model, bins)
    report.notes += notes
    report.accuracy["snn"] = evaluate(model, test, "cpu", cfg.batch_size).acc
    if twin_model is not None:
        same = (twin_cfg.data, twin_cfg.seed) == (cfg.data, cfg.seed)
        report.ann_source = f"trained twin {twin}"
        report.accuracy["ann"] = evaluate(
            twin_model, test if same else test_set_of(twin_cfg), "cpu", twin_cfg.batch_size
        ).acc
    if not quiet:
        print(
            f"energy per inference of {checkpoint} against its ReLU twin (T = {cfg.model.T}, {len(batch.label)} "
            f"test samples measured; accuracy on all {len(test)} test samples)\n"
        )
        print(report.table())
    out = Path(out) if out else Path(checkpoint).parent / "energy"
    paths = report.write(out)
    firing_rate_bars(report.firing_rates, out / "firing_rates.png")
    energy_bars(report.totals, out / "energy.png", "compute: 45 nm CMOS (Horowitz 2014)")
    energy_breakdown(
        report.snn.totals,
        report.ann.totals,
        out / "energy_breakdown.png",
        report.neuromorphic["name"],
        "SNN vs " + ("trained" if report.ann_trained else "UNTRAINED") + " ReLU twin, per inference",
    )
    spike_histograms(report.histograms, out / "spike_histograms.png")
    rasters = _one_sample_raster(model, batch.audio[:1], batch.frames[:1])
    spike_raster(rasters, out / "raster.png", "spikes of one test sample (64 neurons per layer)")
    if not quiet:
        print(
            f"\nwrote {', '.join(str(p) for p in paths)} and plots (spike_histograms.png, energy_breakdown.png, "
            f"firing_rates.png, energy.png, raster.png) in {out}"
        )
    return report


def _one_sample_raster(model, audio, frames, per_layer: int = 64) -> dict[str, torch.Tensor]:
    seen = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: seen.setdefault(n, o.detach()))
        for n, m in model.named_modules()
        if neurons.is_spiking(m)
    ]
    with torch.no_grad():
        model(audio, frames)
    for h in hooks:
        h.remove()
    return {n: s.flatten(2)[:, 0, :per_layer] for n, s in seen.items() if s.dim() >= 3}


@register_command(
    "energy",
    description="operations, memory traffic and energy of a checkpoint against its ReLU "
    "twin at known test accuracy, 45 nm CMOS and Loihi (table + CSV/JSON + plots)",
)
def _energy_command(q) -> None:
    from ..argtypes import nonnegative_float, positive_int

    q.add_argument("checkpoint", help="a run's best.pt (the weights the report counts)")
    g = q.add_mutually_exclusive_group()
    g.add_argument(
        "--twin",
        metavar="TWIN_CHECKPOINT",
        help="the trained ReLU twin (same recipe and seed: "
        "`snn-msi train --config RUN/config.yaml --neuron relu --out RUN_relu`)",
    )
    g.add_argument(
        "--train-twin",
        action="store_true",
        help="train the twin first (the checkpoint's config with neuron=relu; a finished twin is reused), then compare",
    )
    q.add_argument("--twin-out", help="folder of --train-twin (default: the run folder's name + _relu)")
    q.add_argument("--overwrite", action="store_true", help="(--train-twin) retrain a twin folder of another config")
    q.add_argument("--out", default=None, help="folder for the tables and plots (default: energy/ beside it)")
    q.add_argument("--data-root", help="the data's folder, where it is not where the run found it")
    q.add_argument("--samples", type=positive_int, default=64, help="test samples to count operations on")
    q.add_argument("--bins", type=positive_int, default=20, help="bins of the firing-rate and spike-count histograms")
    g = q.add_argument_group("45 nm CMOS profile (Horowitz, ISSCC 2014); defaults from --precision")
    g.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="number format (default: fp32)")
    g.add_argument("--e-mac", type=nonnegative_float, help="pJ per multiply-accumulate")
    g.add_argument("--e-ac", type=nonnegative_float, help="pJ per accumulate")
    g.add_argument("--e-cmp", type=nonnegative_float, help="pJ per compare (default: --e-ac)")
    for name in ("weight", "act", "state"):
        g.add_argument(f"--{name}-bits", type=positive_int, help=f"bits per {name} value (default: the precision's)")
    g.add_argument("--spike-bits", type=positive_int, default=1, help="bits per spike moved (default: 1)")
    g.add_argument("--memory", choices=list(MEMORY_LEVELS), default="sram-8kb", help="memory level of the traffic")
    g.add_argument("--e-byte", type=nonnegative_float, help="pJ per byte moved (default: the memory level's)")
    g.add_argument(
        "--zero-skip",
        action="store_true",
        help="analogue-fed layers skip MACs on zero inputs (the ReLU twin's zeros on sparse hardware)",
    )
    g = q.add_argument_group("neuromorphic profile (Loihi, Davies et al., IEEE Micro 2018, Table 2)")
    g.add_argument("--chip-synop-pj", type=nonnegative_float, default=23.6, help="pJ per synaptic event")
    g.add_argument("--chip-neuron-pj", type=nonnegative_float, default=81.0, help="pJ per neuron update")
    g.add_argument("--chip-spike-pj", type=nonnegative_float, default=1.7, help="pJ per spike routed")
    q.set_defaults(func=_run)


def _run(args) -> int:
    cost = CostModel(
        precision=args.precision,
        e_mac=args.e_mac,
        e_ac=args.e_ac,
        e_cmp=args.e_cmp,
        weight_bits=args.weight_bits,
        act_bits=args.act_bits,
        state_bits=args.state_bits,
        spike_bits=args.spike_bits,
        memory=args.memory,
        e_byte=args.e_byte,
        zero_skip=args.zero_skip,
    )
    figures = {"e_synop": args.chip_synop_pj, "e_neuron": args.chip_neuron_pj, "e_spike": args.chip_spike_pj}
    loihi = NeuromorphicProfile()
    own = any(getattr(loihi, k) != v for k, v in figures.items())
    chip = NeuromorphicProfile("chip", **figures, source="figures given on the command line") if own else loihi
    if args.twin_out and not args.train_twin:
        raise ConfigError(f"--twin-out {args.twin_out}: the folder --train-twin trains into (give --train-twin too)")
    twin = train_twin(args.checkpoint, args.twin_out, args.overwrite, args.data_root) if args.train_twin else args.twin
    energy_report_for_checkpoint(
        args.checkpoint, args.out, args.samples, cost, chip, twin, args.bins, data_root=args.data_root
    )
    return 0
