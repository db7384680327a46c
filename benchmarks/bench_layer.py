"""Per-call cost of one small spiking layer (forward + backward) against a ReLU layer of the same size, in one run:
eager, under CUDA graphs (CUDA), and under ``torch.compile``.

    python benchmarks/bench_layer.py --device cuda                    # T=4, N in 1e3..1e6; eager, graphs, compile
    python benchmarks/bench_layer.py --device cpu --threads 1         # eager (and --compile) on the CPU

Rows per (T, N): ``lif`` (our LIF, backend auto: Triton on CUDA, the C++ loop on CPU, ``check_inputs=False``),
``lif-torch`` (our per-step PyTorch loop), ``relu`` (``torch.relu``, the floor). Columns: ``eager`` (a Python
call of forward + backward), ``graph`` (CUDA only: forward + backward captured once in a CUDA graph, then
replayed; the time per replay), ``compile`` (``--compile``: ``torch.compile(fullgraph=True)`` of the layer,
``mode="reduce-overhead"`` on CUDA: CUDA graphs through Inductor). Times are medians of ``--repeat`` rounds
of ``--inner`` calls each, after warm-up. The issue-15 target: LIF fwd+bwd at T=4, N=1e4 <= 0.1 ms under
CUDA graphs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import neurons  # noqa: E402


def make(name: str, device: str) -> torch.nn.Module:
    if name == "relu":
        return torch.nn.ReLU()
    backend = "torch" if name == "lif-torch" else "auto"
    n = neurons.create("lif", tau=2.0, v_threshold=1.0, step_mode="m", backend=backend, check_inputs=False)
    return n.to(device)


def fwd_bwd(module, x, g):
    def run():
        if isinstance(module, neurons.StatefulModule) or hasattr(module, "_orig_mod"):
            neurons.reset(module)
        x.grad = None
        module(x).backward(g)

    return run


def timed(fn, device: str, repeat: int, inner: int) -> float:
    """Median over ``repeat`` rounds of the mean time of ``inner`` calls (seconds per call)."""
    for _ in range(3):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        rounds.append((time.perf_counter() - t0) / inner)
    return statistics.median(rounds)


def graphed(module, x, g):
    """Forward + backward captured in one CUDA graph (warm-up on a side stream first, as the PyTorch docs do)."""
    run = fwd_bwd(module, x, g)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        if isinstance(module, neurons.StatefulModule):
            module.reset()
        module(x).backward(g)
    return graph.replay


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--T", type=int, nargs="+", default=[4])
    p.add_argument("--N", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6])
    p.add_argument("--rows", nargs="+", default=["relu", "lif", "lif-torch"], choices=["relu", "lif", "lif-torch"])
    p.add_argument("--compile", action="store_true", help="add the torch.compile column")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--inner", type=int, default=50)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = args.device, getattr(torch, args.dtype)
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"# bench_layer: one layer fwd+bwd, {args.dtype}, {where}, torch {torch.__version__}{load}")
    cols = ["eager"] + (["graph"] if device == "cuda" else []) + (["compile"] if args.compile else [])
    print(f"{'T':>3} {'N':>8} {'row':>10} | " + " ".join(f"{c:>12}" for c in cols) + " | vs relu")
    for T in args.T:
        for n_el in map(int, args.N):
            torch.manual_seed(0)
            x = (torch.randn(T, n_el, device=device) * 0.8 + 0.6).to(dtype).requires_grad_(True)
            g = torch.randn(T, n_el, device=device).to(dtype)
            results: dict[str, dict[str, float]] = {}
            for row in args.rows:
                res = results[row] = {}
                module = make(row, device)
                res["eager"] = timed(fwd_bwd(module, x, g), device, args.repeat, args.inner)
                if device == "cuda":
                    try:
                        res["graph"] = timed(graphed(make(row, device), x, g), device, args.repeat, args.inner)
                    except Exception as err:  # a row that cannot be captured is reported, not fatal
                        print(f"  {row}: CUDA graph capture failed: {type(err).__name__}: {str(err)[:160]}")
                if args.compile:
                    torch._dynamo.reset()
                    mode = "reduce-overhead" if device == "cuda" else None
                    compiled = torch.compile(make(row, device), fullgraph=True, mode=mode)
                    try:
                        res["compile"] = timed(fwd_bwd(compiled, x, g), device, args.repeat, args.inner)
                    except Exception as err:
                        print(f"  {row}: torch.compile failed: {type(err).__name__}: {str(err)[:160]}")
            for row, res in results.items():
                cells = " ".join(f"{res[c] * 1e3:>9.4f} ms" if c in res else f"{'n/a':>12}" for c in cols)
                ratio = " ".join(
                    f"{c} {res[c] / results['relu'][c]:.2f}x"
                    for c in cols
                    if row != "relu" and c in res and c in results.get("relu", {})
                )
                print(f"{T:>3} {n_el:>8.0e} {row:>10} | {cells} | {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
