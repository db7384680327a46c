import math

import pytest
import torch

from neurons import surrogate


@pytest.mark.parametrize("name", surrogate.available())
@pytest.mark.parametrize("alpha", [None, 0.7, 3.0])
def test_backward_is_derivative_of_primitive(name, alpha):
    sg = surrogate.get(name, alpha)
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    x = x[(x.abs() - 0.5 / sg.alpha).abs() > 1e-3]  # keep away from the rectangle's jump
    xa = x.clone().requires_grad_(True)
    (g_surrogate,) = torch.autograd.grad(sg(xa).sum(), xa)
    xb = x.clone().requires_grad_(True)
    (g_primitive,) = torch.autograd.grad(sg.primitive(xb).sum(), xb)
    torch.testing.assert_close(g_surrogate, g_primitive, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", surrogate.available())
def test_forward_is_heaviside(name):
    x = torch.tensor([-1.0, -1e-6, 0.0, 1e-6, 2.0])
    assert surrogate.get(name)(x).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_known_closed_forms():
    x = torch.tensor([0.0, 0.3, -0.8])
    a = 2.0
    torch.testing.assert_close(surrogate.get("atan", a).derivative(x), a / 2 / (1 + (math.pi / 2 * a * x) ** 2))
    torch.testing.assert_close(
        surrogate.get("piecewise_quadratic", a).derivative(x), torch.tensor([2.0, 2.0 - 4 * 0.3, 0.0])
    )
    torch.testing.assert_close(surrogate.get("rectangular", a).derivative(x), torch.tensor([2.0, 0.0, 0.0]))


def test_unknown_and_bad_alpha():
    with pytest.raises(ValueError, match="did you mean 'atan'|Did you mean 'atan'"):
        surrogate.get("atann")
    with pytest.raises(ValueError, match="alpha"):
        surrogate.get("sigmoid", -1.0)
    assert surrogate.get("quadratic_gate").name == "piecewise_quadratic"


@pytest.mark.parametrize("name", surrogate.KERNEL_SURROGATES)
def test_a_subclass_with_its_own_gradient_is_not_run_by_the_kernels(name):
    """A user's subclass of a built-in surrogate that changes ``derivative`` keeps the built-in's name; the fused
    kernels (the default ``auto`` backend) must not compute the built-in's gradient for it."""
    import neurons

    base = type(surrogate.get(name))
    mine = type("Mine", (base,), {"derivative": lambda self, x: torch.full_like(x, 3.0)})
    sharper = type("Sharper", (base,), {"default_alpha": 7.0})  # same gradient formula: the kernel still runs it
    assert mine().kernel_id == -1 and sharper().kernel_id == surrogate.KERNEL_SURROGATES.index(name)
    x = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    grads = {}
    for backend in ("torch", "auto"):
        xr = x.clone().requires_grad_()
        neurons.create("lif", step_mode="m", backend=backend, surrogate=mine())(xr).sum().backward()
        grads[backend] = xr.grad
    torch.testing.assert_close(grads["auto"], grads["torch"])
    with pytest.raises(ValueError, match="cannot run it: its surrogate has no kernel"):
        neurons.create("lif", step_mode="m", backend="cpu", surrogate=mine())(x)
