"""Minimal reproduction (for nirtorch upstream): `nirtorch.load`'s `GraphExecutor` runs a node before all of its
inputs are computed when a graph branches and joins with a node on each branch (a residual block with a
projection shortcut), so it computes the wrong values and returns the output of the wrong node.

    python scripts/nir_nirtorch_execution_order.py

The graph `input -> a -> {b -> c, d} -> e -> output` (`e` sums `c` and `d`; every node an `Affine`).
`GraphExecutor.get_execution_order` is a pre-order depth-first walk (`graph_utils.trace_execution`): it lists
`e` and `output` after `c` but before `d`, runs `e` without `d`'s output and returns the output of the last node
it ran (`d`). Norse's, Sinabs' and Rockpool's `from_nir` build on `nirtorch.load` (nirtorch 2.6). Reordering
`execution_order` topologically gives the right result. Exit status 0 when the bug is present, 1 when fixed.
"""

import sys
import warnings

import nir
import nirtorch
import numpy as np
import torch


def affine(scale: float):
    return nir.Affine(weight=np.eye(2, dtype=np.float32) * scale, bias=np.zeros(2, dtype=np.float32))


def as_linear(node):
    if isinstance(node, nir.Affine):
        m = torch.nn.Linear(2, 2)
        m.weight.data, m.bias.data = torch.from_numpy(node.weight), torch.from_numpy(node.bias)
        return m
    return None


def main() -> int:
    nodes = {
        "input": nir.Input(input_type=np.array([2])),
        "a": affine(1),
        "b": affine(2),
        "c": affine(3),
        "d": affine(5),
        "e": affine(1),
        "output": nir.Output(output_type=np.array([2])),
    }
    edges = [("input", "a"), ("a", "b"), ("b", "c"), ("a", "d"), ("c", "e"), ("d", "e"), ("e", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        net = nirtorch.load(graph, as_linear, return_state=False)
    x = torch.ones(1, 2)
    expected = (2 * 3 + 5) * x  # e = c + d = 6 x + 5 x
    print("execution order:", [n.name for n in net.execution_order])
    with torch.no_grad():
        got = net(x)
    print(f"expected {expected.tolist()}, got {got.tolist()}")
    return 0 if not torch.allclose(got, expected) else 1


if __name__ == "__main__":
    sys.exit(main())
