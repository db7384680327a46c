"""``snn-msi sweep``: tune a method's options (or any config key) on the validation split with Optuna.

    snn-msi sweep --method ogm_ge --param alpha=0.05:2:log --trials 20 --out runs/sweep_ogm
    snn-msi sweep --model ks-paper --data-root /data/ks --method ogm_ge --iemf --param alpha=0.1:1:log \\
        --param lr=1e-3:1e-2:log --trials 40 --executor ray --gpus-per-run 1

A trial trains the recipe (the same options as ``snn-msi train`` and the studies: ``--config``, ``--model``,
``--set``, ...) once, on the first of its seeds, with the values Optuna's TPE sampler proposes (random draws until
10 trials are complete or pruned, then TPE's model of them; each trial's draws are seeded with the seed and its
place in the sweep, and made from the trials of the batches of ``--jobs`` before its own, so a sweep stopped and
rerun with the same ``--jobs`` tries the points one that ran through would); its value is the best validation
accuracy (the test split is never looked at to choose). A search space with no more points than ``--trials``
(choices and whole-number ranges only) is tried point by point instead, each once (a sampled sweep rerun with
``--trials`` past its space's size tries next the points it has not tried). A trial trains epoch by epoch, reporting
its best validation accuracy so far (the value it is judged by), and from the second epoch on the median pruner
stops one that falls below the median of the complete trials of the batches before its own at the same epoch
(``--no-prune``: never). ``--param NAME=LOW:HIGH[:log|:int]`` or ``NAME=A,B,C``; a name is an option of the method
(``alpha`` of OGM-GE; see ``snn-msi methods``) or a dotted config key (``lr``, ``loss.label_smoothing``).

The trials run on the studies' executors (``--executor local|ray``, ``--jobs`` trials at once) in their own run
folders ``out/trial_NNN``. Optuna's storage is the SQLite file ``out/sweep.db``: a killed sweep rerun with the
same command continues (a trial that was running resumes from its folder's ``last.pt``) until ``--trials`` trials
are complete or pruned, or a trial has reached 100 % validation accuracy (:data:`CEILING`: no later trial could
be chosen over it, since a tie keeps the earlier trial). Written in ``out``: ``trials.csv``, ``summary.md``,
``sweep.png`` and ``tuned.yaml`` (``{method: {option: best value}}``, what ``snn-msi study methods --tuned``
reads).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.identity import data_mismatch
from ..files import write_csv, write_text
from ..schema import ConfigError, apply_overrides
from ..training.config import TrainConfig, demo_config, policies_for
from . import register_command
from .runs import RunOptions, add_run_arguments, make_executor, run_options, study_recipe

__all__ = ["Param", "SweepConfig", "parse_param", "run_sweep"]

STUDY = "sweep"  # the Optuna study's name inside sweep.db
#: the best value a trial can have (validation accuracy 1): a sweep ends at the first complete trial that has it
CEILING = 1.0


@dataclass(frozen=True)
class Param:
    """One searched value: a number in ``[low, high]`` (``log``: sampled on a log scale; ``integer``: whole
    numbers) or one of ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def size(self) -> int | None:
        """How many values the parameter can take, when finitely many (choices, a whole-number range)."""
        if self.choices:
            return len(self.choices)
        return int(self.high) - int(self.low) + 1 if self.integer else None

    def values(self) -> list:
        """Every value of a parameter with :meth:`size`."""
        return list(self.choices) if self.choices else list(range(int(self.low), int(self.high) + 1))

    def describe(self) -> str:
        if self.choices:
            return f"{self.name} in {list(self.choices)}"
        return (
            f"{self.name} in [{self.low:g}, {self.high:g}]{' log' if self.log else ''}{' int' if self.integer else ''}"
        )


