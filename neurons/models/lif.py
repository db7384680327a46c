"""Integrate-and-fire family: IF, LIF and ParametricLIF (learnable tau).

Charge equations (``k = 1 / tau``, ``v_r = v_reset``)::

    IF:                      h = v + x
    LIF, decay_input=True:   h = v + (x - (v - v_r)) / tau
    LIF, decay_input=False:  h = v - (v - v_r) / tau + x
    ParametricLIF:           as LIF with k = sigmoid(w) learnable (tau = 1 / k > 1)

These three share a fused multi-step implementation (``neurons.kernels``) selected by ``backend``.
"""

from __future__ import annotations

import math
from os import environ as _environ

import torch
from torch import nn

from .. import kernels
from ..base import BaseNeuron, StepCost, check_positive
from ..catalog import register
from ..functional import IFSpec, charge

__all__ = ["IF", "LIF", "ParametricLIF"]


class IFFamily(BaseNeuron):
    """IF-family neuron whose multi-step forward can run as one fused op (see ``neurons.kernels``).

    The dynamics are :func:`neurons.functional.charge` with this class's ``leak``; :meth:`spec` hands the same
    values to the fused kernels.

    Args (beyond :class:`~neurons.base.BaseNeuron`):
        backend: ``"torch"`` (per-step loop), ``"cpu"`` (fused C++ loop), ``"triton"`` (fused GPU kernel) or
            ``"auto"`` (triton on CUDA, the fused C++ loop on CPU when it builds, else torch). It chooses how a
            multi-step call runs; a single step (``step_mode="s"``) is one PyTorch update on every backend.
            ``"cpu"`` / ``"triton"`` on a neuron no kernel runs (new dynamics, a surrogate without a kernel)
            is refused when it is built.
    """

    leak = "none"
    decay_input = True
    tau = 1.0

    def __init__(self, *args, backend: str = "auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backend = kernels.check_backend(backend, owner=type(self).__name__)
        new_dynamics = type(self).spec is BaseNeuron.spec
        if new_dynamics or self.surrogate.kernel_id < 0:  # known at construction: refuse a kernel backend here
            self._no_kernel(new_dynamics)

    def k(self) -> torch.Tensor | None:
        """ParametricLIF's learnable leak ``sigmoid(w)``; None for the fixed leaks."""
        return None

    def _spec_values(self, tau: float) -> tuple:
        """The module's :class:`IFSpec` values in :data:`~neurons.functional.IF_SPEC_FIELDS` order, with ``tau``."""
        sg = self.surrogate
        return (
            self.leak,
            self.decay_input,
            tau,
            self.v_threshold,
            self.v_reset,
            self.reset_mode,
            sg.name if sg.kernel_id >= 0 else type(sg).__qualname__,  # a changed gradient: no kernel has it
            sg.alpha,
            self.detach_reset,
        )

    def spec(self) -> IFSpec:
        return IFSpec(*self._spec_values(self.tau))

    def _fused_tau(self) -> float:
        """``tau`` as the kernels and :meth:`charge` take it: ParametricLIF's (a read of its parameter: a GPU sync,
        and a graph break under ``torch.compile``) is not read, since its leak takes the tensor ``k``."""
        return self.tau if self.leak != "mul" else 1.0

    def _fused_spec(self) -> IFSpec | None:
        """:meth:`spec` for the kernels (see :meth:`_fused_tau`)."""
        if type(self).spec is not IFFamily.spec:  # a subclass with its own spec, or with new dynamics (None)
            return self.spec()
        return IFSpec(*self._spec_values(self._fused_tau()))

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        return charge(x, self.v, self.leak, self.decay_input, self.v_reset, self._fused_tau(), self.k())

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or type(self).spec is not IFFamily.spec:
            return self._multi_step(x_seq)
        # eager: the spec, its kernel arguments and the implementation are planned once per setting (a tuple
        # compare per call instead of building and hashing a spec, ~15 us of a small layer's ~60 us)
        env = _environ.get("SNN_MSI_BACKEND"), _environ.get("TRITON_INTERPRET")
        key = (
            self._spec_values(self._fused_tau()),
            self.store_v_seq,
            self.check_inputs,
            self.backend,
            x_seq.device.type,
            env,
        )
        plan = self.__dict__.get("_plan")
        if plan is None or plan[0] != key:
            plan = self.__dict__["_plan"] = (key, *self._make_plan(x_seq))
        _, a, code = plan
        if a is None:
            return self._multi_step(x_seq)
        v = self._fused_state(x_seq.shape[1:])
        spikes, v_t = kernels.run_fused(code, x_seq, v, self.k(), a, self.check_inputs, type(self).__name__)
        self.__dict__["v"] = v_t  # a plain attribute (never a parameter or buffer): no nn.Module.__setattr__
        return spikes

    def _make_plan(self, x_seq: torch.Tensor) -> tuple[kernels.KernelArgs | None, int]:
        """``(kernel arguments, implementation code)``, or ``(None, -1)`` for the general path."""
        spec = self._fused_spec()
        if spec is None or spec.codes[2] < 0 or self.store_v_seq:
            return None, -1
        impl = kernels.select(self.backend, x_seq, owner=type(self).__name__)
        if impl == "torch":
            return None, -1
        return kernels.kernel_args(spec), kernels.IMPLS.index(impl)

    def _fused_state(self, shape: torch.Size) -> torch.Tensor | None:
        """The state a fused call starts from: None when fresh (the kernel starts at ``v_reset`` itself); one of
        another shape is the error the PyTorch path raises (a forgotten ``reset()`` is not hidden); one left by a
        ``torch.inference_mode()`` pass is copied out of it for a step outside (the kernel saves its input for
        backward, which an inference tensor refuses; the PyTorch path goes on from it, so this does too)."""
        v = self.v
        if v is None:
            return None
        if v.shape != shape:
            raise self._state_mismatch(shape)
        if not torch.compiler.is_compiling() and v.is_inference() and not torch.is_inference_mode_enabled():
            v = v.clone()
        return v

    def _no_kernel(self, new_dynamics: bool) -> None:
        """No kernel runs this neuron (new dynamics, or a surrogate without one): an error if ``backend`` asks
        for a kernel."""
        if self.backend in ("cpu", "triton"):
            why = "its dynamics are not the fused IF family's" if new_dynamics else "its surrogate has no kernel"
            raise ValueError(f"{type(self).__name__}: backend={self.backend!r} cannot run it: {why}")

    def _multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The general path: any spec (or none), any backend, traced as it is by ``torch.compile``."""
        spec = self._fused_spec()
        if spec is None or spec.codes[2] < 0:
            self._no_kernel(spec is None)
            return super().multi_step_forward(x_seq)
        if self.store_v_seq:
            return super().multi_step_forward(x_seq)
        owner = type(self).__name__
        impl = kernels.select(self.backend, x_seq, owner=owner)
        if impl == "torch":
            return super().multi_step_forward(x_seq)
        v = self._fused_state(x_seq.shape[1:])
        spikes, self.v = kernels.if_family_multi_step(
            impl, x_seq, v, spec, self.k(), check_finite=self.check_inputs, owner=owner
        )
        return spikes

    def extra_repr(self) -> str:
        return super().extra_repr() + f", backend={self.backend!r}"


@register("if", description="integrate-and-fire: h = v + x")
class IF(IFFamily):
    """Integrate-and-fire neuron: ``h = v + x``, no leak."""

    step_cost = StepCost(muladds=0, adds=1, state=1)  # v <- v + x


@register("lif", description="leaky integrate-and-fire: h = v + (x - (v - v_reset)) / tau")
class LIF(IFFamily):
    """Leaky integrate-and-fire neuron.

    Args:
        tau: membrane time constant in steps (>= 1); the membrane keeps ``1 - 1/tau`` of its distance to rest.
        decay_input: scale the input by ``1/tau`` too (SpikingJelly's default) or add it unscaled (snnTorch).
        **kwargs: see :class:`~neurons.base.BaseNeuron` and ``backend``.
    """

    leak = "div"
    step_cost = StepCost(muladds=1, adds=0, state=1)  # v <- beta v + x (the input's 1/tau folded into the weights)

    def __init__(self, tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tau = check_positive("tau", tau, type(self).__name__, minimum=1.0, inclusive=True)
        self.decay_input = bool(decay_input)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


@register("plif", description="parametric LIF: LIF with a learnable tau (k = sigmoid(w) = 1/tau)")
class ParametricLIF(IFFamily):
    """LIF with a learnable time constant (Fang et al., 2021): ``1/tau = sigmoid(w)``, one ``w`` per layer.

    Args:
        init_tau: initial tau (> 1).
        decay_input: as :class:`LIF`.
    """

    leak = "mul"
    step_cost = StepCost(muladds=1, adds=0, state=1)  # as LIF, with k = sigmoid(w)

    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        init_tau = check_positive("init_tau", init_tau, type(self).__name__, minimum=1.0)
        self.decay_input = bool(decay_input)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @property
    def tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def k(self) -> torch.Tensor:
        return torch.sigmoid(self.w).float()

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()
