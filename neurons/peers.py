"""Adapters that put the peers' neurons (SpikingJelly, snnTorch) behind our call convention.

Registered as ``spikingjelly.lif``, ``spikingjelly.if``, ``spikingjelly.plif``, ``snntorch.leaky`` and
``snntorch.synaptic`` when the library is installed; the peer is imported only when one is created. They take
the same keyword arguments as our models (``tau``, ``v_threshold``, ``reset``, ``surrogate``, ``alpha``, ...),
the same ``[T, B, ...]`` / ``[B, ...]`` tensors and ``reset()``, so ``neuron="lif"`` swaps for
``neuron="spikingjelly.lif"`` in any model. Options the peer cannot express raise ``ValueError``.

Every surrogate name works with every peer: a name the peer implements itself maps to the peer's own function
(SpikingJelly: sigmoid, atan, piecewise_quadratic, erf; snnTorch: atan, fast_sigmoid, with the same formulas and
default alpha as ours), any other is our :mod:`neurons.surrogate` object, which both libraries call like their own
(snnTorch's sigmoid gives NaN gradients for a membrane far below threshold: ours is used for it).
Inputs are checked as our neurons check them (NaN or infinite values raise), since the peers would turn NaN
into silent "no spikes".
"""

from __future__ import annotations

import functools
import importlib.util

import torch

from . import surrogate as surrogate_mod
from .base import StatefulModule, StepCost, check_finite, check_positive
from .catalog import register
from .functional import RESETS

# our surrogate names -> the peers' classes/functions
_SJ_SURROGATES = {
    "sigmoid": "Sigmoid",
    "atan": "ATan",
    "piecewise_quadratic": "PiecewiseQuadratic",
    "erf": "Erf",
}
# (not snnTorch's sigmoid: its backward, exp(-k x) / (exp(-k x) + 1)^2, is inf / inf = NaN below x ~ -3.5 at its
# slope 25; ours has the same formula, computed stably)
_SNN_SURROGATES = {"atan": "atan", "fast_sigmoid": "fast_sigmoid"}


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _surrogate(name: str, alpha: float | None, native: dict[str, object], owner: str):
    """The peer's own surrogate for ``name`` when it has one (``native[name](alpha)``), else ours (a
    :class:`~neurons.surrogate.Surrogate` object is ours as given)."""
    if isinstance(name, surrogate_mod.Surrogate):
        return surrogate_mod.get(name, alpha)
    if not isinstance(name, str):
        raise TypeError(f"{owner}: surrogate must be a name or a Surrogate, got {type(name).__name__}")
    key = surrogate_mod.SURROGATES.resolve(name.lower())
    if key in native:
        return native[key](alpha)
    return surrogate_mod.get(key, alpha)


class PeerNeuron(StatefulModule):
    """Wraps one peer neuron module; subclasses build it and define one step.

    Takes the neuron arguments every family shares (as :class:`~neurons.base.BaseNeuron` does; ``reset``
    defaults to the library's ``default_reset``), checks them and keeps them as attributes (``v_threshold``,
    ``v_reset``, ``reset_mode``, ``surrogate``, ``alpha``, ``detach_reset``); ``owner`` names the peer in errors.
    """

    library = ""
    default_reset = "hard"

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str | None = None,
        surrogate: str = "atan",
        alpha: float | None = None,
        detach_reset: bool = False,
        step_mode: str = "s",
        check_inputs: bool = True,
        *,
        owner: str = "",
    ) -> None:
        super().__init__(step_mode)
        owner = owner or type(self).__name__
        reset = self.default_reset if reset is None else reset
        if reset not in RESETS:
            raise ValueError(f"{owner}: reset must be one of {RESETS}, got {reset!r}")
        self.reset_mode = reset
        self.check_inputs = bool(check_inputs)
        self.v_threshold = check_positive("v_threshold", v_threshold, owner)
        self.v_reset = float(v_reset)
        self.surrogate_name, self.alpha, self.detach_reset = surrogate, alpha, bool(detach_reset)

    @property
    def kind(self) -> str:
        return f"peer:{self.library}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and self.check_inputs:
            check_finite(x, f"{type(self).__name__}({self.library})")
        v, shape = self.v, (x.shape[1:] if self.step_mode == "m" else x.shape)
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.numel() and v.shape != shape:  # peers restart silently
            raise self._state_mismatch(shape)
        return super().forward(x)