def parse_param(text: str) -> Param:
    """``alpha=0.05:2:log``, ``start=0:3:int``, ``lr=1e-3:1e-1:log:int`` is refused; ``model.fusion=concat,msi``
    (a method's option by its name, any other config key dotted, as ``--set`` takes it)."""
    from ..schema import parse_value

    name, sep, spec = text.partition("=")
    bad = ConfigError(f"--param: expected NAME=LOW:HIGH[:log|:int] or NAME=A,B,C, got {text!r}")
    if not sep or not name or not spec:
        raise bad
    if "," in spec:
        return Param(name, choices=tuple(parse_value(v) for v in spec.split(",")))
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "int")):
        raise bad
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise bad from None
    log, integer = len(parts) == 3 and parts[2] == "log", len(parts) == 3 and parts[2] == "int"
    if not (math.isfinite(low) and math.isfinite(high) and low < high) or (log and low <= 0):
        raise ConfigError(f"--param {name}: need LOW < HIGH{' and LOW > 0 on a log scale' if log else ''}, got {spec}")
    if integer and (low != int(low) or high != int(high)):
        raise ConfigError(f"--param {name}: an :int range needs whole numbers, got {spec}")
    return Param(name, low, high, log=log, integer=integer)


@dataclass
class SweepConfig:
    """``method`` (with ``iemf`` on top) on the ``recipe`` (options the recipe gives the method stay unless searched);
    ``params`` searched over ``trials`` trials (:meth:`grid`: each point of a smaller space once); ``prune``: the
    median pruner on each trial's best validation accuracy so far, per epoch;
    ``runs``: the seed (the first), folder and executor; ``first``: the values of the first trial (e.g. the
    method's defaults, so the best trial is at least as good on validation)."""

    method: str = "normal"
    iemf: bool = False
    params: list[Param] = field(default_factory=list)
    trials: int = 20
    prune: bool = True
    recipe: TrainConfig | None = None
    runs: RunOptions = field(default_factory=lambda: RunOptions(seeds=[0], out="runs/sweep"))
    first: dict | None = None

    def __post_init__(self) -> None:
        from ..training import METHODS
        from ..training.policies.iemf import IEMF

        self.recipe = self.recipe or demo_config()
        if self.method not in METHODS:
            raise ConfigError(f"--method: {METHODS.unknown(self.method)}")
        if self.method == IEMF.name and self.iemf:
            raise ConfigError("--method iemf already is IEMF; leave out --iemf")
        if not self.params:
            raise ConfigError("say what to tune: --param NAME=LOW:HIGH[:log|:int] (repeatable)")
        if self.trials < 1:
            raise ConfigError(f"--trials must be >= 1, got {self.trials}")
        if len(self.runs.seeds) != 1:
            raise ConfigError(
                f"--seeds: a sweep trains each trial once, on one seed (got {len(self.runs.seeds)}); give one "
                "(--seed-start S or --seed-list S), and repeat the best values over seeds with a study"
            )
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ConfigError(f"--param: each name once, got {names}")
        for p in self.params:  # a method option or a config key, at each choice or both ends: before anything runs
            for v in p.values() if p.choices else [p.low, p.high]:
                self.config({p.name: int(v) if p.integer else v}, self.runs.out)

    def grid(self) -> list[dict] | None:
        """Every point of the search space, ``first`` first, when it has no more points than ``trials`` (and
        ``first``, if given, is one of them): a sweep then tries each point once (drawing would repeat some and
        miss others); None otherwise."""
        sizes = [p.size() for p in self.params]
        if any(n is None for n in sizes) or math.prod(sizes) > self.trials:
            return None
        names = [p.name for p in self.params]
        points = [
            dict(zip(names, combo, strict=True)) for combo in itertools.product(*(p.values() for p in self.params))
        ]
        if self.first is not None and self.first not in points:
            return None
        return [q for q in points if q == self.first] + [q for q in points if q != self.first]

    def budget(self) -> int:
        """The trials to run: ``trials``, or the size of a smaller search space (:meth:`grid`)."""
        grid = self.grid()
        return self.trials if grid is None else len(grid)

    def owner(self, name: str) -> tuple[str, str] | None:
        """``(method, option)`` that a searched ``name`` sets: ``METHOD.option`` or a bare option of the method or
        (with ``iemf``) of IEMF, as ``train --method-arg`` reads it; None for a config key (``lr``,
        ``model.fusion``). A bare name both have is an error naming the two."""
        from ..training.policies import option_owner
        from ..training.policies.iemf import IEMF

        return option_owner(name, [self.method] + ([IEMF.name] if self.iemf else []), f"--param {name}")

    def config(self, values: dict, out: str) -> TrainConfig:
        """The recipe with a trial's ``values``: method options into their method (:meth:`owner`), the rest as
        ``--set`` keys."""
        from ..training.policies.iemf import IEMF

        d = self.recipe.to_dict()
        given = {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in d.get("policies") or []}
        opts = {IEMF.name: dict(given.get(IEMF.name, {})), self.method: dict(given.get(self.method, {}))}
        keys = []
        for name, value in values.items():
            owner = self.owner(name)
            if owner is None:
                keys.append(f"{name}={value}")
            else:
                opts[owner[0]][owner[1]] = value
        d["policies"] = policies_for(self.method, iemf=self.iemf, **opts[self.method])
        for p in d["policies"]:
            if p["name"] == IEMF.name and self.method != IEMF.name:
                p.update(opts[IEMF.name])
        apply_overrides(d, keys, TrainConfig, option="--param")
        return TrainConfig.from_dict({**d, "seed": self.runs.seeds[0], "out": out})

    def spec(self) -> dict:
        """What makes two sweeps the same sweep (the recipe's placement keys aside)."""
        r = {k: v for k, v in self.recipe.to_dict().items() if k not in ("out", "device")}
        r["data"] = {k: v for k, v in r["data"].items() if k not in ("root", "num_workers")}
        return {
            "method": self.method,
            "with_iemf": self.iemf,
            "params": [p.describe() for p in self.params],
            "prune": self.prune,
            "seed": self.runs.seeds[0],
            "first": self.first,
            "recipe": r,
        }


