"""Measure which NIR nodes other tools' importers load and run like ours: the support table of docs/nir.md.

    python scripts/nir_support_table.py [--tools snntorch norse sinabs rockpool] [--timeout 10]

For each tool and each case (one node type, or one graph shape: two edges into a node, two inputs, two outputs),
a small graph is written by `snn_msi.nir.export` (or by hand where our models never write that node alone) with
the options that tool needs (snnTorch: dt = 1e-4 s, Euler, its fixed step; Norse: Euler, told the graph's dt;
Sinabs and Rockpool: `dt = 1`, `integration="exact"`, the time constants in steps they read). The same random
input goes through our `NIRNetwork` and through the tool's own `from_nir`; a row says `identical`, the fraction
of outputs that agree (to 1e-5), or the exception the import or the run raised. nirtorch's `GraphExecutor`
(Norse, Sinabs, Rockpool) is also tried in topological order where its own order gives a different answer. A
call that does not return within `--timeout` seconds (SIGALRM) reads `hangs`. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import re
import signal
import sys
import warnings
from collections.abc import Callable

import nir
import numpy as np
import torch
from torch import nn

import neurons
from snn_msi.nir import NIRNetwork, export
from snn_msi.nir.interop import in_topological_order, run_steps

T, B = 12, 3
TOOLS = ("snntorch", "norse", "sinabs", "rockpool")
#: per tool: (dt, integration) the graph is written with
SETTINGS = {"snntorch": (1e-4, "euler"), "norse": (1e-3, "euler"), "sinabs": (1.0, "exact"), "rockpool": (1.0, "exact")}


def _seq(*layers) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


def _lif(**kw):
    return neurons.create("lif", step_mode="m", **kw)


def _graph(nodes: dict, edges: list, dt: float, integration: str) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "integration": integration})


def _affine(n_in: int, n_out: int, seed: int) -> nir.Affine:
    rng = np.random.default_rng(seed)
    return nir.Affine(weight=rng.normal(size=(n_out, n_in)).astype(np.float32), bias=np.zeros(n_out, np.float32))


def _two_inputs(dt, integration):
    nodes = {
        "input.a": nir.Input(input_type=np.array([4])),
        "input.b": nir.Input(input_type=np.array([4])),
        "a": _affine(4, 4, 1),
        "b": _affine(4, 4, 2),
        "output": nir.Output(output_type=np.array([4])),
    }
    return _graph(nodes, [("input.a", "a"), ("input.b", "b"), ("a", "output"), ("b", "output")], dt, integration)


def _two_outputs(dt, integration):
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "a": _affine(4, 4, 1),
        "b": _affine(4, 4, 2),
        "output.a": nir.Output(output_type=np.array([4])),
        "output.b": nir.Output(output_type=np.array([4])),
    }
    return _graph(nodes, [("input", "a"), ("input", "b"), ("a", "output.a"), ("b", "output.b")], dt, integration)


def _residual(dt, integration):
    """`input -> a -> {b, c} -> d` with `b` and `c` on the two branches (a block with a projection shortcut)."""
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "a": _affine(4, 4, 1),
        "b": _affine(4, 4, 2),
        "c": _affine(4, 4, 3),
        "d": _affine(4, 4, 4),
        "output": nir.Output(output_type=np.array([4])),
    }
    edges = [("input", "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "output")]
    return _graph(nodes, edges, dt, integration)


def _pool(kind):
    def make(dt, integration):
        k = np.array([2, 2])
        node = getattr(nir, kind)(kernel_size=k, stride=k, padding=np.zeros(2, np.int64))
        nodes = {
            "input": nir.Input(input_type=np.array([2, 4, 4])),
            "pool": node,
            "output": nir.Output(output_type=np.array([2, 2, 2])),
        }
        return _graph(nodes, [("input", "pool"), ("pool", "output")], dt, integration)

    return make


def _scale(dt, integration):
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "scale": nir.Scale(scale=np.full(4, 0.25)),
        "output": nir.Output(output_type=np.array([4])),
    }
    return _graph(nodes, [("input", "scale"), ("scale", "output")], dt, integration)


def _exported(make_net: Callable[[], nn.Module], shape):
    return lambda dt, integration: export(make_net(), shape, dt=dt, integration=integration)


#: case -> (graph maker (dt, integration) -> graph, input shape of one sample)
CASES = {
    "Affine": (_exported(lambda: _seq(nn.Linear(10, 6)), (10,)), (10,)),
    "Conv2d": (_exported(lambda: _seq(nn.Conv2d(1, 2, 3, padding=1)), (1, 6, 6)), (1, 6, 6)),
    "Flatten (written start_dim=-3)": (_exported(lambda: _seq(nn.Flatten()), (2, 3, 3)), (2, 3, 3)),
    "AvgPool2d": (_pool("AvgPool2d"), (2, 4, 4)),
    "SumPool2d": (_pool("SumPool2d"), (2, 4, 4)),
    "Scale (K > 1 frames)": (_scale, (4,)),
    "LIF, decay_input=True": (_exported(lambda: _seq(nn.Linear(10, 6), _lif(tau=2.0)), (10,)), (10,)),
    "LIF, decay_input=False": (
        _exported(lambda: _seq(nn.Linear(10, 6), _lif(tau=4.0, decay_input=False)), (10,)),
        (10,),
    ),
    "LIF on a conv map": (_exported(lambda: _seq(nn.Conv2d(1, 2, 3, padding=1), _lif(tau=2.0)), (1, 6, 6)), (1, 6, 6)),
    "IF": (_exported(lambda: _seq(nn.Linear(10, 6), neurons.create("if", step_mode="m")), (10,)), (10,)),
    "CubaLIF (Synaptic)": (
        _exported(
            lambda: _seq(
                nn.Linear(10, 6), neurons.create("synaptic", step_mode="m", reset="hard", tau=4.0, tau_syn=2.0)
            ),
            (10,),
        ),
        (10,),
    ),
    "LI + Threshold (reset none)": (
        _exported(lambda: _seq(nn.Linear(10, 6), _lif(tau=2.0, reset="none")), (10,)),
        (10,),
    ),
    "two edges into a node (residual)": (_residual, (4,)),
    "two inputs": (_two_inputs, (4,)),
    "two outputs": (_two_outputs, (4,)),
}


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float):
    def fire(*_):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _load(tool: str, graph, dt: float):
    if tool == "snntorch":
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)
    if tool == "norse":
        import norse.torch

        return norse.torch.from_nir(graph, dt=dt)
    if tool == "sinabs":
        import sinabs

        return sinabs.from_nir(graph, batch_size=B)
    from rockpool.nn.modules import from_nir

    return from_nir(graph)


def _run(tool: str, net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if tool == "snntorch":
            from snntorch import utils

            utils.reset(net)
            return run_steps(net, x, stateful=False)
        if tool == "norse":
            return run_steps(net, x, stateful=True)
        if tool == "sinabs":  # squeeze layers: [B * T, ...], batch-major, at once
            y = net(x.transpose(0, 1).reshape(B * T, *x.shape[2:]))
            y = y[0] if isinstance(y, tuple) else y
            return y.view(B, T, *y.shape[1:]).transpose(0, 1)
        y = net(x.transpose(0, 1).contiguous())  # Rockpool: [B, T, ...] at once
        return (y[0] if isinstance(y, tuple) else y).transpose(0, 1)


def _compare(ours: torch.Tensor | dict, theirs: torch.Tensor) -> str:
    if isinstance(ours, dict):  # several outputs: which one, if any, they return
        same = [name for name, o in ours.items() if _compare(o, theirs) == "identical"]
        return f"runs, returns only {same[0]}" if same else "runs, returns none of the outputs"
    if tuple(theirs.shape) != tuple(ours.shape):
        return f"runs, output of shape {tuple(theirs.shape[1:])} for {tuple(ours.shape[1:])}"
    agree = torch.isclose(theirs.float(), ours.float(), atol=1e-5, rtol=1e-5).float().mean().item()
    return "identical" if agree == 1.0 else f"{agree:.1%} of outputs agree"


def _error(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", text)  # <class 'nir.ir.conv.Conv2d'> -> Conv2d
    return f"fails: {type(err).__name__}: {text[:120]}"


def measure(tool: str, case: str, timeout: float) -> str:
    make, shape = CASES[case]
    dt, integration = SETTINGS[tool]
    try:
        graph = make(dt, integration)
    except ValueError as err:
        return f"not written: {err}"
    torch.manual_seed(1)
    x = torch.rand(T, B, *shape) * 2 if "Pool" in case else torch.randn(T, B, *shape) * 1.5 + 0.3
    ref = NIRNetwork(graph)
    with torch.no_grad():
        ours = ref(*([x] * len(ref.input_names)))
    try:
        with _deadline(timeout), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            net = _load(tool, graph, dt)
            result = _compare(ours, _run(tool, net, x))
            if result != "identical" and tool != "snntorch" and in_topological_order(net):
                fixed = _compare(ours, _run(tool, net, x))
                result = f"{result}; in topological order: {fixed}"
    except _Timeout:
        return f"hangs (no result after {timeout:g} s)"
    except Exception as err:  # the row reports whatever the tool raised
        return _error(err)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before a load or run reads 'hangs'")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    print("| node / graph | " + " | ".join(args.tools) + " |")
    print("|---|" + "---|" * len(args.tools))
    for case in CASES:
        print(f"| {case} | " + " | ".join(measure(t, case, args.timeout) for t in args.tools) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
