"""The output folder of a command: checked before any work, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["OutputFolderError", "output_folder", "write_atomically"]


class OutputFolderError(ValueError):
    """An output folder that cannot be used; the message is one line for the command line."""


def output_folder(value: str, flag: str = "--out") -> Path:
    """The folder ``value``, created if needed and checked to be writable, before any work.

    Args:
        value: the folder as the user typed it.
        flag: the option's name, for the message.

    Raises:
        OutputFolderError: for an empty name, a file, a path through a file or
            a folder that cannot be created or written, naming the path and why.

    Example:
        >>> output_folder("")
        Traceback (most recent call last):
        ...
        sandflow._output.OutputFolderError: --out is empty: name a folder (--out . for this one)
    """
    if not value.strip():
        raise OutputFolderError(f"{flag} is empty: name a folder ({flag} . for this one)")
    path = Path(value)
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        where = "is" if blocking == path else f"lies under {str(blocking)!r}, which is"
        raise OutputFolderError(f"{flag} {value!r} {where} a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise OutputFolderError(
            f"cannot write to {flag} {value!r}: {error.strerror or error}"
        ) from error
    return path


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: never half a file.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_atomically(folder / "a.md", "done").read_text(), sorted(os.listdir(folder))
        ('done', ['a.md'])
        >>> bool((folder / "a.md").stat().st_mode & 0o044)  # readable by others (umask 022)
        True
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(handle, 0o666 & ~umask)  # an ordinary file's mode, not mkstemp's private 0600
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
