"""Runs a CRM service as a child process: for tests, benchmarks and local tooling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from services.runtime.embedded import free_port, spawn
from services.runtime.keyring import new_master_key
from services.runtime.security import mint_token, new_secret

SESSION_MASTER_KEY = new_master_key()
"""The keyring master key of the services one test run or tool starts: they share the
customers' keys, so they share the key that wraps them."""

REPO = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """`python -m services.<name>` with its own port, database and broker.

    It verifies bearer tokens signed with `auth_secret` (a new one unless given);
    `client(role=...)` answers an HTTP client that sends such a token.
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
    ) -> None:
        self.name = name
        self.auth_secret = auth_secret or new_secret()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CRM_DATABASE_URL": database_url,
            "CRM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            f"CRM_{name.upper()}_PORT": str(self.port),
            "CRM_AUTH_SECRET": self.auth_secret,
            "CRM_KEYRING_MASTER_KEY": SESSION_MASTER_KEY,
            **(extra_env or {}),
        }
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
            [sys.executable, "-m", f"services.{self.name}"],
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
