"""Minimal reproduction (for Rockpool upstream): `rockpool.nn.modules.from_nir` cannot import NIR's `LIF` node, and
imports a `CubaLIF` at a time step derived from its parameters rather than the graph's.

    python scripts/nir_rockpool_lif.py

Case 1: a `LIF` node (NIR's fields: `tau, r, v_leak, v_threshold, v_reset`): `rockpool/nn/modules/torch/nir.py`
reads `node.tau_mem` (a `CubaLIF` field) and fails with `AttributeError`.
Case 2: a `CubaLIF` with `tau_mem = 2e-4` s, `tau_syn = 4e-4` s, `r = 2` written at `dt = 1e-4` s: Rockpool builds
`LIFTorch(dt = min(tau_mem / (1 + r)))` = 6.7e-5 s, not 1e-4 s, so its decays `exp(-dt/tau)` are not the
graph's. Exit status 0 when both behave as described.
"""

import sys

import nir
import numpy as np
from rockpool.nn.modules import from_nir


def graph(node, shape=(3,)) -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type=np.array(shape)),
        "n": node,
        "output": nir.Output(output_type=np.array(shape)),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "n"), ("n", "output")], metadata={"dt": 1e-4})


def full(v, shape=(3,)):
    return np.full(shape, v, dtype=np.float32)


def main() -> int:
    lif = nir.LIF(tau=full(2e-4), r=full(1.0), v_leak=full(0.0), v_threshold=full(1.0), v_reset=full(0.0))
    try:
        from_nir(graph(lif))
        case1 = False
        print("case 1, LIF: loaded")
    except AttributeError as err:
        case1 = True
        print(f"case 1, LIF: AttributeError: {err}")
    cuba = nir.CubaLIF(
        tau_mem=full(2e-4),
        tau_syn=full(4e-4),
        r=full(2.0),
        v_leak=full(0.0),
        w_in=full(4.0),
        v_threshold=full(1.0),
        v_reset=full(0.0),
    )
    net = from_nir(graph(cuba))
    dt = float(next(m for name, m in net.named_children() if name == "n").dt)
    print(f"case 2, CubaLIF at graph dt = 1e-4 s: Rockpool steps at dt = {dt:.3g} s")
    return 0 if case1 and abs(dt - 1e-4) > 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