class SpikingJellyNeuron(PeerNeuron):
    """SpikingJelly 2.x ``activation_based.neuron`` node behind our convention."""

    library = "spikingjelly"
    #: per node: IFNode v <- v + x; LIFNode and ParametricLIFNode v <- beta v + x
    NODE_COSTS = {"if": StepCost(0, 1, 1), "lif": StepCost(1, 0, 1), "plif": StepCost(1, 0, 1)}

    def __init__(self, node: str, tau: float | None = None, decay_input: bool = True, **shared) -> None:
        owner = f"spikingjelly.{node}"
        super().__init__(**shared, owner=owner)
        from spikingjelly.activation_based import neuron as sj_neuron
        from spikingjelly.activation_based import surrogate as sj_surrogate

        reset = self.reset_mode
        if reset == "none":
            raise ValueError(f"{owner}: SpikingJelly has no reset='none'; use 'hard' or 'soft'")

        def native_cls(theirs: str):
            cls = getattr(sj_surrogate, theirs)
            return lambda a: cls() if a is None else cls(alpha=float(a))

        native = {ours: native_cls(theirs) for ours, theirs in _SJ_SURROGATES.items()}
        sg = _surrogate(self.surrogate_name, self.alpha, native, owner)
        common = dict(
            v_threshold=self.v_threshold,
            v_reset=self.v_reset if reset == "hard" else None,
            surrogate_function=sg,
            detach_reset=self.detach_reset,
            step_mode="m",
        )
        self.step_cost = self.NODE_COSTS.get(node)
        if node == "if":
            self.node = sj_neuron.IFNode(**common)
        elif node == "lif":
            tau = check_positive("tau", 2.0 if tau is None else tau, owner, minimum=1.0)
            self.node = sj_neuron.LIFNode(tau=tau, decay_input=decay_input, **common)
        elif node == "plif":
            tau = check_positive("tau", 2.0 if tau is None else tau, owner, minimum=1.0)
            self.node = sj_neuron.ParametricLIFNode(init_tau=tau, decay_input=decay_input, **common)
        else:
            raise ValueError(f"unknown SpikingJelly node {node!r}")

    def reset(self) -> None:
        if "node" in self._modules:
            self.node.reset()

    def get_state(self) -> dict:
        return {"v": self.node.v} if "node" in self._modules else {}

    def _put_state(self, name: str, value) -> None:
        if value is None:  # fresh, as SpikingJelly's reset leaves it
            self.node.reset()
        else:
            self.node.v = value

    @property
    def v(self):
        return self.node.v

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.node(x.unsqueeze(0))[0]

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.node(x_seq)


class _SnnTorchSurrogate:
    """snnTorch's own surrogate ``name`` at ``alpha`` (its ``atan(alpha)`` / ``fast_sigmoid(slope)``), which
    pickles: snnTorch's are closures, so ``torch.save(model)`` of a model with one failed."""

    def __init__(self, name: str, alpha: float | None = None) -> None:
        from snntorch import surrogate as snn_surrogate

        # None: our default alpha (a surrogate name means one function on every neuron)
        self.name, self.alpha = name, surrogate_mod.get(name).alpha if alpha is None else float(alpha)
        fn = getattr(snn_surrogate, _SNN_SURROGATES[name])
        self._fn = fn(alpha=self.alpha) if name == "atan" else fn(slope=self.alpha)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)

    def __reduce__(self):
        return type(self), (self.name, self.alpha)


