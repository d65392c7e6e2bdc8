"""Exclusive locks between processes, so two runs never write one journal or one sweep cell.

Advisory `flock` locks: the operating system releases them when the holder closes the file or
dies (also by `kill -9`), so nothing stale is left behind. Without `fcntl` (Windows) nothing is
locked and running one sweep or `lm_eval` per output folder is up to the user.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Busy(RuntimeError):
    """Another process holds the lock."""


def lock(descriptor: int, what: str) -> None:
    """Lock an open file (or folder) for this process until the descriptor is closed; raise
    Busy at once, naming `what`, when another process or descriptor holds it."""
    try:
        import fcntl
    except ImportError:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Busy(f"{what} is in use by another process (wait for it to finish, or stop it).") from None


@contextmanager
def locked_folder(folder: Path, what: str) -> Iterator[None]:
    """Hold the lock of an existing folder for the block (see `lock`)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        lock(descriptor, what)
        yield
    finally:
        os.close(descriptor)
