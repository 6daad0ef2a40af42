"""`crm token`: bearer tokens for the local CRM, and the signing secret of `crm up`.

`crm up` keeps an HS256 secret in `DIR/auth-secret` (created on first use, mode 0600,
kept by `--fresh` so printed tokens stay valid), passes its path to the services as
`CRM_AUTH_SECRET_FILE`, prints a token per role and writes them to `DIR/tokens.env`.
`crm token --role manager` mints another one from the same secret; `crm demo` and
`crm bench --url` use `--token`, else `CRM_TOKEN`, else an administrator token minted
from the local secret.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

SECRET_FILE = "auth-secret"
MASTER_KEY_FILE = "keyring-master-key"
TOKENS_FILE = "tokens.env"
DEFAULT_DATA_DIR = Path(".crm")
DEMO_LIFETIME = timedelta(days=7)
"""How long the tokens `crm up` prints stay valid: a demo week."""

DEMO_SUBJECTS = {
    "support_agent": "zhou.min",
    "sales_rep": "李娜",  # owns demo opportunities, so this token may work them
    "manager": "wang.jun",
    "administrator": "admin",
    "integration": "erp-sync",
}
"""Who each printed token speaks for."""


class TokenError(Exception):
    """No token can be had; the message says what to do."""


def local_secret(data_dir: Path, *, create: bool) -> str | None:
    """The signing secret kept in `data_dir` (made now if `create` and missing)."""
    from services.runtime.http.authentication import new_secret

    return kept_secret(data_dir / SECRET_FILE, new_secret if create else None)


def local_master_key(data_dir: Path) -> Path:
    """The file holding the keyring master key of `crm up` (made on first use).

    Losing it makes every sealed personal value of the local data unreadable, as if all
    customers had been erased; `crm up --fresh` keeps it."""
    from services.runtime.privacy.keyring import new_master_key

    path = data_dir / MASTER_KEY_FILE
    kept_secret(path, new_master_key)
    return path


SIGNING_DIR = "signing"
TRUSTED_KEYS_FILE = "trusted-keys.json"


def local_signing_keys(data_dir: Path, services: Iterable[str]) -> dict[str, Path]:
    """The signing key file of each service of `crm up` (made on first use), and beside
    them `trusted-keys.json`, every service's public key, which each service checks the
    others' topics with. Returned by service name, with the trusted keys as `"trusted"`."""
    from contracts.signing import new_signing_seed, public_key_of

    folder = data_dir / SIGNING_DIR
    files = {name: folder / f"{name}.key" for name in services}
    publics = {}
    for name, path in files.items():
        seed = kept_secret(path, new_signing_seed)
        assert seed is not None
        publics[name] = [public_key_of(seed)]
    trusted = folder / TRUSTED_KEYS_FILE
    trusted.write_text(json.dumps(publics, indent=2) + "\n")
    return {**files, "trusted": trusted}


def kept_secret(path: Path, make: Callable[[], str] | None) -> str | None:
    """The secret in `path`, else a new one from `make` written there (mode 0600)."""
    if path.exists():
        return path.read_text().strip()
    if make is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = make()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def mint(
    secret: str, role: str, subject: str | None = None, lifetime: timedelta = DEMO_LIFETIME
) -> str:
    from services.runtime.http.authentication import mint_token

    return mint_token(
        secret,
        subject or DEMO_SUBJECTS.get(role, role),
        [role],
        lifetime=lifetime,
        issuer=os.environ.get("CRM_AUTH_ISSUER", "crm"),
        audience=os.environ.get("CRM_AUTH_AUDIENCE", "crm"),
    )


def role_tokens(secret: str) -> dict[str, str]:
    """A token per role, for the people trying the CRM."""
    return {role: mint(secret, role) for role in DEMO_SUBJECTS}


def write_tokens_file(data_dir: Path, tokens: dict[str, str]) -> Path:
    path = data_dir / TOKENS_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("# bearer tokens of the local CRM, one per role: source this file\n")
        for role, token in tokens.items():
            file.write(f"TOKEN_{role.upper()}={token}\n")
        file.write(f"TOKEN={tokens['administrator']}\n")
    return path


SETTINGS_FILE = "crm.env"


def write_settings_file(data_dir: Path, settings: dict[str, str]) -> Path:
    """`DIR/crm.env`: the settings of the running local CRM, for the `crm` commands."""
    path = data_dir / SETTINGS_FILE
    lines = ["# the settings of the CRM `crm up` runs; the crm commands read this file\n"]
    lines += [f"{name}={value}\n" for name, value in settings.items()]
    path.write_text("".join(lines))
    return path


def cli_token(explicit: str | None, data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """The token a command-line tool sends: `--token`, `CRM_TOKEN`, or an administrator
    token from the local `crm up` secret."""
    token = explicit or os.environ.get("CRM_TOKEN")
    if token:
        return token
    secret = local_secret(data_dir, create=False)
    if secret is None:
        raise TokenError(
            f"no token: pass --token, set CRM_TOKEN, or run `crm up` here (it keeps its "
            f"signing secret in {data_dir / SECRET_FILE})"
        )
    return mint(secret, "administrator", "crm-cli", timedelta(hours=1))


# Subcommand ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print a bearer token for the local CRM",
        description="Mint a bearer token signed with the secret `crm up` keeps in its data "
        'directory, for curl and scripts: curl -H "Authorization: Bearer $(crm token)" ...',
    )
    parser.add_argument("--role", choices=list(DEMO_SUBJECTS), default="administrator")
    parser.add_argument("--subject", help="who the token speaks for (default: per role)")
    parser.add_argument("--hours", type=float, default=8.0, help="lifetime (default: 8)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    secret = local_secret(Path(args.data_dir).expanduser(), create=False)
    if secret is None:
        print(
            f"crm token: error: no secret in {args.data_dir / SECRET_FILE}; run `crm up` first",
            file=sys.stderr,
        )
        return 1
    if args.hours <= 0:
        print("crm token: error: --hours must be positive", file=sys.stderr)
        return 2
    print(mint(secret, args.role, args.subject, timedelta(hours=args.hours)))
    return 0