class SnnTorchNeuron(PeerNeuron):
    """snnTorch 1.x ``Leaky`` / ``Synaptic`` behind our convention.

    ``beta = 1 - 1/tau`` (``decay_input=False`` only: snnTorch adds the input unscaled); reset ``"soft"`` is
    snnTorch's ``"subtract"``, ``"hard"`` its ``"zero"`` (``v_reset`` must be 0). The reset is applied in the
    step that fires (``reset_delay=False``), as our neurons do. One difference stays, snnTorch's own: it also
    subtracts the threshold in the next step whenever the membrane after a soft reset is still at or above it
    (it resets from the previous step's membrane), so after an input above twice the threshold its spikes differ
    from ``lif(decay_input=False, reset="soft")``: input ``[3.0, 0.6]`` fires ``[1, 0]`` here, ``[1, 1]`` there.
    """

    library = "snntorch"
    default_reset = "soft"
    #: per cell: Leaky mem <- beta mem + x; Synaptic syn <- alpha syn + x, mem <- beta mem + syn
    CELL_COSTS = {"leaky": StepCost(1, 0, 1), "synaptic": StepCost(2, 0, 2)}

    def __init__(self, cell: str, tau: float = 2.0, tau_syn: float = 4.0, decay_input: bool = False, **shared) -> None:
        owner = f"snntorch.{cell}"
        super().__init__(**shared, owner=owner)
        import snntorch

        if decay_input:
            raise ValueError(f"{owner}: snnTorch adds the input unscaled; use decay_input=False")
        if self.v_reset != 0.0:
            raise ValueError(f"{owner}: snnTorch resets to 0; v_reset must be 0.0, got {self.v_reset:g}")
        if self.detach_reset:
            raise ValueError(f"{owner}: snnTorch always keeps the reset in the graph; use detach_reset=False")

        native = {n: functools.partial(_SnnTorchSurrogate, n) for n in _SNN_SURROGATES}
        spike_grad = _surrogate(self.surrogate_name, self.alpha, native, owner)
        mechanism = {"soft": "subtract", "hard": "zero", "none": "none"}[self.reset_mode]
        beta = 1.0 - 1.0 / check_positive("tau", tau, owner, minimum=1.0, inclusive=True)
        common = dict(
            threshold=self.v_threshold,
            spike_grad=spike_grad,
            reset_mechanism=mechanism,
            reset_delay=False,
        )
        self.step_cost = self.CELL_COSTS.get(cell)
        if cell == "leaky":
            self.cell = snntorch.Leaky(beta=beta, **common)
        elif cell == "synaptic":
            a_syn = 1.0 - 1.0 / check_positive("tau_syn", tau_syn, owner, minimum=1.0, inclusive=True)
            self.cell = snntorch.Synaptic(alpha=a_syn, beta=beta, **common)
        else:
            raise ValueError(f"unknown snnTorch cell {cell!r}")
        self.reset()

    def get_state(self) -> dict:
        """The cell's state (``mem``; Synaptic's ``syn`` too)."""
        if "cell" not in self._modules:
            return {}
        return {name: getattr(self.cell, name) for name in ("syn", "mem") if hasattr(self.cell, name)}

    def _put_state(self, name: str, value) -> None:
        setattr(self.cell, name, getattr(self.cell, name).new_zeros(0) if value is None else value)

    def reset(self) -> None:
        for name, state in self.get_state().items():  # empty, as at construction: the next input sets the shape
            setattr(self.cell, name, state.new_zeros(0))

    @property
    def v(self):
        return self.cell.mem

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(x)[0].to(x.dtype)  # snnTorch's spike is float32 whatever the input: ours are x's dtype


#: per registered peer: the wrapper's arguments it has no use for (refused, as our neurons refuse them), and the
#: names our counterpart uses for the others (``plif``'s ``init_tau``, as SpikingJelly's own node calls it)
_PEER_ARGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "spikingjelly.if": (("tau", "decay_input"), {}),
    "spikingjelly.lif": ((), {}),
    "spikingjelly.plif": ((), {"tau": "init_tau"}),
    "snntorch.leaky": (("tau_syn",), {}),
    "snntorch.synaptic": (("decay_input",), {}),
}


def _register_peers() -> None:
    peers = []
    if _have("spikingjelly"):
        peers += [
            (SpikingJellyNeuron, "node", "lif", "SpikingJelly LIFNode"),
            (SpikingJellyNeuron, "node", "if", "SpikingJelly IFNode"),
            (SpikingJellyNeuron, "node", "plif", "SpikingJelly ParametricLIFNode"),
        ]
    if _have("snntorch"):
        peers += [
            (SnnTorchNeuron, "cell", "leaky", "snnTorch Leaky"),
            (SnnTorchNeuron, "cell", "synaptic", "snnTorch Synaptic"),
        ]
    for cls, first, kind, desc in peers:
        name = f"{cls.library}.{kind}"
        drop, rename = _PEER_ARGS[name]
        theirs = {ours: arg for arg, ours in rename.items()}

        def factory(cls=cls, kind=kind, theirs=theirs, **kwargs):
            return cls(kind, **{theirs.get(k, k): v for k, v in kwargs.items()})

        factory.__signature__ = _signature_without(cls, first, drop, rename)
        register(name, description=desc, kind=f"peer:{cls.library}")(factory)


def _signature_without(cls, first: str, drop: tuple[str, ...] = (), rename: dict[str, str] | None = None):
    """The factory's signature: ``cls``'s own arguments but ``first`` and ``drop`` (``rename``: our names for
    some), then the shared ones of :class:`PeerNeuron` (``reset`` with ``cls``'s default), all keyword arguments."""
    import inspect

    rename = rename or {}
    own = inspect.signature(cls.__init__).parameters.items()
    own = [
        p.replace(name=rename.get(n, n))
        for n, p in own
        if n not in ("self", first, *drop) and p.kind is not p.VAR_KEYWORD
    ]
    shared = inspect.signature(PeerNeuron.__init__).parameters.items()
    shared = [p.replace(default=cls.default_reset) if n == "reset" else p for n, p in shared if n != "owner"][1:]
    params = [p.replace(kind=p.KEYWORD_ONLY) for p in own + shared]
    return inspect.Signature(params)
