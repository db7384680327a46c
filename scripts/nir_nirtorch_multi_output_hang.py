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
import queue
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


def _child(results) -> None:
    """Case 2, then case 1, reporting each to the parent (after the imports, so the timeout is the call's)."""
    import nirtorch
    import torch

    node_map = {nir.Affine: lambda n: torch.nn.Linear(2, 2)}
    try:
        nirtorch.nir_to_torch(two_inputs(), node_map)
        results.put(("two_inputs", "loaded"))
    except RuntimeError as err:
        results.put(("two_inputs", f"RuntimeError: {err}"))
    results.put(("two_outputs", "started"))
    nirtorch.nir_to_torch(two_outputs(), node_map)
    results.put(("two_outputs", "returned"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for case 1 (default 20)")
    args = p.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_child, args=(results,), daemon=True)
    child.start()
    try:
        _, two_inputs_result = results.get(timeout=120)  # the child's imports, then case 2
        results.get(timeout=120)  # case 1 started
        try:
            _, two_outputs_result = results.get(timeout=args.timeout)
        except queue.Empty:
            two_outputs_result = f"no result after {args.timeout:g} s (hangs)"
    finally:
        child.kill()
        child.join()
    print(f"case 1, two outputs: {two_outputs_result}")
    print(f"case 2, two inputs: {two_inputs_result}")
    return 0 if "hangs" in two_outputs_result and two_inputs_result.startswith("RuntimeError") else 1


if __name__ == "__main__":
    sys.exit(main())
