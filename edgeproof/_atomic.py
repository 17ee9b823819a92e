"""Atomic writes: a file or a folder appears complete or not at all, and a kill at any moment leaves
either the old or the new complete folder in place (never none, never a mix).

Folders: `replacing_dir(target)` fills a hidden temp sibling (`.NAME.new-XXXXXXXX`), then swaps it in
with one atomic `renameat2(RENAME_EXCHANGE)` (Linux >= 3.15), so `target` always exists; where the
exchange is unavailable it renames the old folder aside (`.NAME.old-XXXXXXXX`) and the new one in, and
the next run restores the old folder if a kill landed between the two renames. Temp and aside folders
hold an flock while a live process uses them; the next run removes those whose owner died.
`folder_lock(path)` serializes whole writers (two concurrent deploys into one folder).
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

from edgeproof.errors import EdgeproofError

try:
    import fcntl
except ImportError:  # not POSIX: no locks (the pipeline and the Pi runtime are Linux)
    fcntl = None  # type: ignore[assignment]

_TEMP_SUFFIX = re.compile(r"\.(new|old|del)-[A-Za-z0-9_]{8}$")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class FolderLockedError(EdgeproofError):
    """Another process holds the folder's lock longer than we were willing to wait."""


def write_bytes_atomic(path: Path, content: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with open(fd, "wb") as f:
            f.write(content)
        Path(tmp).chmod(0o644)  # mkstemp makes 0600; reports and site files are read by others
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- locks ---------------------------------------------------------------------------------------

def _try_lock(path: Path) -> Optional[int]:
    """An fd holding an exclusive flock on `path` (a folder or file), or None if a live process holds it."""
    if fcntl is None:
        return os.open(path, os.O_RDONLY)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def lock_file_for(path: Path) -> Path:
    """The lock file guarding folder `path`: a hidden file beside it (`.NAME.lock`)."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def folder_lock(path: Path | str, timeout_s: Optional[float] = None, poll_s: float = 0.05) -> Iterator[Path]:
    """Hold an exclusive lock on folder `path` (flock on `.NAME.lock` in its parent) for the block.

    Concurrent writers of the same folder run one after the other; a killed holder releases the lock
    (the kernel drops flocks with the process). `timeout_s=None` waits for as long as it takes;
    otherwise FolderLockedError names the folder and the pid that holds it.
    """
    path = Path(path)
    lock = lock_file_for(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = Path(lock).read_text(errors="replace").strip() or "unknown"
                    raise FolderLockedError(f"{path} is locked by another edgeproof process (pid {holder}) for more "
                                            f"than {timeout_s:g} s; wait for it to finish, or remove {lock} if no "
                                            f"such process exists") from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing the fd releases the flock


# -- folders ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the paths `a` and `b` (both must exist); False where the kernel or libc cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot swap {b} into place: {os.strerror(code)}", str(b))


def is_temp_name(name: str) -> bool:
    """Whether a folder name is one of replacing_dir's hidden temp or aside folders."""
    return name.startswith(".") and bool(_TEMP_SUFFIX.search(name))


@contextlib.contextmanager
def _parent_locked(parent: Path) -> Iterator[None]:
    """flock on the parent folder itself while temp folders are created or cleaned there, so a cleaner
    never sees a writer's temp folder in the instant between its creation and its own lock."""
    fd = os.open(parent, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def clean_stale(parent: Path | str) -> list[Path]:
    """Remove the temp/aside folders in `parent` left by killed writers (live writers' are locked and
    kept). A folder renamed aside whose target is missing (a kill between the two renames of the
    fallback path) is renamed back instead. Returns what was removed or restored."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    with _parent_locked(parent):
        return _clean_stale_locked(parent)


def _clean_stale_locked(parent: Path) -> list[Path]:
    done: list[Path] = []
    for entry in sorted(parent.iterdir()):
        if not (is_temp_name(entry.name) and entry.is_dir() and not entry.is_symlink()):
            continue
        try:
            fd = _try_lock(entry)
        except FileNotFoundError:
            continue  # its writer finished (or removed it) between the listing and now: nothing to clean
        if fd is None:
            continue  # a live writer's
        try:
            target = parent / _TEMP_SUFFIX.sub("", entry.name[1:])
            if _TEMP_SUFFIX.search(entry.name).group(1) == "old" and not target.exists() and not target.is_symlink():
                entry.rename(target)  # the old folder, complete: restore it
            else:
                shutil.rmtree(entry, ignore_errors=True)
                target = entry
            done.append(target)
        finally:
            os.close(fd)
    return done


def remove_dir(target: Path | str) -> None:
    """Remove a folder so that it is either complete or gone at every moment: renamed aside to a hidden
    `.NAME.del-XXXXXXXX` first (one atomic rename), then deleted; a kill during the deletion leaves
    only that hidden folder, which the next run removes (never restores)."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        target.unlink()
        return
    doomed = target.parent / f".{target.name}.del-{secrets.token_hex(4)}"
    target.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def visible_children(parent: Path | str, marker: str) -> list[Path]:
    """The folders of `parent` holding `marker` (e.g. manifest.json), hidden folders excluded: what an
    index, a README or a tarball may list (never a writer's temp folder)."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir()
                  if not p.name.startswith(".") and p.is_dir() and (p / marker).is_file())


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the complete folder `tmp` at `target`; the old folder, if any, is removed afterwards."""
    if not target.exists() and not target.is_symlink():
        tmp.rename(target)
        return
    if target.is_dir() and not target.is_symlink() and _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    aside = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
    old_fd = _try_lock(target) if target.is_dir() and not target.is_symlink() else None
    try:
        target.rename(aside)  # a kill here leaves the old folder aside: clean_stale renames it back
        tmp.rename(target)
    except BaseException:
        if aside.exists() and not target.exists():
            aside.rename(target)
        raise
    finally:
        if old_fd is not None:
            os.close(old_fd)
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


@contextlib.contextmanager
def replacing_dir(target: Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling folder to fill; on success it replaces `target` atomically,
    on error it is removed. Leftovers of killed earlier runs in the same parent are cleaned first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _parent_locked(target.parent):
        _clean_stale_locked(target.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
        fd = _try_lock(tmp)  # marks it live: a concurrent clean_stale leaves it alone
    tmp.chmod(0o755)  # mkdtemp makes 0700: a web server running as another user could not read a bundle
    try:
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if fd is not None:
            os.close(fd)
