"""Step modes as SpikingJelly has them: ``"s"`` = one time step per call, ``"m"`` = ``[T, B, ...]`` per call."""

import pytest
import torch

import neurons


@pytest.mark.parametrize("name", list(neurons.available()))
def test_multi_step_equals_a_loop_of_single_steps(name):
    torch.manual_seed(0)
    x = torch.rand(5, 3, 4) * 2
    seq = neurons.create(name, step_mode="m")(x)
    single = neurons.create(name)
    assert single.step_mode == "s"
    loop = torch.stack([single(x_t) for x_t in x])
    torch.testing.assert_close(seq, loop)


@pytest.mark.parametrize("name", list(neurons.available()))
def test_single_step_state_shape_change_is_an_error(name):
    """A [T, B, F] tensor in single-step mode is one step; the next call of another shape says so, never silently
    starts over."""
    neuron = neurons.create(name)
    if not isinstance(neuron, neurons.BaseNeuron):
        pytest.skip(f"{name}: a peer library's neuron (its own state handling) or the stateless ReLU control")
    neuron(torch.rand(5, 3, 4))
    with pytest.raises(ValueError, match=r"step_mode='m'"):
        neuron(torch.rand(3, 4))
    neurons.reset(neuron)
    assert neuron(torch.rand(3, 4)).shape == (3, 4)  # after a reset, any shape