# -- one trial, where it runs ------------------------------------------------------------------------------------
def make_pruner(prune: bool, jobs: int = 1):
    """The sweep's pruner: median pruning once 2 trials are complete and a trial has reported 2 epochs (or none),
    against the trials of the batches of ``jobs`` before the trial's own (:class:`~._optuna.OneGoPruner`). The
    driver and every trial's process build it here: a study loaded without it gets Optuna's default pruner."""
    import optuna

    from ._optuna import OneGoPruner

    if not prune:
        return optuna.pruners.NopPruner()
    return OneGoPruner(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2), jobs)


def run_trial(item: tuple[dict, int], storage: str, prune: bool, jobs: int = 1) -> tuple[str, float]:
    """Train one trial's run in its folder (resuming from ``last.pt``), reporting its best validation accuracy so
    far to Optuna after each epoch (the trainer's ``on_epoch``; the epochs of an earlier attempt first, from
    ``metrics.csv``) and stopping where Optuna prunes; ``("complete", best val acc)``, ``("pruned", best val acc
    so far)`` or ``("fail", nan)`` with the error logged."""
    import logging

    import optuna

    from ..training import Trainer, load_checkpoint
    from ..training.runlog import read_csv

    cfg_dict, trial_id = item
    study = optuna.load_study(study_name=STUDY, storage=storage, pruner=make_pruner(prune, jobs))
    trial = optuna.Trial(study, trial_id)
    cfg = TrainConfig.from_dict(cfg_dict)
    reported = set(study._storage.get_trial(trial_id).intermediate_values)
    best = [-math.inf]  # the best validation accuracy so far: what the trial's value will be

    def report(row: dict) -> bool:
        best[0] = max(best[0], float(row["val_acc"]))
        if int(row["epoch"]) not in reported:
            trial.report(best[0], int(row["epoch"]))
            reported.add(int(row["epoch"]))
        return prune and trial.should_prune()

    try:
        # an earlier attempt's epochs (killed), those its checkpoint kept (a row logged after it is redone, and
        # reported then): reported where they were not; pruned here if Optuna says so, unless every epoch trained
        last = Path(cfg.out) / "last.pt"
        kept = int(load_checkpoint(last)["epoch"]) if last.is_file() else 0
        earlier = [report(row) for row in read_csv(Path(cfg.out) / "metrics.csv") if int(row["epoch"]) <= kept]
        if earlier and earlier[-1] and kept < cfg.epochs:
            return "pruned", best[0]
        result = Trainer(cfg, mode="resume", progress=False, on_epoch=report, plots=False).fit()
        if result is not None:  # the last epoch trained: the run is finished
            return "complete", result.best_val_acc
        return "pruned", best[0]
    except (ValueError, RuntimeError, OSError) as err:
        logging.getLogger(__name__).error("trial %s (%s) failed: %s", trial.number, cfg.out, err)
        return "fail", math.nan


