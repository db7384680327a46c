"""The sweep's sampler: Optuna's TPE with a seed per trial, so that where a sweep was stopped does not change the
points it tries.

A sampler seeded once per process draws a resumed sweep's next points from a new stream: a rerun seeded as the
first sitting was draws that sitting's points again, one seeded otherwise draws others than an uninterrupted sweep
would, so a tuned value would depend on when the machine stopped. :class:`TrialSeededTPE` draws each trial's
values with a TPE sampler of its own, seeded with the sweep's seed and the trial's place in the sweep: what it
draws depends only on those and on the trials finished when the trial is asked (what TPE models), as in one
uninterrupted sitting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.samplers import BaseSampler, TPESampler

__all__ = ["TrialSeededTPE", "place"]


def place(study, number: int) -> int:
    """The place of trial ``number`` in the sweep: the trials before it, less those a kill left running (user attr
    ``requeued``), whose rerun (numbered later, with the same values) stands in for them. A trial asked after a
    kill has the place it would have had in a sweep that ran through."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and not t.user_attrs.get("requeued"))


class TrialSeededTPE(BaseSampler):
    """Optuna's TPE sampler (its defaults: the first 10 complete trials' values are random draws, the model's after
    them) whose draws for a trial are seeded with ``(seed, place)`` (:func:`place`)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._tpe: dict[int, TPESampler] = {}  # per trial number, while it is sampled

    def _for(self, study, trial) -> TPESampler:
        if trial.number not in self._tpe:
            state = np.random.SeedSequence([self.seed, place(study, trial.number)]).generate_state(1)[0]
            self._tpe[trial.number] = TPESampler(seed=int(state))
        return self._tpe[trial.number]

    def infer_relative_search_space(self, study, trial) -> dict[str, Any]:
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self._for(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        tpe = self._for(study, trial)
        del self._tpe[trial.number]  # the trial is finished: its sampler is not asked again
        tpe.after_trial(study, trial, state, values)
