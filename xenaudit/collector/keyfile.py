"""Whether a private key file is fit to use: OpenSSH's permission rule.

Kept apart from the SSH code so that the inventory can check its keys
without loading paramiko.
"""

from __future__ import annotations

import os


def unprotected_key(path: str) -> str | None:
    """Why a private key file may not be used because others can read it, or None.

    OpenSSH refuses such a key ("UNPROTECTED PRIVATE KEY FILE"): whoever can
    read it can log in to every guest as xenaudit does.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & 0o077:
        return (
            f"{path}: permissions {mode & 0o777:04o} are too open: a private key must be "
            f"readable by its owner only (chmod 600 {path})"
        )
    return None
