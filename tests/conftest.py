"""Fixtures of every test folder, and the markers each folder gives its tests.

- `postgres`: an embedded PostgreSQL for the session (one per xdist worker).
- `infra`: a new Kafka-protocol broker with every topic, and a new empty database, for one
  test (`tests.support.infrastructure.Infrastructure`).

Tests under `tests/integration/` are marked `integration`, those under `tests/e2e/` `e2e`,
those under `tests/faults/` `faults` (`-m "not e2e and not faults"` leaves out the slow
ones); the folder decides, not a line in each module.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from local.embedded.postgres import EmbeddedPostgres
from tests.support.infrastructure import Infrastructure, started_infrastructure

TESTS = Path(__file__).parent

# The settings a running `crm up` leaves in `.crm/crm.env` are for the `crm` commands of
# a person at the terminal, not for the tests: commands run in the test process read none.
os.environ["CRM_ENV_FILE"] = os.devnull
MARKED_FOLDERS = {
    "integration": TESTS / "integration",
    "e2e": TESTS / "e2e",
    "faults": TESTS / "faults",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker, folder in MARKED_FOLDERS.items():
            if item.path.is_relative_to(folder):
                item.add_marker(marker)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def infra(postgres: EmbeddedPostgres, tmp_path: Path) -> AsyncIterator[Infrastructure]:
    """A new broker with every topic, and a new empty database, for one test."""
    async for infrastructure in started_infrastructure(postgres, tmp_path):
        yield infrastructure
