"""Who is calling: bearer tokens (JWT), verified against the configured key (HS256
secret, RS256/ES256 public key or a JWKS file) with their expiry, issuer and audience,
and minted for `crm up`, tests and tools. A token's `sub` becomes the actor of the
commands; its `roles` claim names roles of `ROLE_PERMISSIONS` (`roles.py`).

Tokens are checked before they are trusted: a header that is not an object, an `alg` or
`kid` that is not text, any `crit` member (no extension is understood), and `exp`, `nbf`
or `iat` claims that are not finite numbers answer 401 saying which; no malformed token
reaches a library that might fail on it with a server error.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.runtime.http.parameters import CONTROL_CHARACTERS
from services.runtime.http.roles import Principal, permissions_of
from services.runtime.settings import ServiceSettings


class Unauthenticated(Exception):
    """No token, or one that does not verify; `str(error)` says which."""

    def __init__(self, message: str, *, token_given: bool = True) -> None:
        super().__init__(message)
        self.token_given = token_given


class SecurityConfigError(Exception):
    """The settings name no usable key; the message says what to set."""


# Tokens ---------------------------------------------------------------------------------

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class TokenVerifier:
    keys: dict[str | None, Any]
    """Verification keys by `kid`; `None` for the one key used when a token names none."""
    algorithms: tuple[str, ...]
    issuer: str
    audience: str
    leeway: int = 30

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TokenVerifier:
        sources = {
            "CRM_AUTH_SECRET": settings.auth_secret,
            "CRM_AUTH_SECRET_FILE": settings.auth_secret_file,
            "CRM_AUTH_PUBLIC_KEY": settings.auth_public_key,
            "CRM_AUTH_PUBLIC_KEY_FILE": settings.auth_public_key_file,
            "CRM_AUTH_JWKS_FILE": settings.auth_jwks_file,
        }
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise SecurityConfigError(
                "bearer tokens need exactly one verification key: set one of "
                + ", ".join(sources)
                + (f" (set: {', '.join(given)})" if given else " (none is set)")
            )
        issuer, audience = settings.auth_issuer, settings.auth_audience
        leeway = settings.auth_leeway_seconds
        if settings.auth_secret is not None or settings.auth_secret_file is not None:
            secret = (
                settings.auth_secret.get_secret_value()
                if settings.auth_secret is not None
                else _read(settings.auth_secret_file, "CRM_AUTH_SECRET_FILE").strip()
            )
            if len(secret) < MIN_SECRET_LENGTH:
                raise SecurityConfigError(
                    f"the HS256 secret must be at least {MIN_SECRET_LENGTH} characters long"
                )
            return cls(
                keys={None: secret.encode()},
                algorithms=("HS256",),
                issuer=issuer,
                audience=audience,
                leeway=leeway,
            )
        if settings.auth_jwks_file is not None:
            text = _read(settings.auth_jwks_file, "CRM_AUTH_JWKS_FILE")
            try:
                key_set = jwt.PyJWKSet.from_json(text)
            except (jwt.PyJWKError, ValueError) as exc:
                raise SecurityConfigError(
                    f"CRM_AUTH_JWKS_FILE is not a usable JWKS: {exc}"
                ) from None
            keys: dict[str | None, Any] = {k.key_id: k.key for k in key_set.keys}
            if len(key_set.keys) == 1:
                keys[None] = key_set.keys[0].key
            return cls(
                keys=keys,
                algorithms=("RS256", "ES256"),
                issuer=issuer,
                audience=audience,
                leeway=leeway,
            )
        pem = (
            settings.auth_public_key.get_secret_value()
            if settings.auth_public_key is not None
            else _read(settings.auth_public_key_file, "CRM_AUTH_PUBLIC_KEY_FILE")
        )
        try:
            public_key = load_pem_public_key(pem.encode())
        except ValueError:
            raise SecurityConfigError("the public key is not a PEM public key") from None
        if isinstance(public_key, rsa.RSAPublicKey):
            algorithms: tuple[str, ...] = ("RS256",)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            algorithms = ("ES256",)
        else:
            raise SecurityConfigError("the public key must be an RSA or EC (P-256) key")
        return cls(
            keys={None: public_key},
            algorithms=algorithms,
            issuer=issuer,
            audience=audience,
            leeway=leeway,
        )

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise Unauthenticated(f"the bearer token's header is invalid: {exc}") from None
        kid = _checked_header(header)
        key = self.keys.get(kid) or self.keys.get(None)
        if key is None:
            raise Unauthenticated(f"the bearer token names an unknown key {kid!r:.60}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    # checked below, once they are known to be numbers
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"the bearer token is not for audience {self.audience!r}"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the bearer token was not issued by {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the bearer token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated(
                f"the bearer token must be signed with {' or '.join(self.algorithms)}"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the bearer token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the bearer token is invalid: {exc}") from None
        except (ValueError, TypeError, OverflowError):
            raise Unauthenticated("the bearer token's claims are malformed") from None
        self._check_times(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated("the bearer token's subject is empty")
        if CONTROL_CHARACTERS.search(subject):
            raise Unauthenticated("the bearer token's subject holds a control character")
        raw_roles = claims.get("roles", claims.get("role", []))
        if isinstance(raw_roles, str):
            raw_roles = [raw_roles]
        if not isinstance(raw_roles, list):
            raise Unauthenticated("the bearer token's roles claim must be a list of names")
        if not all(isinstance(r, str) for r in raw_roles):
            raise Unauthenticated("the bearer token's roles claim must be a list of names")
        roles = tuple(raw_roles)
        return Principal(
            subject=subject.strip()[:200],
            roles=roles,
            permissions=permissions_of(roles),
        )

    def _check_times(self, claims: dict[str, Any]) -> None:
        """`exp` (required), `nbf` and `iat` are finite numbers; `exp` has not passed and
        `nbf` has come, give or take the leeway."""
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if name not in claims:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Unauthenticated(f"the bearer token's {name!r} claim must be a number")
            if not math.isfinite(value) or abs(value) > MAX_TIME_CLAIM:
                raise Unauthenticated(f"the bearer token's {name!r} claim is out of range")
        now = time.time()
        if claims["exp"] + self.leeway <= now:
            raise Unauthenticated("the bearer token has expired")
        if "nbf" in claims and claims["nbf"] - self.leeway > now:
            raise Unauthenticated("the bearer token is not valid yet")


MAX_TIME_CLAIM = 253_402_300_799
"""The last second of year 9999: a time claim beyond it is no time at all."""


def _checked_header(header: Any) -> str | None:
    """The `kid` of a token header fit to be read; 401 for one that is not."""
    if not isinstance(header, dict):
        raise Unauthenticated("the bearer token's header is not a JSON object")
    if not isinstance(header.get("alg"), str):
        raise Unauthenticated("the bearer token's header names no algorithm")
    if "crit" in header:
        raise Unauthenticated("the bearer token's header has a `crit` member; none is understood")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Unauthenticated("the bearer token's `kid` must be text")
    for name in ("typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise Unauthenticated(f"the bearer token's `{name}` must be text")
    return kid


def _read(path: Path | None, variable: str) -> str:
    assert path is not None
    try:
        return path.read_text()
    except OSError as exc:
        raise SecurityConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None


def mint_token(
    key: Any,
    subject: str,
    roles: Iterable[str],
    *,
    lifetime: timedelta = timedelta(hours=1),
    issuer: str = "crm",
    audience: str = "crm",
    algorithm: str = "HS256",
    key_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """A signed token for `subject` with `roles` (for `crm up`, tests and tools)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": subject,
        "roles": list(roles),
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_hex(8),
    }
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def new_secret() -> str:
    """A fresh HS256 secret."""
    return secrets.token_urlsafe(48)
