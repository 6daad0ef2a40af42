"""Named places where a test can make the process die on purpose.

`CRM_FAILPOINTS=name[,name...]` makes the process exit abruptly (as if killed) the first
time it passes a named place. Tests use it to kill a consumer at a precise moment, such
as after its database commit and before its offset commit.
"""

import os
import sys

_active = frozenset(filter(None, os.environ.get("CRM_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    if name in _active:
        sys.stderr.write(f"failpoint {name} reached: exiting abruptly\n")
        sys.stderr.flush()
        os._exit(137)
