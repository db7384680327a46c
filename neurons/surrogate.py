"""Surrogate gradients: a Heaviside step forward, a smooth derivative backward.

Each surrogate is a small ``nn.Module`` with a sharpness ``alpha``. Its forward is the spike function
``H(x) = 1[x >= 0]`` (``x = h - v_th``); its backward multiplies the incoming gradient by
``derivative(x)``, the derivative of a smooth ``primitive(x)`` that approximates ``H``.
Select one by name with :func:`get` (``"atan"``, ``"sigmoid"``, ...), as SpikingJelly's ``surrogate``
module and snnTorch's ``spike_grad`` do; :data:`SURROGATES` is the registry (``SURROGATES.available()``).

The fused kernels know the surrogates listed in :data:`KERNEL_SURROGATES`; the C++ and Triton code take each
one's integer code from that one table. A surrogate registered later runs on the PyTorch path.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import Registry

__all__ = [
    "Surrogate",
    "Sigmoid",
    "ATan",
    "FastSigmoid",
    "Triangle",
    "PiecewiseQuadratic",
    "Rectangular",
    "Erf",
    "get",
    "available",
    "heaviside",
    "SURROGATES",
    "KERNEL_SURROGATES",
]

SURROGATES = Registry("surrogate")

#: the surrogates the fused kernels implement, in the order of their integer codes (the one table the
#: C++ and Triton code take their constants from)
KERNEL_SURROGATES = ("sigmoid", "atan", "fast_sigmoid", "triangle", "piecewise_quadratic", "rectangular", "erf")


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Spike function ``1[x >= 0]`` in the dtype of ``x``."""
    return (x >= 0).to(x.dtype)


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward, ``grad * surrogate.derivative(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class Surrogate(nn.Module):
    """Base class. Subclasses define ``derivative`` and ``primitive`` and a default ``alpha``.

    Args:
        alpha: sharpness; larger is closer to the true step (narrower, taller derivative).

    Shape: any; output has the shape and dtype of the input, values in {0, 1}.
    """

    name: str = ""
    default_alpha: float = 1.0

    #: True for a subclass that changes ``derivative`` or ``forward`` under an inherited ``name``
    changes_gradient: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        own = {"derivative", "forward"} & set(vars(cls))
        cls.changes_gradient = cls.changes_gradient or (bool(own) and "name" not in vars(cls))

    @property
    def kernel_id(self) -> int:
        """The fused kernels' code of this surrogate (its index in :data:`KERNEL_SURROGATES`), -1 if none: also for
        a subclass of a built-in one with its own ``derivative`` or ``forward`` (its gradient is not the kernel's;
        only the PyTorch path computes it)."""
        if self.changes_gradient or self.name not in KERNEL_SURROGATES:
            return -1
        return KERNEL_SURROGATES.index(self.name)

    def __init__(self, alpha: float | None = None) -> None:
        super().__init__()
        alpha = self.default_alpha if alpha is None else float(alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"surrogate {self.name!r}: alpha must be a positive finite number, got {alpha}")
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(x, self)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth function whose derivative the backward uses (for checks and plots)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Sigmoid(Surrogate):
    """``g(x) = sigmoid(alpha x)``; ``g'(x) = alpha sg (1 - sg)`` (SpikingJelly ``Sigmoid``, default alpha 4)."""

    name, default_alpha = "sigmoid", 4.0

    def derivative(self, x):
        sg = torch.sigmoid(self.alpha * x)
        return self.alpha * sg * (1.0 - sg)

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)


class ATan(Surrogate):
    """``g(x) = atan(pi/2 alpha x)/pi + 1/2``; ``g'(x) = alpha/2 / (1 + (pi/2 alpha x)^2)`` (default alpha 2)."""

    name, default_alpha = "atan", 2.0

    def derivative(self, x):
        return self.alpha / 2.0 / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)

    def primitive(self, x):
        return torch.atan(math.pi / 2.0 * self.alpha * x) / math.pi + 0.5


