"""Running our graphs in other tools: a workaround for nirtorch's executor (`docs/nir.md`, "Other tools").

Norse's, Sinabs' and Rockpool's `from_nir` return a nirtorch `GraphExecutor` (nirtorch 2.6, `nirtorch.load`)
whose execution order is a pre-order depth-first walk of the graph: in a residual block with a projection
shortcut it runs the block's sum before the shortcut and returns the output of the last node it ran
(`scripts/nir_nirtorch_execution_order.py`). `in_topological_order` puts every node after all of its inputs:

    net = norse.torch.from_nir(nir.read("audio_net.nir"), dt=1e-4)
    in_topological_order(net)
"""

from __future__ import annotations

__all__ = ["in_topological_order", "run_steps"]


def in_topological_order(executor) -> bool:
    """Reorder a nirtorch `GraphExecutor`'s `execution_order` topologically (in place); True when that changed it.

    Raises `ValueError` for a graph with a cycle (recurrent graphs need nirtorch's own handling).
    """
    graph, order, done = executor.graph, [], set()
    while len(order) < len(graph.node_list):
        ready = [n for n in graph.node_list if n not in done and set(graph.find_source_nodes_of(n)) <= done]
        if not ready:
            raise ValueError("in_topological_order: the graph has a cycle")
        order += ready
        done |= set(ready)
    changed = [n.name for n in order] != [n.name for n in executor.execution_order]
    executor.execution_order = order
    return changed


def run_steps(net, x, stateful: bool):
    """Run an imported one-input module over ``x`` ``[T, B, ...]`` a step at a time (nirtorch's executors take one
    step a call) and stack the outputs ``[T, B, ...]``. ``stateful``: the module takes and returns its state
    (``net(x_t, state) -> (out, state)``: Norse); else it keeps it inside (snnTorch, Sinabs) and may return
    ``(out, ...)``."""
    import torch

    outs, state = [], None
    for xt in x:
        if stateful:
            o, state = net(xt, state)
        else:
            o = net(xt)
            o = o[0] if isinstance(o, tuple) else o
        outs.append(o)
    return torch.stack(outs)
