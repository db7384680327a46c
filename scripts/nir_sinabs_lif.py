"""Minimal reproduction (for Sinabs upstream): `sinabs.from_nir` cannot import a `LIF` node with a multi-dimensional
shape, and reads `tau` as a number of steps whatever the graph's time step.

    python scripts/nir_sinabs_lif.py

Case 1: a `LIF` node of shape (2, 3, 3) (after a `Conv2d`): `sinabs/nir.py` checks `if any(node.v_leak) != 0`,
and Python's `any` over a 3-D numpy array raises `ValueError: The truth value of an array with more than one
element is ambiguous` (`np.any(node.v_leak != 0)` was meant; the `!= 0` also sits outside the call).
Case 2: a `LIF` with `tau = 2e-4` s written at `dt = 1e-4` s (2 steps, the convention of snnTorch's and Norse's
NIR support): Sinabs builds `LIFSqueeze(tau_mem=2e-4)` and decays by `exp(-1 / 2e-4) = 0` per step, so the
membrane forgets everything between steps; NIR's `LIF` at dt = 1e-4 s keeps `1 - dt/tau = 0.5` of it (Euler) or
`exp(-dt/tau) = 0.61` (exact). Sinabs takes no `dt`. Exit status 0 when both behave as described.
"""

import sys

import nir
import numpy as np
import sinabs
import torch


def lif(shape, tau: float) -> nir.LIF:
    def full(v):
        return np.full(shape, v, dtype=np.float32)

    return nir.LIF(tau=full(tau), r=full(1.0), v_leak=full(0.0), v_threshold=full(10.0), v_reset=full(0.0))


def graph(shape, tau: float) -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type=np.array(shape)),
        "lif": lif(shape, tau),
        "output": nir.Output(output_type=np.array(shape)),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")], metadata={"dt": 1e-4})


def main() -> int:
    try:
        sinabs.from_nir(graph((2, 3, 3), 2e-4), batch_size=1)
        case1 = False
        print("case 1, LIF of shape (2, 3, 3): loaded")
    except ValueError as err:
        case1 = True
        print(f"case 1, LIF of shape (2, 3, 3): ValueError: {err}")
    net = sinabs.from_nir(graph((1,), 2e-4), batch_size=1)
    x = torch.tensor([1.0, 0.0, 0.0]).view(3, 1)  # [B * T, 1]: one input, then nothing
    with torch.no_grad():
        net(x)
    lif_layer = next(m for m in net.modules() if isinstance(m, sinabs.layers.LIFSqueeze))
    v = float(lif_layer.v_mem.flatten()[0])
    print(f"case 2, tau = 2e-4 s at dt = 1e-4 s: membrane after 3 steps {v:.4g}; NIR (Euler at dt) 0.5**3 = 0.125")
    return 0 if case1 and abs(v - 0.125) > 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
