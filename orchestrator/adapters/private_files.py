"""Files and directories only their owner may read, created so that no link redirects them.

Every file wgfleet writes that holds a secret or that its connections trust (SSH keys,
preshared keys, client configurations, exports, plans, ``known_hosts``) goes through
:func:`write_private`: the bytes go into a fresh temporary beside the target, created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 before a byte is written, then renamed over
the target. So nothing is ever written through a symbolic link planted at the target or at the
temporary's name, and no moment exists where another user could read the bytes.

The rules for a target that already exists (checked by :func:`check_target`, also before a
command changes anything):

- a symbolic link, or anything but a regular file: refused, nothing written;
- a regular file of another user: refused (wgfleet never replaces someone else's file);
- a regular file of this user: replaced whole (the old inode is not written to, so a hard
  link elsewhere keeps its old bytes).

Directories wgfleet keeps secrets in (the data directory, ``keys/``, ``secrets/``) go through
:func:`private_dir`: created 0700; an existing one of this user with a looser mode is tightened
to 0700; one of another user, or a symbolic link where wgfleet makes its own directory, is
refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from orchestrator.errors import UsageError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def _refuse(path: Path, problem: str) -> UsageError:
    return UsageError(f"{path}: {problem}; nothing was written")


def check_target(path: Path) -> None:
    """Refuse a target that :func:`write_private` must not replace (see the module doc);
    a missing target is fine."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    if stat.S_ISLNK(found.st_mode):
        raise _refuse(path, "is a symbolic link; wgfleet writes secrets only to regular files")
    if not stat.S_ISREG(found.st_mode):
        raise _refuse(path, "exists and is not a regular file")
    if found.st_uid != os.geteuid():
        raise _refuse(path, f"belongs to another user (uid {found.st_uid}); name a new file")


def write_private(
    path: Path, data: bytes, *, mode: int = PRIVATE_FILE, make_parent: bool = False
) -> None:
    """Replace ``path`` with ``data`` (mode ``mode``, 0600 by default): through a fresh
    temporary renamed over it, never through a link. ``make_parent`` creates a missing
    parent directory 0700."""
    if make_parent and not os.path.lexists(path.parent):
        try:
            _make_dirs(path.parent)
        except OSError as exc:
            raise _refuse(path, f"cannot create its directory: {exc.strerror or exc}") from None
    check_target(path)
    try:
        # mkstemp opens with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600, under a random name.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _refuse(path, f"cannot create a file beside it: {exc.strerror or exc}") from None
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise _refuse(path, exc.strerror or str(exc)) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_private(path: Path) -> bytes:
    """The bytes of one of wgfleet's own secret files: refused if ``path`` is a link or not
    this user's regular file (a planted link must not feed wgfleet a key it did not make)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(
                path, "is a symbolic link; wgfleet reads keys only from regular files"
            ) from None
        raise
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid():
            raise _refuse(path, "is not a regular file of this user")
        if found.st_mode & 0o077:
            os.fchmod(fd, stat.S_IMODE(found.st_mode) & 0o700)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 (what wgfleet creates is private)."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        # A concurrent run may have made it first: checked by the caller like any other.
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, PRIVATE_DIR)


def private_dir(path: Path, *, follow: bool = False, tighten: bool = True) -> Path:
    """Make sure ``path`` is a directory only this user can enter (see the module doc).

    ``follow``: ``path`` itself may be a symbolic link to such a directory (the data directory
    an operator names in the settings); the directories wgfleet makes inside it may not.
    ``tighten=False`` is for a directory the operator chose for a key file (``ssh.*_key``):
    made 0700 when missing, else left as it is if only its owner (this user or root) can
    write into it, refused otherwise.
    """
    try:
        found = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        try:
            _make_dirs(path)
            found = os.stat(path) if follow else os.lstat(path)
        except OSError as exc:
            raise _refuse(path, f"cannot create it: {exc.strerror or exc}") from None
    if stat.S_ISLNK(found.st_mode):
        raise _refuse(path, "is a symbolic link; wgfleet keeps secrets only in its own directory")
    if not stat.S_ISDIR(found.st_mode):
        raise _refuse(path, "exists and is not a directory")
    mode = stat.S_IMODE(found.st_mode)
    if not tighten and found.st_uid in (os.geteuid(), 0):
        if mode & 0o022:
            raise _refuse(path, f"other users may write into it (mode {mode:04o})")
        return path
    if found.st_uid != os.geteuid():
        raise _refuse(
            path,
            f"belongs to another user (uid {found.st_uid}); wgfleet keeps its keys and store "
            "only in a directory of its own user",
        )
    if mode & 0o077:
        os.chmod(path, mode & 0o700)  # ours: tightened (a looser mode lets others plant links)
    return path
