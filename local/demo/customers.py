"""`crm demo`: load plausible, deterministic demo customers through the customer API.

`demo_customers()` (`local.demo.customer_generator`) is a pure function: the same count
and seed always give the same request bodies (Chinese and English companies and people
across China, with industries, regions, owners, tags and classifications spread the way a
real book of business looks). `load_demo()` registers them with `POST /customers` and
then tags every fourth one with `POST /customers/{id}/tags`, so the demo history holds
more than registrations.
"""

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local.demo.customer_generator import DEFAULT_SEED, demo_customers
from local.demo.duplicates import demo_duplicates

if TYPE_CHECKING:
    import httpx

DEFAULT_COUNT = 60
FOLLOW_UP_TAG = "follow-up-2026q3"


def default_customer_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('CRM_CUSTOMER_PORT', '8001')}"


# Loader -------------------------------------------------------------------------------


class DemoLoadError(RuntimeError):
    """The customer service refused a demo request."""


def _check(response: "httpx.Response", what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise DemoLoadError(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def directory_is_empty(
    customer_url: str, client: "httpx.AsyncClient | None" = None, token: str | None = None
) -> bool:
    """Whether the customer directory lists no customer at all."""
    import httpx

    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=30, headers=_bearer(token))
            )
        response = await client.get(f"{customer_url.rstrip('/')}/customers", params={"limit": 1})
        return not _check(response, "GET /customers")["items"]


async def load_demo(
    customer_url: str,
    count: int = DEFAULT_COUNT,
    *,
    seed: int = DEFAULT_SEED,
    client: "httpx.AsyncClient | None" = None,
    progress: Callable[[int, int], None] | None = None,
    token: str | None = None,
) -> list[str]:
    """Register `demo_customers(count, seed)`, then a few deliberate duplicates of some
    of them (`demo_duplicates`); returns the ids of the former in order.

    Sends `token` when it opens its own client (a given client carries its own)."""
    import httpx

    base = customer_url.rstrip("/")
    ids: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=30, headers=_bearer(token))
            )
        customers = demo_customers(count, seed)
        for index, body in enumerate(customers):
            created = _check(
                await client.post(f"{base}/customers", json=body),
                f"POST /customers for {body['name']}",
            )
            customer_id = str(created["customer_id"])
            if index % 4 == 1:
                _check(
                    await client.post(
                        f"{base}/customers/{customer_id}/tags",
                        json={"tag": FOLLOW_UP_TAG},
                        headers={"If-Match": f'"{created["version"]}"'},
                    ),
                    f"POST /customers/{customer_id}/tags",
                )
            ids.append(customer_id)
            if progress is not None:
                progress(index + 1, len(customers))
        for _, body in demo_duplicates(customers):  # for the queue of possible duplicates
            _check(
                await client.post(f"{base}/customers", json=body),
                f"POST /customers for {body['name']} (a deliberate duplicate)",
            )
    return ids


# Subcommand ---------------------------------------------------------------------------


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "demo",
        help="load demo customers through the customer service API",
        description="Register deterministic demo customers (Chinese and English companies "
        "and consumers) through the customer service's HTTP API. Loads them every time it "
        "runs; `crm up` loads them only into an empty directory.",
    )
    parser.add_argument(
        "--customer-url",
        default=default_customer_url(),
        help="customer service base URL (default: %(default)s, port from CRM_CUSTOMER_PORT)",
    )
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help="customers to register (default: 60)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed of the generator (default: 7)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token allowed to register customers (default: CRM_TOKEN, else an "
        "administrator token from the secret `crm up` keeps in ./.crm)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import httpx

    from local.tokens import TokenError, cli_token

    if args.count < 0:
        print("crm demo: error: --count must not be negative", file=sys.stderr)
        return 2
    try:
        token = cli_token(args.token)
    except TokenError as error:
        print(f"crm demo: error: {error}", file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"  {done}/{total} customers registered", flush=True)

    try:
        ids = asyncio.run(
            load_demo(args.customer_url, args.count, seed=args.seed, progress=progress, token=token)
        )
    except httpx.TransportError as error:
        print(
            f"crm demo: error: cannot reach the customer service at {args.customer_url} "
            f"({error!r}); is `crm up` running?",
            file=sys.stderr,
        )
        return 1
    except DemoLoadError as error:
        print(f"crm demo: error: {error}", file=sys.stderr)
        return 1
    print(f"Loaded {len(ids)} demo customers into {args.customer_url}.")
    return 0
