"""Reading a running service's Prometheus metrics in tests."""

from __future__ import annotations

from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]
"""Sample name -> (labels, value) of every sample of that name."""


async def scrape(client: httpx.AsyncClient) -> Samples:
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families((await client.get("/metrics")).text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )
