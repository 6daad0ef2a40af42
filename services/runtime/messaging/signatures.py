"""The keys a service signs its topic with and checks the other services' topics with,
from its settings (`contracts.signing` says what a signature is)."""

from __future__ import annotations

from contracts.signing import Signer, TrustedKeys, Verifier
from services.runtime.settings import ServiceSettings, read_secret


class SigningConfigError(ValueError):
    """The signing keys are missing or unusable; the message names the setting."""


def _one_of(value: str | None, file_value: str | None, names: tuple[str, str]) -> str:
    if (value is None) == (file_value is None):
        raise SigningConfigError(
            "messages on the internal topics are signed: set exactly one of " + ", ".join(names)
        )
    text = value if value is not None else file_value
    assert text is not None
    return text


def signer_from(settings: ServiceSettings) -> Signer:
    """This service's signing key; `SigningConfigError` when none or a bad one is set."""
    key = settings.signing_key.get_secret_value() if settings.signing_key is not None else None
    from_file = (
        read_secret(settings.signing_key_file, "CRM_SIGNING_KEY_FILE")
        if settings.signing_key_file is not None
        else None
    )
    seed = _one_of(key, from_file, ("CRM_SIGNING_KEY", "CRM_SIGNING_KEY_FILE"))
    try:
        return Signer.from_base64(seed)
    except ValueError as exc:
        raise SigningConfigError(f"the signing key: {exc}") from None


def verifier_from(settings: ServiceSettings) -> Verifier:
    """A verifier of the internal topics with the configured public keys."""
    from_file = (
        read_secret(settings.signing_trusted_keys_file, "CRM_SIGNING_TRUSTED_KEYS_FILE")
        if settings.signing_trusted_keys_file is not None
        else None
    )
    text = _one_of(
        settings.signing_trusted_keys,
        from_file,
        ("CRM_SIGNING_TRUSTED_KEYS", "CRM_SIGNING_TRUSTED_KEYS_FILE"),
    )
    try:
        return Verifier(TrustedKeys.from_json(text))
    except ValueError as exc:
        raise SigningConfigError(f"CRM_SIGNING_TRUSTED_KEYS: {exc}") from None
