"""Files that hold personal data (the call-record database, captures, exports): created
readable by their owner only (0600), or also by one group (0640) when ``[store] group``
names one, whatever the umask; an existing file with looser bits is tightened."""

from __future__ import annotations

import grp
import os
from pathlib import Path
from typing import IO

from acd.errors import AcdError


def private_mode(group: str | None) -> int:
    """0640 with a group, else 0600."""
    return 0o640 if group else 0o600


def _gid(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise AcdError(f"store.group: no group {group!r} on this machine") from None


def make_private(path: str | os.PathLike[str], group: str | None = None) -> None:
    """Give an existing file (owned by this user) the private mode, and the group."""
    p = Path(path)
    st = p.stat()
    if st.st_uid != os.geteuid():
        return  # not ours to change: the owner decides
    if group:
        gid = _gid(group)
        if st.st_gid != gid:
            os.chown(p, -1, gid)
    if st.st_mode & 0o777 != private_mode(group):
        p.chmod(private_mode(group))


def create_private(path: str | os.PathLike[str], group: str | None = None) -> None:
    """Make sure ``path`` exists with the private mode (created empty if missing)."""
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, private_mode(group))
    os.close(fd)
    make_private(p, group)


def open_private(path: str | os.PathLike[str], group: str | None = None) -> IO[str]:
    """Open a text file for appending, created (or tightened) private first."""
    create_private(path, group)
    return Path(path).open("a", encoding="utf-8")
