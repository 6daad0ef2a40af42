"""Bearer tokens for tests: every service a test starts (`infra.service(...)`) verifies
tokens signed with `TEST_SECRET`; `service.client(role=...)` is the one-line way to an
authenticated client, `token(...)` and `bearer(...)` mint one by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

from local.launcher import session_signing_key, session_trusted_keys
from services.runtime.http.authentication import mint_token

TEST_SECRET = "test-secret-of-the-crm-test-suite-0123456789"
"""The HS256 secret of every service the tests start (never used outside tests)."""

TEST_MASTER_KEY = "dGVzdC1tYXN0ZXIta2V5LW9mLXRoZS1jcm0tdGVzdHM="
"""The keyring master key of the apps unit tests build (32 bytes, base64; tests only)."""


def app_keys(service: str = "customer") -> dict[str, Any]:
    """The key settings of an app a test builds in its own process as `service`: the
    token secret, the keyring master key, and the run's signing keys (the same the
    launcher gives the services it starts)."""
    return {
        "auth_secret": TEST_SECRET,
        "keyring_master_key": TEST_MASTER_KEY,
        "signing_key": session_signing_key(service),
        "signing_trusted_keys": session_trusted_keys(),
    }


def token(
    role: str = "administrator",
    subject: str | None = None,
    *,
    lifetime: timedelta = timedelta(hours=1),
) -> str:
    return mint_token(TEST_SECRET, subject or role, [role], lifetime=lifetime)


def bearer(role: str = "administrator", subject: str | None = None) -> dict[str, str]:
    """The Authorization header of a token for `subject` with `role`."""
    return {"Authorization": f"Bearer {token(role, subject)}"}


def forged_token(header: Any, claims: Any, secret: str = TEST_SECRET) -> str:
    """A token signed with `secret` (HS256) whatever its header and claims hold: a JWT
    library refuses to write most of the odd ones a caller can send."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).decode().rstrip("=")

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def valid_claims(subject: str = "someone", role: str = "administrator") -> dict[str, Any]:
    """The claims of a token the test services accept, for `forged_token` to vary."""
    now = int(time.time())
    return {"sub": subject, "roles": [role], "iss": "crm", "aud": "crm", "iat": now,
            "exp": now + 3600}  # fmt: skip
