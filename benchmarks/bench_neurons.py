"""Forward + backward time and memory of a multi-step LIF layer: ours against the peers, in one run.

    python benchmarks/bench_neurons.py --quick            # T in {4, 16, 32}, N = 1e6, CPU: under a minute
    python benchmarks/bench_neurons.py --device cuda      # the full grid on a GPU

Rows: ``ours`` (backend auto: Triton on CUDA, the fused C++ loop on CPU), ``ours-torch`` (our per-step PyTorch
reference), ``spikingjelly`` (LIFNode multi-step; on CUDA every implementation it offers, the fastest kept),
``snntorch`` (Leaky, its per-step loop). ``floor`` is the memory-traffic floor: one read and one write of
``T*N`` elements per direction, timed as two tensor copies of that size in the same run (on CUDA also given
against the device's peak bandwidth). Memory: bytes saved for the backward (every device) and peak allocated
(CUDA, beyond the input and its incoming gradient) of one forward + backward at the largest T.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import neurons  # noqa: E402

# published peak memory bandwidth, GB/s
PEAK_BW = {"H100": 3350.0, "H200": 4800.0, "A100": 2039.0, "RTX 4090": 1008.0}

TAU, V_TH = 2.0, 1.0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timeit(fn: Callable[[], None], device: str, repeat: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_ours(backend: str):
    n = neurons.create("lif", tau=TAU, v_threshold=V_TH, step_mode="m", backend=backend, check_inputs=False)
    return n, n.reset


def make_spikingjelly():
    from spikingjelly.activation_based import neuron, surrogate

    n = neuron.LIFNode(tau=TAU, v_threshold=V_TH, surrogate_function=surrogate.ATan(), step_mode="m")
    return n, n.reset


def make_snntorch():
    import snntorch

    cell = snntorch.Leaky(beta=1.0 - 1.0 / TAU, threshold=V_TH, spike_grad=snntorch.surrogate.atan(), reset_delay=False)

    class Loop(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x_seq):
            self.cell.reset_mem()
            return torch.stack([self.cell(x)[0] for x in x_seq])

    return Loop(), cell.reset_mem


def fwd_bwd(module, reset, x, g):
    def run():
        reset()
        x.grad = None
        module(x).backward(g)

    return run


def saved_bytes(module, reset, x) -> int:
    """Bytes of the tensors autograd saves for the backward in one forward (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    reset()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    del out
    return sum(seen.values())


def peers(device: str) -> dict[str, Callable]:
    rows: dict[str, Callable] = {
        "ours": lambda: make_ours("auto"),
        "ours-torch": lambda: make_ours("torch"),
    }
    try:
        import spikingjelly  # noqa: F401

        rows["spikingjelly"] = make_spikingjelly
    except ImportError:
        print("spikingjelly not installed: row skipped")
    try:
        import snntorch  # noqa: F401

        rows["snntorch"] = make_snntorch
    except ImportError:
        print("snntorch not installed: row skipped")
    return rows


def bench_spikingjelly_cuda(x, g, repeat) -> tuple[float, str]:
    """SpikingJelly on CUDA picks among its own implementations (SJ_LIF_CUDA_IMPLEMENTATION, read once at
    import); force each in turn and keep the fastest that runs this profile."""
    from spikingjelly._ops import lif as sj_lif

    sel = sj_lif._selection
    best = (float("inf"), "none")
    for impl in ("cuda", "triton", "torch", "auto"):
        sel._requested = impl
        sel._selections.clear()
        try:
            m, r = make_spikingjelly()
            t = timeit(fwd_bwd(m.to(x.device), r, x, g), "cuda", repeat)
        except Exception as err:  # an implementation SJ cannot run here is reported, not fatal
            print(f"  spikingjelly[{impl}] unavailable: {type(err).__name__}: {str(err)[:200]}")
            continue
        best = min(best, (t, impl))
    sel._requested = "auto"
    sel._selections.clear()
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="T in {4, 16, 32}, N = 1e6 only")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--N", type=float, nargs="+", default=[1e4, 1e5, 1e6, 1e7])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="CPU/glibc: keep freed memory in the process (neurons.runtime.keep_freed_memory) so that fresh outputs "
        "cost no page faults; applies to every row alike",
    )
    args = p.parse_args(argv)
    if args.keep_freed_memory:
        from neurons.runtime import keep_freed_memory

        keep_freed_memory()  # glibc: serve big blocks from the heap, do not return freed heap to the OS
    if args.quick:
        args.T, args.N, args.repeat = [4, 16, 32], [1e6], 5
    device, dtype = args.device, getattr(torch, args.dtype)
    torch.manual_seed(0)

    print(f"# bench_neurons: multi-step LIF fwd+bwd, tau={TAU}, v_th={V_TH}, {args.dtype}, device={device}")
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((bw for key, bw in PEAK_BW.items() if key in name), None)
        print(f"# {name}; peak bandwidth {peak} GB/s (published)")
    else:
        peak = None
        print(f"# CPU, {torch.get_num_threads()} threads")
        from neurons.kernels import cpu

        reason = cpu.unavailable_reason()
        status = reason or f"built/loaded in {cpu.warm_up():.1f} s (once per machine, cached)"
        print(f"# fused C++ path: {status}")
        if args.keep_freed_memory:
            print("# glibc told to keep freed memory (mallopt): no page faults from re-allocating outputs")
    rows = peers(device)
    header = f"{'T':>3} {'N':>9} | " + " ".join(f"{k:>13}" for k in rows) + f" | {'floor':>9} | speed-up of ours vs"
    print(header)
    print("-" * len(header))
    results = []
    for n_el in args.N:
        n_el = int(n_el)
        for T in args.T:
            x = (torch.randn(T, n_el, device=device) * 0.8 + 0.6).to(dtype).requires_grad_(True)
            g = torch.randn(T, n_el, device=device).to(dtype)
            times: dict[str, float] = {}
            note = ""
            for key, make in rows.items():
                if key == "spikingjelly" and device == "cuda":
                    times[key], impl = bench_spikingjelly_cuda(x, g, args.repeat)
                    note = f"(sj: {impl})"
                    continue
                m, r = make()
                times[key] = timeit(fwd_bwd(m.to(device), r, x, g), device, args.repeat)
            buf = torch.empty_like(x)
            floor = 2 * timeit(lambda b=buf, a=x: b.copy_(a), device, args.repeat)  # 1 read + 1 write, fwd and bwd
            ratios = " ".join(f"{k}:{times[k] / times['ours']:.1f}x" for k in times if k != "ours")
            print(
                f"{T:>3} {n_el:>9.0e} | "
                + " ".join(f"{times[k] * 1e3:>10.2f} ms" for k in rows)
                + f" | {floor * 1e3:>6.2f} ms | {ratios}; ours/floor {times['ours'] / floor:.2f}x {note}"
            )
            if peak:
                gbps = 4 * T * n_el * x.element_size() / times["ours"] / 1e9
                print(f"{'':>14} ours: {gbps:.0f} GB/s of traffic floor = {100 * gbps / peak:.0f}% of peak")
            results.append((T, n_el, times, floor))

    T, n_el = max(args.T), int(args.N[-1] if not args.quick else args.N[0])
    x = (torch.randn(T, n_el, device=device) * 0.8 + 0.6).to(dtype).requires_grad_(True)
    g = torch.randn(T, n_el, device=device).to(dtype)
    mib = x.numel() * x.element_size() / 2**20
    print(f"\n# memory of one fwd+bwd at T={T}, N={n_el:.0e} (the input itself {mib:.0f} MiB)")
    print(f"{'impl':>13} | {'saved for backward':>18} | {'peak allocated':>14}")
    for key, make in rows.items():
        m, r = make()
        m = m.to(device)
        sb = saved_bytes(m, r, x) / 2**20
        peak_mem = "n/a (CPU)"
        if device == "cuda":
            x.grad = None
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fwd_bwd(m, r, x, g)()
            torch.cuda.synchronize()
            peak_mem = f"{(torch.cuda.max_memory_allocated() - base) / 2**20:.0f} MiB"  # beyond x and g
        print(f"{key:>13} | {sb:>14.0f} MiB | {peak_mem:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
