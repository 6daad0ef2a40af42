"""Demo data for an empty directory: customers, then each service's own demo data,
then a purchase and survey history on the inbound topics, a sales history for the win
model, the models fitted on them, and deals closed afterwards, which the ledger of
predictions settles. A failure is a warning: the CRM runs all the same."""

import importlib
from collections.abc import Sequence

from local.up.output import RunningService, say

DEMO_LOADERS = {"sales": "local.demo.sales", "interaction": "local.demo.interaction"}
"""Each module's `load(service_url, customer_ids, token)` adds that service's demo data."""


async def load_demo_data(
    services: Sequence[RunningService], secret: str, bootstrap_servers: str
) -> None:
    """Load the demo data, if the customer directory is empty."""
    import httpx

    from local.demo.customers import DEFAULT_COUNT, DemoLoadError, directory_is_empty, load_demo
    from local.tokens import mint

    url = next(s.spec.url for s in services if s.spec.name == "customer")
    token = mint(secret, "administrator", "demo-loader")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
            if not await directory_is_empty(url, client):
                say("The customer directory has data already: not loading demo customers")
                return
            say(f"Loading {DEFAULT_COUNT} demo customers (skip with --no-demo)")
            ids = await load_demo(url, DEFAULT_COUNT, client=client)
        say(f"Loaded {len(ids)} demo customers")
    except (DemoLoadError, httpx.HTTPError) as error:
        say(f"warning: could not load the demo customers: {error}", error=True)
        return
    for service in services:
        loader = DEMO_LOADERS.get(service.spec.name)
        if loader is None:
            continue
        try:
            await importlib.import_module(loader).load(service.spec.url, ids, token)
            say(f"Loaded the {service.spec.name} demo data")
        except (DemoLoadError, httpx.HTTPError, ValueError) as error:
            say(f"warning: could not load the {service.spec.name} demo: {error}", error=True)
    await _publish_demo_history(services, secret, bootstrap_servers, ids)


async def _publish_demo_history(
    services: Sequence[RunningService], secret: str, bootstrap_servers: str, customer_ids: list[str]
) -> None:
    """Purchases and survey answers as a shop and a survey tool publish them."""
    from aiokafka.errors import KafkaError

    from local.demo.history import publish

    try:
        sent = await publish(bootstrap_servers, customer_ids)
    except KafkaError as error:
        say(f"warning: could not publish the demo purchase history: {error}", error=True)
        return
    say(f"Published {sent} demo purchases and survey answers on the inbound topics")
    await _fit_demo_models(services, secret, customer_ids)


async def _fit_demo_models(
    services: Sequence[RunningService], secret: str, customer_ids: list[str]
) -> None:
    """A sales history for the win model, the models fitted on the demo history once it
    is folded, and deals closed afterwards, whose predictions the ledger settles."""
    import httpx

    from local.demo import pipeline
    from local.demo.analytics import fit_models, settled_predictions
    from local.demo.customers import DemoLoadError
    from local.tokens import mint

    urls = {s.spec.name: s.spec.url for s in services}
    if "analytics" not in urls:
        return
    token = mint(secret, "administrator", "demo-loader")
    deals = pipeline.Pipeline()
    if "sales" in urls:
        try:
            deals = await pipeline.load(urls["sales"], customer_ids, token)
            say(f"Loaded {deals.closed} closed and {len(deals.open)} open demo deals")
        except (httpx.HTTPError, RuntimeError, ValueError) as error:
            say(f"warning: could not load the demo deals: {error}", error=True)
    try:
        say(await fit_models(urls["analytics"], token, closed_deals=deals.closed))
        if deals.open:
            closed = await pipeline.close_after_fit(urls["sales"], token, deals)
            say(await settled_predictions(urls["analytics"], token, closed))
    except (DemoLoadError, httpx.HTTPError, RuntimeError) as error:
        say(f"warning: could not fit the models or settle the demo deals: {error}", error=True)