class FastSigmoid(Surrogate):
    """SuperSpike: ``g'(x) = 1 / (alpha |x| + 1)^2`` (snnTorch ``fast_sigmoid``, slope = alpha, default 25).

    Primitive ``x / (1 + alpha |x|)``; the derivative is not normalised to unit area (as in SuperSpike and
    snnTorch).
    """

    name, default_alpha = "fast_sigmoid", 25.0

    def derivative(self, x):
        return 1.0 / (self.alpha * x.abs() + 1.0) ** 2

    def primitive(self, x):
        return x / (1.0 + self.alpha * x.abs())


class Triangle(Surrogate):
    """``g'(x) = max(0, 1 - alpha |x|)``: peak 1, half-width 1/alpha (Bellec et al. 2018; default 1).

    Unlike :class:`PiecewiseQuadratic` (the same shape scaled to unit area) the peak does not grow with alpha.
    """

    name, default_alpha = "triangle", 1.0

    def derivative(self, x):
        return torch.clamp(1.0 - self.alpha * x.abs(), min=0.0)

    def primitive(self, x):
        ax = torch.clamp(self.alpha * x, -1.0, 1.0)
        return (ax - 0.5 * ax * ax.abs() + 0.5) / self.alpha


class PiecewiseQuadratic(Surrogate):
    """``g'(x) = max(0, alpha - alpha^2 |x|)`` (SpikingJelly ``PiecewiseQuadratic``; BrainCog's quadratic gate).

    The primitive is piecewise quadratic, hence the name; default alpha 1, the IEMF paper used 2.
    """

    name, default_alpha = "piecewise_quadratic", 1.0

    def derivative(self, x):
        return torch.clamp(self.alpha - self.alpha * self.alpha * x.abs(), min=0.0)

    def primitive(self, x):
        ax = torch.clamp(self.alpha * x, -1.0, 1.0)
        return ax - 0.5 * ax * ax.abs() + 0.5


class Rectangular(Surrogate):
    """``g'(x) = alpha 1[|x| < 1/(2 alpha)]``: a box of unit area (default alpha 1)."""

    name, default_alpha = "rectangular", 1.0

    def derivative(self, x):
        return self.alpha * (x.abs() < 0.5 / self.alpha).to(x.dtype)

    def primitive(self, x):
        return torch.clamp(self.alpha * x + 0.5, 0.0, 1.0)


class Erf(Surrogate):
    """``g(x) = (1 + erf(alpha x)) / 2``; ``g'(x) = alpha / sqrt(pi) exp(-(alpha x)^2)`` (default alpha 2)."""

    name, default_alpha = "erf", 2.0

    def derivative(self, x):
        return self.alpha / math.sqrt(math.pi) * torch.exp(-((self.alpha * x) ** 2))

    def primitive(self, x):
        return 0.5 * (1.0 + torch.erf(self.alpha * x))


for _cls, _aliases in (
    (Sigmoid, ()),
    (ATan, ()),
    (FastSigmoid, ("superspike",)),
    (Triangle, ()),
    (PiecewiseQuadratic, ("quadratic_gate",)),
    (Rectangular, ("rect",)),
    (Erf, ()),
):
    SURROGATES.register(_cls.name, _cls, aliases=_aliases)


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return SURROGATES.names()


def get(surrogate: str | Surrogate, alpha: float | None = None) -> Surrogate:
    """Return a surrogate object from a name (``"atan"``, case-insensitive) or pass an object through.

    Raises:
        ValueError: unknown name (the message lists the valid names and close matches).
    """
    if isinstance(surrogate, Surrogate):
        if alpha is not None and float(alpha) != surrogate.alpha:
            raise ValueError(f"alpha={alpha} given together with a surrogate object that has alpha={surrogate.alpha}")
        return surrogate
    if not isinstance(surrogate, str):
        raise TypeError(f"surrogate must be a name or a Surrogate, got {type(surrogate).__name__}")
    return SURROGATES.get(surrogate.lower()).factory(alpha)
