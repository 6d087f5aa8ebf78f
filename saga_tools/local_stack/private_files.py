"""Files and folders of the local stack that only their owner may read: secrets, data, logs.

A file that holds a secret is created with mode 0600, never readable by others for a moment. The
stack's data folders (Kafka's, PostgreSQL's) and the logs are 0700 and 0600: a log can hold a customer's
address, a data folder every payment. Only what the stack makes is restricted, never a folder above the
state folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, atomically, as a file only its owner can read (created 0600 rather than
    chmod-ed afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    temporary.replace(path)


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner may enter: created 0700, or made so if it exists (a state folder
    of an older version)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def open_private_log(path: Path) -> BinaryIO:
    """`path` opened to append to, created 0600 (or made so, if an older version created it)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")
