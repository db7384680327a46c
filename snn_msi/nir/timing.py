"""Time in a NIR graph: our time constants in steps as NIR's in seconds at a step `dt`, and back.

Our neurons update once per step; NIR's are ODEs. A graph is written at a step `dt` in seconds (stored in its
metadata as `dt`) under one of two conventions (stored as `integration`), chosen for the tool that reads it:

- `"euler"` (default): `tau_nir = tau * dt`. A tool that steps by forward Euler, `y <- y + dt * dy/dt`
  (snnTorch, Norse, our `NIRNetwork`), decays by `1 - dt/tau_nir = 1 - 1/tau` per step: ours.
- `"exact"`: `tau_nir = -dt / ln(1 - 1/tau)`. A tool that decays by `exp(-dt/tau_nir)` per step (the exact
  solution over one step with the input held: Sinabs, Rockpool, Lava) decays by `1 - 1/tau`: ours. With `dt = 1`
  the graph's time constants are in steps, as Sinabs reads them (it ignores `dt`).

Either way the fraction of the way to the target a state moves in one step is `1/tau`, so the input gains
(`r`, `w_in`) are the same under both conventions.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

#: the default simulation step in seconds (snnTorch's NIR import and export assume 1e-4)
DEFAULT_DT = 1e-4

Integration = Literal["euler", "exact"]
INTEGRATIONS: tuple[str, ...] = get_args(Integration)


def nir_module():
    """The `nir` package, or a one-line `ModuleNotFoundError` naming the extra that installs it."""
    try:
        import nir
    except ModuleNotFoundError:
        raise ModuleNotFoundError("NIR export/import needs the nir package: pip install 'snn-msi[nir]'") from None
    return nir


def check_dt(dt) -> float:
    """`dt` as a float number of seconds > 0, or a `TypeError` / `ValueError` naming it."""
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise TypeError(f"dt must be a number of seconds, got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt}")
    return dt


def check_integration(integration: str) -> str:
    """`integration` if it is one of `INTEGRATIONS`, else a `ValueError` naming the choices."""
    if integration not in INTEGRATIONS:
        raise ValueError(f"integration must be one of {', '.join(INTEGRATIONS)}, got {integration!r}")
    return integration


def tau_to_nir(tau: float, dt: float, integration: str = "euler") -> float:
    """A time constant of `tau` steps (>= 1) as NIR's time constant in seconds at step `dt`.

    `"exact"` has no value for `tau = 1` (a state that forgets everything each step: `exp(-dt/tau_nir) = 0`);
    it raises `ValueError`.
    """
    if integration == "euler":
        return tau * dt
    if tau <= 1.0:
        raise ValueError(
            f"tau = {tau:g} step(s) keeps nothing from one step to the next: exp(-dt/tau) = 0 has no "
            "finite time constant; write the graph with integration='euler'"
        )
    return -dt / math.log1p(-1.0 / tau)


def step_fraction(tau_nir: float, dt: float, integration: str = "euler") -> float:
    """`1/tau` in steps for NIR's time constant `tau_nir` (seconds) at step `dt`: the inverse of `tau_to_nir`."""
    if integration == "euler":
        return dt / tau_nir
    return -math.expm1(-dt / tau_nir)
