"""Run configuration: plain dataclasses (model, data, training), saved as YAML next to every run.

The defaults are the paper's recipe (SGD Nesterov, lr 5e-3, momentum 0.9, weight decay 5e-4, lr x0.1 at epoch
70, 100 epochs, batch 32, T = 4, concat fusion); every value can be overridden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..models import ModelConfig


@dataclass
class DataConfig:
    """Which data set and how it is read.

    ``dataset``: ``digits-av`` (embedded), ``kinetics-sounds``, ``cremad``, ``urbansound8k-av`` or ``h5`` (a
    cache made by ``snn-msi build-h5``; then ``root`` is the .h5 file).
    """

    dataset: str = "digits-av"
    root: str | None = None
    preset: str = "hard"
    audio_snr_db: float | None = None
    image_snr_db: float | None = None
    val_fraction: float = 0.1
    frames_per_clip: int = 3
    image_size: int = 224
    num_workers: int = 0
    limit: int | None = None  # use only the first N training samples (quick checks)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    epochs: int = 100
    batch_size: int = 32
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 5e-3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = (70,)
    gamma: float = 0.1
    unimodal_label_smoothing: float = 0.1  # the original used label smoothing on the unimodal terms
    method: str = "normal"  # normal | ogm_ge | mslr | lfm | mmpareto | constant | noise
    iemf: bool = False
    iemf_lambda: float = 1.0
    iemf_lambda_mode: str = "inside"
    iemf_noise: bool = True
    iemf_start: int = 0
    iemf_end: int | None = None
    ogm_alpha: float = 0.8
    ogm_start: int = 0
    ogm_end: int | None = None
    lfm_weight: float = 1.0
    constant_coeff: float = 1.0
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    compile: bool = False
    out: str = "runs/exp"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training config key(s) {sorted(unknown)}; valid: {sorted(known)}")
        model = d.pop("model", {})
        data = d.pop("data", {})
        bad_data = set(data) - {f.name for f in fields(DataConfig)}
        if bad_data:
            raise ValueError(f"unknown data config key(s) {sorted(bad_data)}")
        if "milestones" in d:
            d["milestones"] = tuple(d["milestones"])
        return cls(
            model=model if isinstance(model, ModelConfig) else ModelConfig.from_dict(model),
            data=data if isinstance(data, DataConfig) else DataConfig(**data),
            **d,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            d = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"cannot read config {path}: {err}") from None
        return cls.from_dict(d or {})

    def policy_kwargs(self) -> dict:
        keys = ("iemf_lambda", "iemf_lambda_mode", "iemf_noise", "iemf_start", "iemf_end", "ogm_alpha", "ogm_start",
                "ogm_end", "lfm_weight", "constant_coeff", "seed")  # fmt: skip
        return {k: getattr(self, k) for k in keys}


def demo_config(**overrides) -> TrainConfig:
    """A small spiking AV net on ``digits-av`` that trains in about half a minute on 2 CPU cores."""
    model = ModelConfig(
        num_classes=10,
        widths=(16, 32),
        blocks=(1, 1),
        stem="small",
        stem_stride=2,
        visual_channels=1,
        T=4,
    )
    cfg = TrainConfig(model=model, data=DataConfig(dataset="digits-av", preset="hard"), epochs=10, batch_size=32,
                      lr=0.05, milestones=(7,), out="runs/demo")  # fmt: skip
    return TrainConfig.from_dict({**cfg.to_dict(), **overrides}) if overrides else cfg