#: the files a sweep writes in its folder besides sweep.db and the trials' folders
OUTPUTS = ("trials.csv", "summary.md", "sweep.png", "tuned.yaml")


# -- the sweep -----------------------------------------------------------------------------------------------------
def _open_study(scfg: SweepConfig):
    import optuna

    from ._optuna import TrialSeededTPE

    out = Path(scfg.runs.out)
    db = out / "sweep.db"
    storage = f"sqlite:///{db.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = TrialSeededTPE(scfg.runs.seeds[0], scfg.runs.jobs)  # draws that do not depend on where it stopped
    pruner = make_pruner(scfg.prune, scfg.runs.jobs)
    study = _saved_study(db, storage, sampler, pruner) if db.is_file() else None
    if study is not None:
        saved = study.user_attrs.get("spec")
        if saved != scfg.spec():
            if not scfg.runs.overwrite:
                raise ConfigError(
                    f"{out} holds another sweep ({_first_difference(saved, scfg.spec())}); pass "
                    "--overwrite to start it again, or another --out"
                )
            optuna.delete_study(study_name=STUDY, storage=storage)
            for folder in out.glob("trial_*"):
                import shutil

                shutil.rmtree(folder)
            for name in OUTPUTS:  # nothing of the old sweep stays to be read as the new one's
                (out / name).unlink(missing_ok=True)
        elif (other := data_mismatch(study.user_attrs.get("data"), _recipe_data(scfg))) is not None:
            raise ConfigError(
                f"{out} holds a sweep on other data ({other}); pass --overwrite to start it again, or another --out"
            )
        else:
            _enqueue(study, scfg.grid() or [])  # a rerun with more --trials may have made the space a grid
            return study, storage
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize", sampler=sampler, pruner=pruner)
    study.set_user_attr("spec", scfg.spec())
    study.set_user_attr("data", _recipe_data(scfg))  # data.root is placement: a moved copy continues, other data not
    _enqueue(study, scfg.grid() or ([scfg.first] if scfg.first else []))
    return study, storage


