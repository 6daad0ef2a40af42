"""Runs a CRM service as a child process: the one way `crm up`, the tests and the
benchmarks start `python -m services.<name>`.

`service_command` and `service_environment` say how a service is started;
`ServiceProcess` starts one with its output in a log file (tests, benchmarks), and
`crm up` starts each with its output copied to the terminal.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from contracts.signing import new_signing_seed, public_key_of
from local.embedded.broker import SERVICE_SETTINGS as BROKER_SETTINGS
from local.embedded.processes import free_port, spawn
from services import SERVICE_NAMES
from services.runtime.http.authentication import mint_token, new_secret
from services.runtime.privacy.keyring import new_master_key

REPO = Path(__file__).resolve().parents[1]

KEY_VARIABLES = (
    "CRM_AUTH_SECRET",
    "CRM_AUTH_SECRET_FILE",
    "CRM_AUTH_PUBLIC_KEY",
    "CRM_AUTH_PUBLIC_KEY_FILE",
    "CRM_AUTH_JWKS_FILE",
    "CRM_KEYRING_MASTER_KEY",
    "CRM_KEYRING_MASTER_KEY_FILE",
    "CRM_SIGNING_KEY",
    "CRM_SIGNING_KEY_FILE",
    "CRM_SIGNING_TRUSTED_KEYS",
    "CRM_SIGNING_TRUSTED_KEYS_FILE",
)
"""Keys a launched service never inherits: the launcher gives it its own."""


@functools.cache
def session_master_key() -> str:
    """The keyring master key of the services one test run or tool starts (made on first
    use): they share the customers' keys, so they share the key that wraps them."""
    return new_master_key()


@functools.cache
def session_signing_key(service: str) -> str:
    """The signing key of `service` in the services one test run or tool starts."""
    return new_signing_seed()


def session_trusted_keys() -> str:
    """Every service's public key in this run (`CRM_SIGNING_TRUSTED_KEYS`)."""
    return json.dumps({name: [public_key_of(session_signing_key(name))] for name in SERVICE_NAMES})


def session_keys(service: str) -> dict[str, str]:
    """The keyring and signing settings of `service` in this run (tokens aside)."""
    return {
        "CRM_KEYRING_MASTER_KEY": session_master_key(),
        "CRM_SIGNING_KEY": session_signing_key(service),
        "CRM_SIGNING_TRUSTED_KEYS": session_trusted_keys(),
    }


def command_environment(database_url: str, bootstrap_servers: str) -> dict[str, str]:
    """The environment of a `crm` command (`crm rebuild`...) run on the database and broker
    of services this run started: this process's, without its keys, plus where those are
    and the keys those services share."""
    given = {
        "CRM_DATABASE_URL": database_url,
        "CRM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "CRM_KEYRING_MASTER_KEY": session_master_key(),
        "CRM_SIGNING_TRUSTED_KEYS": session_trusted_keys(),
    }
    # without this process's keys, whichever form (`crm` itself reads `.crm/crm.env`,
    # whose file forms beside these would be refused as ambiguous), and without that file
    inherited = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return {**inherited, **given, "CRM_ENV_FILE": os.devnull}


def service_command(name: str) -> list[str]:
    return [sys.executable, "-m", f"services.{name}"]


def service_environment(
    name: str,
    *,
    port: int,
    database_url: str,
    bootstrap_servers: str,
    keys: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of service `name`: what the embedded broker needs
    (`broker.SERVICE_SETTINGS`), then this process's environment without its keys, plus
    where the database and broker are, the service's port, `keys` (token and keyring
    settings) and `extra`."""
    inherited = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return {
        **BROKER_SETTINGS,
        **inherited,
        "CRM_DATABASE_URL": database_url,
        "CRM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        f"CRM_{name.upper()}_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **keys,
        **(extra or {}),
    }


class ServiceProcess:
    """`python -m services.<name>` with its own port, database and broker.

    It verifies bearer tokens signed with `auth_secret` (a new one unless given);
    `client(role=...)` answers an HTTP client that sends such a token. Its keyring and
    signing keys are this run's (`session_keys`) unless `keys` names others (a replica
    beside the services of `crm up` takes theirs, by file).
    """

    def __init__(
        self,
        name: str,
        *,
        database_url: str,
        bootstrap_servers: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
        auth_secret: str | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.auth_secret = auth_secret or new_secret()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = service_environment(
            name,
            port=self.port,
            database_url=database_url,
            bootstrap_servers=bootstrap_servers,
            keys={
                "CRM_AUTH_SECRET": self.auth_secret,
                **(session_keys(name) if keys is None else keys),
            },
            extra=extra_env,
        )
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def token(self, role: str = "administrator", subject: str | None = None) -> str:
        """A bearer token this service accepts, for `subject` (default: the role's name)."""
        return mint_token(self.auth_secret, subject or role, [role])

    def headers(self, role: str = "administrator", subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject)}"}

    def client(
        self, role: str = "administrator", subject: str | None = None, **options: Any
    ) -> httpx.AsyncClient:
        """An HTTP client of this service that authenticates as `subject` with `role`."""
        headers = {**options.pop("headers", {}), **self.headers(role, subject)}
        return httpx.AsyncClient(base_url=self.url, headers=headers, **options)

    def start(self, *, wait_ready: bool = True, timeout: float = 60.0) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = spawn(
            service_command(self.name),
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready within {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""
