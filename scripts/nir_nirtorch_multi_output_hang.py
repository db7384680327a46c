"""Minimal reproduction (for nirtorch upstream): `nirtorch.nir_to_torch` never returns on a graph with two Output
nodes, and fails on a graph with two Input nodes.

    python scripts/nir_nirtorch_multi_output_hang.py [--timeout 20]

Case 1, one input and two outputs (`input -> affine -> {out_a, out_b}`): `_construct_fx_graph` re-queues an
Output node while another node is still queued (`if len(module_queue) > 0 and module_name not in
visited_nodes: module_queue.append(...)`); with two Output nodes each re-queues itself behind the other forever.
The call runs in a child process that is killed after `--timeout` seconds. Case 2, two inputs
(`{in_a, in_b} -> affine -> out`): every Input node defines the placeholders `input` and `state` again, and
`torch.fx` refuses the graph (`RuntimeError: Node redefined name is_none!`). snnTorch's `import_from_nir`
(snnTorch 1.0 with nirtorch 2.6) calls `nir_to_torch`, so both reach snnTorch users. Exit status 0 when both
behave as described (the bug is present), 1 when either is fixed.
"""

import argparse
import multiprocessing as mp
import sys

import nir
import numpy as np


def affine():
    return nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, dtype=np.float32))


def two_outputs() -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type=np.array([2])),
        "affine": affine(),
        "out_a": nir.Output(output_type=np.array([2])),
        "out_b": nir.Output(output_type=np.array([2])),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "affine"), ("affine", "out_a"), ("affine", "out_b")])


def two_inputs() -> nir.NIRGraph:
    nodes = {
        "in_a": nir.Input(input_type=np.array([2])),
        "in_b": nir.Input(input_type=np.array([2])),
        "affine": affine(),
        "output": nir.Output(output_type=np.array([2])),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("in_a", "affine"), ("in_b", "affine"), ("affine", "output")])


def _load(case: str) -> None:
    import nirtorch
    import torch

    graph = two_outputs() if case == "two_outputs" else two_inputs()
    nirtorch.nir_to_torch(graph, {nir.Affine: lambda n: torch.nn.Linear(2, 2)})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for case 1 (default 20)")
    args = p.parse_args(argv)
    child = mp.get_context("spawn").Process(target=_load, args=("two_outputs",), daemon=True)
    child.start()
    child.join(args.timeout)
    hangs = child.is_alive()
    if hangs:
        child.kill()
        child.join()
    print(f"case 1, two outputs: {'no result after %g s (hangs)' % args.timeout if hangs else 'returned'}")
    try:
        _load("two_inputs")
        refuses = False
        print("case 2, two inputs: loaded")
    except RuntimeError as err:
        refuses = True
        print(f"case 2, two inputs: RuntimeError: {err}")
    return 0 if hangs and refuses else 1


if __name__ == "__main__":
    sys.exit(main())
