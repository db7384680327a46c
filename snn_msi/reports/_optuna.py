"""The sweep's Optuna sampler and pruner, which see a trial's sweep as a sweep that ran through saw it, so that where
a sweep was stopped does not change what it tries or prunes.

A sweep asks its trials in batches of ``--jobs`` and tells Optuna their results when the whole batch is done; a
batch starts at a place that is a multiple of ``jobs`` (a trial's *place*: :func:`places`). In a sweep that ran
through, a trial at place ``p`` was asked, and ran, while the trials of the batches before it (places below
``p - p % jobs``) were finished and those of its own batch running. A stopped sweep may have finished more (its
last sitting ended on a part of a batch), and a sampler seeded once per process draws a resumed sweep's points
from a new stream. So here a trial's values are drawn by a TPE sampler of its own, seeded with the sweep's seed and
the trial's place, from the trials of the batches before its own (:func:`earlier`), and a trial is pruned against
those same trials: what a trial tries and whether it is pruned depend on the seed, ``jobs`` and the results of
those trials only (and training is exact on resume, so those results repeat).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, TPESampler

__all__ = ["OneGoPruner", "TrialSeededTPE", "earlier", "first_number", "in_order", "places"]


def first_number(trial) -> int:
    """The number ``trial`` was first asked or enqueued under: its own, or for a rerun (user attr ``trial``) its
    killed trial's."""
    return trial.user_attrs.get("trial", trial.number)


def in_order(trials) -> list:
    """``trials`` in the order of their places: by :func:`first_number`, then by number."""
    return sorted(trials, key=lambda t: (first_number(t), t.number))


def places(study) -> dict[int, int]:
    """Each trial's place in the sweep, by trial number: its order among the sweep's trials less those requeued
    (user attr ``requeued``: left running by a kill, or waiting then), by the number it was first asked or
    enqueued under (user attr ``trial``, which a rerun keeps: it takes its trial's place). A trial asked after a
    kill has the place it would have had in a sweep that ran through. Requeued trials have none."""
    kept = in_order(t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("requeued"))
    return {t.number: i for i, t in enumerate(kept)}


class _Earlier:
    """A study without some of its trials (``hidden``, trial numbers), for a sampler or pruner to read."""

    def __init__(self, study, hidden: frozenset[int]) -> None:
        self._study, self._hidden = study, hidden

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states=None) -> list:
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if t.number not in self._hidden]

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return [t for t in trials if t.number not in self._hidden]


def earlier(study, number: int, jobs: int) -> tuple[int, _Earlier]:
    """Trial ``number``'s place and the study as the trial saw it in a sweep that ran through: the trials of the
    batches before its own (places below ``place - place % jobs``; a requeued trial, failed, is not read)."""
    order = places(study)
    place = order[number]
    start = place - place % jobs
    return place, _Earlier(study, frozenset(n for n, p in order.items() if p >= start and n != number))


class TrialSeededTPE(BaseSampler):
    """Optuna's TPE sampler (its defaults: random draws until 10 trials are complete or pruned, then the model)
    drawing a trial's values with a sampler of its own, seeded with ``(seed, place)``, from :func:`earlier`'s
    trials."""

    def __init__(self, seed: int, jobs: int = 1) -> None:
        self.seed, self.jobs = int(seed), int(jobs)
        self._tpe: dict[int, tuple[TPESampler, _Earlier]] = {}  # per trial number, while it is sampled

    def _for(self, study, trial) -> tuple[TPESampler, _Earlier]:
        if trial.number not in self._tpe:
            place, seen = earlier(study, trial.number, self.jobs)
            state = np.random.SeedSequence([self.seed % 2**64, place]).generate_state(1)[0]  # any int seed
            # constant_liar off: the model reads finished trials only (the view leaves none running before it)
            self._tpe[trial.number] = TPESampler(seed=int(state), constant_liar=False), seen
        return self._tpe[trial.number]

    def infer_relative_search_space(self, study, trial) -> dict[str, Any]:
        tpe, seen = self._for(study, trial)
        return tpe.infer_relative_search_space(seen, trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        tpe, seen = self._for(study, trial)
        return tpe.sample_relative(seen, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        tpe, seen = self._for(study, trial)
        return tpe.sample_independent(seen, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        tpe, seen = self._for(study, trial)
        tpe.before_trial(seen, trial)

    def after_trial(self, study, trial, state, values) -> None:
        tpe, seen = self._for(study, trial)
        del self._tpe[trial.number]  # the trial is finished: its sampler is not asked again
        tpe.after_trial(seen, trial, state, values)


class OneGoPruner(BasePruner):
    """``pruner`` judging a trial against :func:`earlier`'s trials only: a trial that finished in an earlier sitting
    but would have run beside this one in a sweep that ran through is not compared with."""

    def __init__(self, pruner: BasePruner, jobs: int = 1) -> None:
        self.pruner, self.jobs = pruner, int(jobs)

    def prune(self, study, trial) -> bool:
        return self.pruner.prune(earlier(study, trial.number, self.jobs)[1], trial)