def _saved_study(db: Path, storage: str, sampler, pruner):
    """The sweep saved in ``db``; None when the database holds none (a kill between ``--overwrite``'s delete and
    create): it starts afresh there. An empty file or one that is not SQLite is a one-line error (SQLite would
    write a database into an empty file); other database errors (locked, a schema to upgrade) stay as they are."""
    import optuna

    if db.stat().st_size == 0:
        raise ConfigError(f"{db} is an empty file, not a sweep's database; move it away, or give another --out")
    try:
        return optuna.load_study(study_name=STUDY, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:  # optuna: no study of that name in the database
        return None
    except Exception as err:
        if "file is not a database" not in str(err):
            raise
        raise ConfigError(
            f"{db} is not a sweep's database (SQLite: file is not a database); move it away, or give another --out"
        ) from None


def _recipe_data(scfg: SweepConfig) -> dict:
    """The data record (classes, clip counts) of the sweep's data."""
    from .runs import data_record_of

    return data_record_of(scfg.recipe.data)


def _enqueue(study, points: list[dict]) -> None:
    """Queue each point as a trial, unless a trial (in any state) has it already."""
    for point in points:
        study.enqueue_trial(point, skip_if_exists=True)


def _first_difference(a: dict | None, b: dict) -> str:
    from ..training.rundir import config_diff

    diff = config_diff(a or {}, b)
    return diff[0] if diff else "an older format"


def _requeue_stale(study) -> int:
    """Trials left running by a killed sweep: enqueued again with the same values and run folder (which resumes
    from its ``last.pt``), the stale ones marked failed and not counted. One killed before it had all its values
    (no run folder yet) is not: the trial asked in its place draws the same values (``_optuna``), where the values
    it had would have left the rest to a sampler that had not drawn them. The trials that were waiting (a grid's
    points) are enqueued again after the reruns, in the order of their places, since Optuna runs the oldest
    waiting trial first. Each is enqueued once, also when a kill came during this."""
    from optuna.trial import TrialState

    from ._optuna import first_number, in_order

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not stale:
        return 0
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    queued = {t.user_attrs.get("rerun_of") for t in waiting}
    for t in in_order([*stale, *waiting]):
        fixed = t.system_attrs.get("fixed_params", {})  # an enqueued point (the first, a grid's, a rerun)
        if t.number not in queued and (fixed or "run_dir" in t.user_attrs):
            attrs = {"run_dir": t.user_attrs.get("run_dir"), "trial": first_number(t), "rerun_of": t.number}
            study.enqueue_trial({**fixed, **t.params}, user_attrs=attrs)
        study._storage.set_trial_user_attr(t._trial_id, "requeued", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def _asked(study) -> int:
    """Places taken (``_optuna.places``): trials asked, less those a kill left to a rerun."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return sum(1 for t in trials if t.state != TrialState.WAITING and not t.user_attrs.get("requeued"))


def trial_folder(out: Path, trial) -> str:
    """A trial's run folder in the sweep folder ``out``. The study records it by name (``trial_NNN``), so a sweep
    folder moved or copied elsewhere continues there; a sweep of an older version recorded the absolute path, of
    which the name is taken."""
    name = trial.user_attrs.get("run_dir")
    return str(out / (Path(name).name if name else f"trial_{trial.number:03d}"))


def at_ceiling(study) -> bool:
    """A complete trial has reached :data:`CEILING`: no later one can be chosen (ties keep the earlier trial)."""
    from optuna.trial import TrialState

    return any(t.value >= CEILING for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _counted(study) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False, states=done) if not t.user_attrs.get("requeued"))


def run_sweep(scfg: SweepConfig) -> list[dict]:
    """Run (or continue) the sweep; write ``trials.csv``, ``summary.md``, ``sweep.png`` and ``tuned.yaml`` in
    ``scfg.runs.out`` and print the table. Returns the trial rows, best first."""
    from optuna.trial import TrialState

    t0 = time.time()
    out = Path(scfg.runs.out)
    study, storage = _open_study(scfg)
    requeued = _requeue_stale(study)
    if requeued:
        print(f"{requeued} trial(s) of a killed sweep continue from their folders")
    executor = make_executor(scfg.runs)
    fn = functools.partial(run_trial, storage=storage, prune=scfg.prune, jobs=scfg.runs.jobs)
    budget = scfg.budget()
    # at the ceiling, the batch a kill cut short is finished first, as the sweep that ran through finished it
    while (left := budget - _counted(study)) > 0 and (not at_ceiling(study) or _asked(study) % scfg.runs.jobs):
        # a batch starts at a place that is a multiple of --jobs, as in a sweep that ran through (_optuna)
        batch = [study.ask() for _ in range(min(scfg.runs.jobs - _asked(study) % scfg.runs.jobs, left))]
        items = []
        for t in batch:
            values = {p.name: p.suggest(t) for p in scfg.params}
            folder = trial_folder(out, t)
            t.set_user_attr("run_dir", Path(folder).name)
            items.append((scfg.config(values, folder).to_dict(), t._trial_id))
        for t, (state, value) in zip(batch, executor.map(fn, items, [i[0]["out"] for i in items]), strict=True):
            if state == "complete":
                study.tell(t, value)
            else:
                study.tell(t, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)
    if _counted(study) < budget:  # ended at the ceiling
        print(
            f"a trial reached {CEILING:.0%} validation accuracy, which no later trial can beat (a tie keeps the "
            f"earlier one): the sweep ends after {_counted(study)} of {budget} trials"
        )
    rows = trial_rows(study, scfg)
    write_csv(out / "trials.csv", rows)
    md = markdown_table(rows, scfg)
    write_text(out / "summary.md", md + "\n")
    best = rows[0] if rows and rows[0]["state"] == "complete" else {}
    owners = {p.name: scfg.owner(p.name) for p in scfg.params}
    tuned = {scfg.method: {o[1]: best[n] for n, o in owners.items() if o and o[0] == scfg.method}} if best else {}
    if tuned.get(scfg.method):
        write_text(out / "tuned.yaml", yaml.safe_dump(tuned, sort_keys=False))
    else:  # no complete trial, or no method option searched: no tuned values (none of an earlier sitting's)
        (out / "tuned.yaml").unlink(missing_ok=True)
    sweep_plot(study, scfg, out / "sweep.png")
    print(md)
    print(
        f"\n{len(rows)} trials in {(time.time() - t0) / 60:.1f} min; wrote {out / 'summary.md'}, {out / 'sweep.png'}"
        + (f", {out / 'tuned.yaml'}" if tuned.get(scfg.method) else "")
    )
    others = [f"{n}={best[n]}" for n, o in owners.items() if not (o and o[0] == scfg.method)] if best else []
    if others:
        print(
            f"the best trial's other values ({', '.join(others)}) are not options of {scfg.method}: tuned.yaml "
            "(what a study's --tuned reads) leaves them out; give them to a study yourself"
        )
    return rows


def trial_rows(study, scfg: SweepConfig) -> list[dict]:
    """One row per counted trial: number, state, value (best validation accuracy), epochs trained, the values;
    complete trials first, best first."""
    from ._optuna import first_number

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("requeued") or t.state.name not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        rows.append(
            {
                "trial": first_number(t),  # its place among the rows: a tie keeps the earlier trial
                "state": t.state.name.lower(),
                "value": t.value if t.value is not None else max(t.intermediate_values.values(), default=math.nan),
                "epochs": len(t.intermediate_values),
                **{p.name: t.params.get(p.name) for p in scfg.params},
                "run_dir": trial_folder(Path(scfg.runs.out), t),
            }
        )
    # a tie goes to the earlier trial (a sweep's first trial is its starting values): a trial rerun after a kill
    # keeps the number it first had
    rows.sort(key=lambda r: (r["state"] != "complete", -(r["value"] if math.isfinite(r["value"]) else -1), r["trial"]))
    return rows


def markdown_table(rows: list[dict], scfg: SweepConfig) -> str:
    names = [p.name for p in scfg.params]
    lines = [f"| trial | state | best val acc % | epochs | {' | '.join(names)} |", "|---" * (4 + len(names)) + "|"]
    for r in rows:
        vals = " | ".join(f"{r[n]:.4g}" if isinstance(r[n], float) else str(r[n]) for n in names)
        acc = f"{100 * r['value']:.1f}" if math.isfinite(r["value"]) else "-"
        lines.append(f"| {r['trial']} | {r['state']} | {acc} | {r['epochs']} | {vals} |")
    rec = scfg.recipe
    lines += [
        "",
        f"{scfg.method}{' + iemf' if scfg.iemf else ''} on {rec.data.dataset} (preset {rec.data.preset}), "
        f"{rec.epochs} epochs, seed {scfg.runs.seeds[0]}; searched: "
        f"{', '.join(p.describe() for p in scfg.params)}; {'every point' if scfg.grid() else 'TPE'}, "
        f"{'median pruning per epoch' if scfg.prune else 'no pruning'}",
    ]
    return "\n".join(lines)


def sweep_plot(study, scfg: SweepConfig, path: Path) -> Path:
    """Left: each trial's value against the first numeric parameter (complete and pruned); right: every trial's
    best validation accuracy so far, per epoch (pruned trials dashed)."""
    import matplotlib.pyplot as plt

    from .. import plots  # noqa: F401  (selects the non-interactive backend)
    from ..plots import save_figure

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("requeued")]
    p = next((p for p in scfg.params if not p.choices), scfg.params[0])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        pts = [
            (
                t.params.get(p.name),
                t.value if t.value is not None else max(t.intermediate_values.values(), default=math.nan),
            )
            for t in trials
            if t.state.name == state
        ]
        if pts:
            ax1.scatter([x for x, _ in pts], [100 * y for _, y in pts], marker=marker, label=state.lower())
    if p.log:
        ax1.set_xscale("log")
    ax1.set_xlabel(p.name)
    ax1.set_ylabel("best validation accuracy (%)")
    ax1.set_title(f"{scfg.method}: {len(trials)} trials")
    ax1.legend(fontsize=8)
    for t in trials:
        steps = sorted(t.intermediate_values.items())
        if steps:
            ax2.plot(
                [s for s, _ in steps],
                [100 * v for _, v in steps],
                ls="--" if t.state.name == "PRUNED" else "-",
                lw=1,
                alpha=0.8,
            )
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.set_title("best so far, per epoch (dashed: pruned)")
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


# -- the command ---------------------------------------------------------------------------------------------------
@register_command(
    "sweep",
    description="tune a method's options on the validation split with Optuna (TPE, or every point of a small "
    "space; pruning per epoch); resumes; runs on the studies' executors",
)
def _sweep_command(q) -> None:
    from ..training import METHODS

    q.add_argument("--method", choices=METHODS.names(), default="normal", help="the method to tune (default normal)")
    q.add_argument("--iemf", action="store_true", help="with IEMF on top of --method")
    q.add_argument(
        "--param",
        action="append",
        default=[],
        type=_param_type,
        metavar="NAME=LOW:HIGH[:log|:int]",
        help="a searched value (repeatable): a method's option by its name (alpha=0.05:2:log, start=0:3:int), "
        "any other config key dotted as --set takes it (lr=1e-3:1e-1:log, model.fusion=concat,msi)",
    )
    q.add_argument(
        "--trials",
        type=int,
        default=20,
        help="complete or pruned trials to reach (default 20; a space with no more points: each point once)",
    )
    q.add_argument("--no-prune", action="store_true", help="train every trial to the end")
    add_run_arguments(q, seeds=1, out="runs/sweep", jobs=2)
    q.set_defaults(func=_run)


def _param_type(text: str) -> Param:
    import argparse

    try:
        return parse_param(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--param: ")) from None


def _run(args) -> int:
    scfg = SweepConfig(
        method=args.method,
        iemf=args.iemf,
        params=args.param,
        trials=args.trials,
        prune=not args.no_prune,
        recipe=study_recipe(args, demo_config()),
        runs=run_options(args),
    )
    run_sweep(scfg)
    return 0
