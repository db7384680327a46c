"""Base classes: stateful modules with step modes, and the charge / fire / reset neuron.

Every spiking neuron here is the same three steps (as SpikingJelly's ``BaseNode``)::

    h_t = charge(x_t, v_{t-1})          # model specific: IF, LIF, ...
    s_t = H(h_t - v_th)                 # forward: Heaviside; backward: surrogate derivative
    v_t = reset(h_t, s_t)               # hard: h (1 - s) + v_reset s; soft: h - s v_th; none: h

A new model only writes :meth:`BaseNeuron.charge` (and, when it has more state than ``v``, its state names).
State and arithmetic are float32 whatever the input dtype (spikes come back in the input dtype), as in the
fused kernels.

Fused kernels are opt-in: a class offers one through :meth:`BaseNeuron.spec`. A subclass that redefines any
step of the dynamics (``charge``, ``fire``, ``threshold``, ``after_spike``, ...) without defining ``spec``
itself loses its parent's spec, so it can never silently run the parent's kernel.

Step modes (SpikingJelly's convention; snnTorch neurons are single-step): ``step_mode="s"`` (the default) takes
one time step ``[B, ...]`` per call and keeps state between calls until :meth:`reset`; ``step_mode="m"`` takes
``[T, B, ...]`` and runs all T steps in one call (state persists across calls too, so a long sequence can be fed
in chunks). A single-step neuron cannot tell a ``[T, B, F]`` sequence from one step of a ``[B1, B2, F]`` input: it
treats it as one step, and a later call whose shape differs from the state's raises ``ValueError`` (reset between
sequences) instead of silently starting over.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from . import surrogate as surrogate_mod
from .functional import RESETS, reset_membrane

__all__ = [
    "StatefulModule",
    "StepCost",
    "BaseNeuron",
    "NonFiniteInputError",
    "check_finite",
    "STEP_MODES",
    "check_positive",
]


class NonFiniteInputError(ValueError):
    """A neuron received NaN or infinite input (a diverged network or a corrupt sample)."""


def check_finite(x: torch.Tensor, owner: str) -> None:
    """Raise :class:`NonFiniteInputError` naming ``owner`` if ``x`` holds NaN or infinite values. Under
    ``torch.compile`` an assertion in the graph instead (a RuntimeError with the same message; no graph break, so
    ``fullgraph=True`` traces a neuron with its checks on)."""
    if torch.compiler.is_compiling():
        torch._assert_async(torch.isfinite(x).all(), f"{owner}: input x contains NaN or infinite values")
        return
    if not bool(torch.isfinite(x).all()):
        what = "NaN" if bool(torch.isnan(x).any()) else "infinite values"
        raise NonFiniteInputError(f"{owner}: input x contains {what}")


STEP_MODES = ("s", "m")


def check_positive(name: str, value: float, owner: str, minimum: float = 0.0, inclusive: bool = False) -> float:
    """Validate a scalar hyper-parameter, raising a ``ValueError`` that names it."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from None
    ok = value >= minimum if inclusive else value > minimum
    if not math.isfinite(value) or not ok:
        rel = ">=" if inclusive else ">"
        raise ValueError(f"{owner}: {name} must be finite and {rel} {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class StepCost:
    """The arithmetic of one neuron in one time step, besides its threshold compare (one per step) and its reset
    (one add per spike): ``muladds`` multiply-adds, ``adds`` adds and ``state`` state variables read and written.
    What the energy count (``snn_msi.metrics.energy``) prices a neuron update at."""

    muladds: int
    adds: int
    state: int


class StatefulModule(nn.Module):
    """A module with per-sample state (``reset()``) and a step mode (``"s"`` or ``"m"``).

    Subclasses implement :meth:`single_step_forward`; the default :meth:`multi_step_forward` loops over T.
    ``step_cost``: a spiking neuron class's :class:`StepCost`, declared by the class itself (a subclass that
    changes the dynamics declares its own; one that does not is priced one multiply-add per state variable).
    """

    #: names of state tensors; each is ``None`` until the first input fixes its shape
    state_names: tuple[str, ...] = ()
    step_cost: StepCost | None = None

    def __init__(self, step_mode: str = "s") -> None:
        super().__init__()
        self.step_mode = step_mode
        self.reset()

    def _state_mismatch(self, shape: torch.Size) -> ValueError:
        """The error for a step of input ``shape`` on a state of another shape (every backend raises it)."""
        return ValueError(
            f"{type(self).__name__} (step_mode={self.step_mode!r}) holds state of shape {tuple(self.v.shape)} "
            f"from earlier steps and got input of shape {tuple(shape)}: call neurons.reset(model) between "
            "sequences; a [T, B, ...] sequence in one call needs step_mode='m'"
        )

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        if mode not in STEP_MODES:
            raise ValueError(f"{type(self).__name__}: step_mode must be 's' or 'm', got {mode!r}")
        self._step_mode = mode

    def reset(self) -> None:
        """Forget all state (call between samples / batches)."""
        for name in self.state_names:
            setattr(self, name, None)

    def get_state(self) -> dict[str, torch.Tensor | None]:
        """The state by name, as the module holds it (a tensor, or None before the first input): what an
        explicit-state loop keeps and :meth:`set_state` puts back (the tensors themselves, graph included)."""
        return {name: getattr(self, name, None) for name in self.state_names}

    def set_state(self, state: Mapping[str, torch.Tensor | None]) -> None:
        """Put back a state :meth:`get_state` gave: every name (a part would mix two states, or be dropped by a
        fresh neuron's first step); ``None`` values make it fresh again."""
        names = list(self.get_state())
        if set(state) != set(names):
            raise ValueError(
                f"{type(self).__name__}: set_state takes its whole state {names}, got {sorted(state)} "
                "(as get_state gives it)"
            )
        for name, value in state.items():
            self._put_state(name, value)

    def _put_state(self, name: str, value: torch.Tensor | None) -> None:
        setattr(self, name, value)

    def detach(self) -> None:
        """Keep the state's values and cut its graph (truncated BPTT between chunks of one sequence)."""
        self.set_state({k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in self.get_state().items()})

    def __deepcopy__(self, memo: dict) -> StatefulModule:
        """A copy whose state has the values but not the graph (``copy.deepcopy`` refuses a tensor inside a graph:
        an EMA or best-model copy mid-training would fail); the original keeps its graph."""
        for m in self.modules():
            for value in vars(m).values():
                for t in value.values() if isinstance(value, dict) else (value,):
                    if isinstance(t, torch.Tensor) and t.grad_fn is not None and id(t) not in memo:
                        memo[id(t)] = t.detach().clone()
        new = memo[id(self)] = type(self).__new__(type(self))
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a torch.Tensor, got {type(x).__name__}")
        if self._step_mode == "s":
            return self.single_step_forward(x)
        if x.dim() < 2 or x.shape[0] < 1:
            raise ValueError(
                f"{type(self).__name__} in multi-step mode expects [T, B, ...] with T >= 1, got shape {tuple(x.shape)}"
            )
        return self.multi_step_forward(x)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.single_step_forward(x) for x in x_seq])

    def extra_repr(self) -> str:
        return f"step_mode={self._step_mode!r}"


