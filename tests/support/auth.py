"""Bearer tokens for tests: every service a test starts (`infra.service(...)`) verifies
tokens signed with `TEST_SECRET`; `service.client(role=...)` is the one-line way to an
authenticated client, `token(...)` and `bearer(...)` mint one by hand."""

from __future__ import annotations

from datetime import timedelta

from services.runtime.http.security import mint_token

TEST_SECRET = "test-secret-of-the-crm-test-suite-0123456789"
"""The HS256 secret of every service the tests start (never used outside tests)."""

TEST_MASTER_KEY = "dGVzdC1tYXN0ZXIta2V5LW9mLXRoZS1jcm0tdGVzdHM="
"""The keyring master key of the apps unit tests build (32 bytes, base64; tests only)."""


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
