"""Writing files so that a crash or a kill never leaves a partial file behind."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from stegcli.errors import InputError


def exists_error(path: str | Path) -> InputError:
    """The error for an output that exists and may not be replaced."""
    return InputError(f"{str(path)!r} already exists; give --force to replace it")


def refuse_existing(path: str | Path, force: bool) -> None:
    """Fail before any work when ``path`` exists and --force was not given.

    Only an early, friendly check: :func:`atomic_write` with ``overwrite=False`` is what
    makes sure nothing is replaced if the file appears in the meantime.
    """
    if not force and Path(path).exists():
        raise exists_error(path)


def atomic_write(path: Path, write, overwrite: bool = True) -> None:
    """Call ``write(temporary_path)``, then rename the result onto ``path``.

    Readers see either the old file or the complete new one, never a partial file, even
    when the process is killed mid-write. With ``overwrite=False`` an existing ``path`` is
    left alone and FileExistsError raised, checked atomically at the moment of linking.

    The temporary file is ``.<name>.<random>.tmp`` in the same folder. It is removed on any
    error, but a process killed outright (SIGKILL, power loss) may leave it behind: never
    under the output's name, which either is absent or holds the complete file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        # A file stands where a folder should be. Not the FileExistsError callers read as
        # "path already exists", which would make them report a write that never happened.
        problem = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
        raise problem from None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        # mkstemp makes the file private (0600); give it the usual permissions instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if path exists, even if it appeared meanwhile
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: check, then rename
                if path.exists():
                    raise FileExistsError(path) from None
                os.replace(temporary, path)
            Path(temporary).unlink(missing_ok=True)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