#: ``reset_mode`` -> the method that applies it (looked up on every step, on the module stepping: a replica or a
#: copy resets itself, and a changed ``reset_mode`` takes effect, as on the fused path)
_RESET_METHODS = {"hard": "_reset_hard", "soft": "_reset_soft", "none": "_reset_none"}


class BaseNeuron(StatefulModule):
    """Charge / fire / reset spiking neuron.

    Args:
        v_threshold: firing threshold ``v_th`` (> 0).
        v_reset: membrane value after a spike under ``reset="hard"``; also the resting potential of leaky models.
        reset: ``"hard"`` (to ``v_reset``), ``"soft"`` (subtract ``v_th``) or ``"none"``.
        surrogate: name (see :func:`neurons.surrogate.available`) or a :class:`~neurons.surrogate.Surrogate`.
        alpha: surrogate sharpness (``None``: the surrogate's default).
        detach_reset: stop the gradient through the spike in the reset term.
        step_mode: ``"s"`` (``[B, ...]`` per call) or ``"m"`` (``[T, B, ...]`` per call).
        store_v_seq: in multi-step mode keep the membrane after each step in ``self.v_seq`` ``[T, B, ...]``.
        check_inputs: raise ``ValueError`` on NaN or infinite input (one reduction per call; switch off for
            speed).

    Shape: single-step ``[B, *] -> [B, *]``; multi-step ``[T, B, *] -> [T, B, *]``. Spikes are 0/1 in the input
    dtype.
    """

    state_names = ("v",)
    kind = "spiking"
    #: the methods that make up the dynamics: redefining one drops an inherited fused ``spec``
    dynamics_methods = (
        "charge",
        "fire",
        "threshold",
        "after_spike",
        "init_state",
        "_step",
        "single_step_forward",
        "multi_step_forward",
        "_reset_hard",
        "_reset_soft",
        "_reset_none",
    )

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" not in vars(cls) and any(m in vars(cls) for m in cls.dynamics_methods):
            cls.spec = BaseNeuron.spec  # new dynamics: no fused kernel until the class offers its own spec

    def spec(self):
        """The :class:`~neurons.functional.IFSpec` a fused kernel can run for this neuron, or None."""
        return None

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "hard",
        surrogate: str | surrogate_mod.Surrogate = "atan",
        alpha: float | None = None,
        detach_reset: bool = False,
        step_mode: str = "s",
        store_v_seq: bool = False,
        check_inputs: bool = True,
    ) -> None:
        super().__init__(step_mode)
        owner = type(self).__name__
        self.v_threshold = check_positive("v_threshold", v_threshold, owner)
        try:
            self.v_reset = float(v_reset)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: v_reset must be a number, got {v_reset!r}") from None
        if not math.isfinite(self.v_reset):
            raise ValueError(f"{owner}: v_reset must be finite, got {v_reset}")
        if reset not in RESETS:
            raise ValueError(f"{owner}: reset must be one of {RESETS}, got {reset!r}")
        self.reset_mode = reset
        self.detach_reset = bool(detach_reset)
        self.store_v_seq = bool(store_v_seq)
        self.check_inputs = bool(check_inputs)
        self.surrogate = surrogate_mod.get(surrogate, alpha)
        self.v_seq = None

    # -- the three steps ---------------------------------------------------------------------------------
    def charge(self, x: torch.Tensor) -> torch.Tensor:
        """Return the membrane before firing, ``h_t``, from input ``x_t`` and state ``self.v``."""
        raise NotImplementedError

    def threshold(self) -> float | torch.Tensor:
        """The threshold in force this step (adaptive models override)."""
        return self.v_threshold

    def fire(self, h: torch.Tensor) -> torch.Tensor:
        return self.surrogate(h - self.threshold())

    def _reset_hard(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return reset_membrane(h, s, "hard", self.v_threshold, self.v_reset)

    def _reset_soft(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return reset_membrane(h, s, "soft", self.threshold(), self.v_reset)

    def _reset_none(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return h

    def after_spike(self, s: torch.Tensor) -> None:
        """Hook for models with extra state driven by the spike (adaptation, recovery)."""

    # -- state ---------------------------------------------------------------------------------------------
    def init_state(self, x: torch.Tensor) -> None:
        """Create the state tensors (float32) for an input of this shape (resting value ``v_reset``)."""
        self.v = torch.full(x.shape, self.v_reset, dtype=torch.float32, device=x.device)

    def _check(self, x: torch.Tensor) -> None:
        if self.check_inputs:
            check_finite(x, type(self).__name__)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._step(x.float()).to(x.dtype)

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        """One step on a float32 input."""
        if self.v is None:
            self.init_state(x)
        elif self.v.shape != x.shape:
            raise self._state_mismatch(x.shape)
        h = self.charge(x)
        s = self.fire(h)
        s_reset = s.detach() if self.detach_reset else s
        self.v = getattr(self, _RESET_METHODS[self.reset_mode])(h, s_reset)  # the mode now, on this module
        self.after_spike(s_reset)
        return s

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        self._check(x_seq)
        spikes, v_seq = [], []
        for x in x_seq.float():
            spikes.append(self._step(x))
            if self.store_v_seq:
                v_seq.append(self.v)
        self.v_seq = torch.stack(v_seq) if self.store_v_seq else None
        return torch.stack(spikes).to(x_seq.dtype)

    def extra_repr(self) -> str:
        return (
            f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, reset={self.reset_mode!r}, "
            f"detach_reset={self.detach_reset}, step_mode={self.step_mode!r}"
        )
