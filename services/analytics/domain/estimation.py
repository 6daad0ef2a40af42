"""What the fitted models share (pure): the honest "not enough data" answer and one
maximum-likelihood optimiser.

A fit never invents parameters: with too little data it returns `NotEnoughData` (what
was counted, how many there were, how many are needed), and a fit whose optimiser did
not converge says so in its result (`converged`, `message`), so that the caller keeps
the model it had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

Vector = NDArray[np.float64]


@dataclass(frozen=True)
class NotEnoughData:
    """Too little data to fit `model`: `count` of `subject`, at least `minimum` needed."""

    model: str
    subject: str
    count: int
    minimum: int

    @property
    def message(self) -> str:
        return f"{self.model}: {self.count} {self.subject}, at least {self.minimum} needed"


@dataclass(frozen=True)
class Optimum:
    """Where the optimiser stopped: the parameters (on the optimiser's scale), the
    maximised log-likelihood (without any penalty), whether it converged, and why not."""

    parameters: Vector
    log_likelihood: float
    converged: bool
    message: str


LOG_BOUND = 15.0
"""Log-parameters are kept within +-15 (about 3e-7 to 3e6): a parameter that runs to
that bound is one the data do not identify, and the fit is reported as not converged."""


def maximise(
    objective: Callable[[Vector], tuple[float, Vector]],
    start: Vector,
    *,
    log_likelihood: Callable[[Vector], float],
    names: tuple[str, ...] = (),
    bounded: bool = True,
) -> Optimum:
    """Minimise `objective` (value and gradient of a negative log-likelihood, maybe
    penalised, best divided by the number of observations so that its scale does not
    grow with the population) from `start` with L-BFGS-B, and report the log-likelihood
    at the optimum. With `bounded`, every parameter is a log-parameter kept within
    `LOG_BOUND`, and one that ends on the bound makes the fit "not converged" (named
    after `names`)."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start) if bounded else None
    with np.errstate(all="ignore"):
        result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
        parameters = np.asarray(result.x, dtype=np.float64)
        value = float(log_likelihood(parameters))
    converged = bool(result.success) and bool(np.isfinite(value))
    message = str(result.message)
    if converged and bounded:
        stuck = [
            names[i] if i < len(names) else f"parameter {i}"
            for i, p in enumerate(parameters)
            if abs(p) >= LOG_BOUND - 1e-6
        ]
        if stuck:
            converged = False
            message = f"{', '.join(stuck)} ran to the limit: the data do not identify it"
    if not np.isfinite(value):
        message = f"the log-likelihood is not finite where the optimiser stopped ({message})"
    return Optimum(parameters, value, converged, message)
