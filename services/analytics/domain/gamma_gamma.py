"""The Gamma-Gamma model of spend per purchase (pure), fitted by maximum likelihood.

Fader, Hardie and Lee, "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), 2005, pp. 415-430, in the form of Fader and Hardie,
"The Gamma-Gamma Model of Monetary Value" (2013). A customer's purchases scatter around
their own mean spend (gamma(p, nu)), and that mean varies across customers
(nu ~ gamma(q, gamma)). Fitted over the customers with at least one repeat purchase, from
their number of repeat purchases and average repeat spend; customers without a repeat
purchase are given the population's mean spend. Numbers as in `bg_nbd`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.special import digamma, gammaln

from services.analytics.domain.estimation import NotEnoughData, Vector, maximise
from services.analytics.domain.purchase_history import PurchaseHistory

GAMMA_GAMMA = "gamma_gamma"
"""The model's name, as `NotEnoughData.model` gives it."""
MINIMUM_SPENDERS = 20
"""Customers with a repeat purchase and its spend needed by Gamma-Gamma."""


@dataclass(frozen=True)
class GammaGammaFit:
    """A Gamma-Gamma fit: each purchase ~ gamma(p, nu), nu ~ gamma(q, gamma); the
    maximised log-likelihood, the customers it was fitted on (those with a repeat
    purchase and its spend), and whether it converged. With q <= 1 the population's mean
    spend is infinite, and the fit says it did not converge."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str = ""
    fitted_at: datetime | None = None

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per purchase, p gamma / (q - 1) (q > 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else math.inf


GAMMA_GAMMA_PARAMETERS = ("p", "q", "gamma")


def _spenders(histories: Sequence[PurchaseHistory]) -> tuple[Vector, Vector]:
    chosen = [h for h in histories if h.average_repeat_spend is not None]
    x = np.fromiter((h.frequency for h in chosen), np.float64, len(chosen))
    spend = np.fromiter((h.average_repeat_spend or 0.0 for h in chosen), np.float64, len(chosen))
    return x, spend


def _gamma_gamma_terms(p: float, q: float, gamma: float, x: Vector, spend: Vector) -> Vector:
    """The log of the marginal density of a customer's average spend z given x purchases
    (Fader and Hardie 2013, the distribution of z-bar after integrating nu out):

        f(z | p, q, gamma; x) = G(px+q) / (G(px) G(q)) * gamma^q z^(px-1) x^(px)
                                / (gamma + x z)^(px+q)
    """
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(spend)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * spend)
    )


def gamma_gamma_log_likelihood(
    p: float, q: float, gamma: float, histories: Sequence[PurchaseHistory]
) -> float:
    """The sample log-likelihood over the customers with a repeat spend."""
    return float(np.sum(_gamma_gamma_terms(p, q, gamma, *_spenders(histories))))


def _gamma_gamma_total(theta: Vector, x: Vector, spend: Vector) -> float:
    p, q, gamma = np.exp(theta)
    return float(np.sum(_gamma_gamma_terms(p, q, gamma, x, spend)))


def _gamma_gamma_objective(theta: Vector, x: Vector, spend: Vector) -> tuple[float, Vector]:
    p, q, gamma = np.exp(theta)
    px = p * x
    terms = _gamma_gamma_terms(p, q, gamma, x, spend)
    total = np.log(gamma + x * spend)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(spend) + np.log(x) - total)
    d_q = digamma(px + q) - digamma(q) + np.log(gamma) - total
    d_gamma = q / gamma - (px + q) / (gamma + x * spend)
    gradient = np.array([d_p.mean() * p, d_q.mean() * q, d_gamma.mean() * gamma])
    return -float(terms.mean()), -gradient


def fit_gamma_gamma(
    histories: Sequence[PurchaseHistory],
    *,
    minimum_customers: int = MINIMUM_SPENDERS,
    start: GammaGammaFit | None = None,
    fitted_at: datetime | None = None,
) -> GammaGammaFit | NotEnoughData:
    """Maximum-likelihood Gamma-Gamma parameters over the customers with a repeat
    purchase and its spend (the others tell nothing about spend per repeat purchase and
    are left out). The model assumes spend does not depend on how often a customer buys;
    `NotEnoughData` below `minimum_customers` such customers."""
    x, spend = _spenders(histories)
    if len(x) < minimum_customers:
        return NotEnoughData(
            GAMMA_GAMMA, "customers with a repeat spend", len(x), minimum_customers
        )
    if start is not None and start.converged:
        initial = np.log([start.p, start.q, start.gamma])
    else:
        initial = np.array([0.0, 0.0, math.log(float(spend.mean()))])
    optimum = maximise(
        lambda theta: _gamma_gamma_objective(theta, x, spend),
        initial,
        log_likelihood=lambda theta: _gamma_gamma_total(theta, x, spend),
        names=GAMMA_GAMMA_PARAMETERS,
    )
    p, q, gamma = (float(v) for v in np.exp(optimum.parameters))
    converged, message = optimum.converged, optimum.message
    if converged and q <= 1:
        converged = False
        message = f"q = {q:.3f} <= 1: the population's mean spend would be infinite"
    return GammaGammaFit(
        p=p,
        q=q,
        gamma=gamma,
        log_likelihood=optimum.log_likelihood,
        customers=len(x),
        converged=converged,
        message=message,
        fitted_at=fitted_at,
    )


def expected_average_spend(fit: GammaGammaFit, histories: Sequence[PurchaseHistory]) -> Vector:
    """Each customer's expected spend per purchase given their repeat purchases (the
    conditional expectation of the Gamma-Gamma model):

        E[Z | p, q, gamma; z, x] = p (gamma + x z) / (p x + q - 1)
          = (q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * z

    a weighted mean of the population's mean and the customer's own average, the more
    purchases the more weight on their own. A customer without a repeat spend gets the
    population's mean p gamma / (q - 1)."""
    x, spend = _spenders(histories)
    own = fit.p * (fit.gamma + x * spend) / (fit.p * x + fit.q - 1)
    out = np.full(len(histories), fit.mean_spend, dtype=np.float64)
    out[[h.average_repeat_spend is not None for h in histories]] = own
    return out
