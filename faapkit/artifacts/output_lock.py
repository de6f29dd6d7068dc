"""One writer per result file: ``<output>.lock``, taken before any work and released when the
command ends.

Two ``faap eval RUN`` started together compute the same file name; without a lock both would
pass the "not there yet" check, both would infer, and the second rename would silently replace
the first result while both reported success. The lock is a file created with
``O_CREAT | O_EXCL`` (atomic, also on network file systems) holding the writer's pid and host. A
lock whose pid is no longer alive on this host is stale (a process killed with ``-9``) and is
taken over, with a note; a lock of another host is never guessed about. A takeover happens under
a short ``flock`` of the stale lock file itself (never of the folder, which ``faap train`` may
hold for hours), so two processes that find one stale lock cannot both take it over.

:class:`OutputLock` also remembers what the output was when the lock was taken, so that the
final write can refuse to replace a result someone wrote meanwhile (a process that ignores the
lock: an older faapkit, a copy by hand) unless ``--force`` was given.

Torch-free.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from faapkit.errors import FaapError

LOCK_SUFFIX = ".lock"


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + LOCK_SUFFIX)


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True  # cannot tell: never take over a lock that may be live
    return True


def _identity(output: Path) -> tuple[int, int, int, int] | None:
    """What ``output`` is now (device, inode, size, mtime), ``None`` when it does not exist."""
    try:
        st = output.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def _flocked(fd: int) -> Iterator[None]:
    """An exclusive ``flock`` of the open file ``fd`` while inside (none where flock is missing:
    Windows, where O_EXCL alone guards)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class OutputLock:
    """The lock of one output file; use as a context manager (or :meth:`acquire` /
    :meth:`release` in a ``try``/``finally``). ``note`` receives the one line said when a stale
    lock is taken over."""

    def __init__(self, output: Path, note: Callable[[str], None] | None = None) -> None:
        self.output = Path(output).absolute()
        self.path = lock_path(self.output)
        self.note = note
        self.held = False
        self._seen: tuple[int, int, int, int] | None = None

    def acquire(self) -> OutputLock:
        host, pid = socket.gethostname(), os.getpid()
        record = json.dumps({"pid": pid, "host": host, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n"
        for _ in range(3):  # a lock that changes under us (taken over by another) is looked at again
            if self._create(record):
                break
            holder = self._read_holder()
            for _ in range(20):  # created this instant, not yet filled: its writer fills it at once
                if holder or not self.path.exists():
                    break
                time.sleep(0.01)
                holder = self._read_holder()
            if not self._stale(holder, host):
                raise FaapError(self._busy(holder))
            if self._take_over(record, host):
                if self.note is not None:
                    self.note(
                        f"took over the stale lock {self.path} of pid {holder.get('pid')} "
                        f"(no such process on {host}: killed while writing?)"
                        if holder
                        else f"took over the stale lock {self.path}: unreadable and untouched for over a minute"
                    )
                break
        else:
            raise FaapError(self._busy(self._read_holder()))
        self.held = True
        self._seen = _identity(self.output)
        return self

    def _take_over(self, record: str, host: str) -> bool:
        """Replace a stale lock by ours. Under an exclusive ``flock`` of the stale file itself, and
        only while the path still names that very file and it is still stale, so two processes
        that found one stale lock cannot both take it over (the second finds the first's)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self._create(record)
        except OSError:
            return False
        try:
            with _flocked(fd):
                try:
                    same = os.fstat(fd).st_ino == self.path.stat().st_ino
                except FileNotFoundError:
                    same = False
                if not same or not self._stale(self._read_holder(), host):
                    return False
                self.path.unlink()
                return self._create(record)
        finally:
            os.close(fd)

    def _create(self, record: str) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise FaapError(
                f"cannot write {self.output}: cannot create {self.path.name}: {exc.strerror or exc}"
            ) from None
        data = record.encode()
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "No space left on device (the lock was written in part)")
        except OSError as exc:  # a full disk: no half-written lock left to block the next writer
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise FaapError(f"cannot write {self.output}: {exc.strerror or exc}") from None
        os.close(fd)
        return True

    def _read_holder(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _stale(self, holder: dict[str, Any], host: str) -> bool:
        """A lock of this host whose pid is gone. One that cannot be read (being written this
        instant, or not ours) is stale only when it is old: a writer fills its lock at once."""
        pid = holder.get("pid")
        if not holder:
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except OSError:
                return True  # removed meanwhile
        if holder.get("host") != host or isinstance(pid, bool) or not isinstance(pid, int):
            return False
        return not _pid_alive(pid)

    def _busy(self, holder: dict[str, Any]) -> str:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        since = f" since {holder['since']}" if holder.get("since") else ""
        return (
            f"{self.output} is being written by another faap process ({who}{since}); wait for it to finish, "
            f"or remove {self.path} if that process is gone"
        )

    def changed_meanwhile(self) -> bool:
        """Whether the output is another file now than when the lock was taken (written by a
        process that ignored the lock)."""
        return _identity(self.output) != self._seen

    def check_unchanged(self, force: bool, option: str = "") -> None:
        """Refuse the final write when someone else wrote the output meanwhile, unless ``force``."""
        if not force and self.changed_meanwhile():
            raise FaapError(
                f"{option + ' ' if option else ''}{self.output} was written by another process while this one "
                "worked; not replaced (pass --force to replace it)"
            )

    def release(self) -> None:
        """Remove the lock file, if it is still this process's (never one another took over)."""
        if self.held:
            self.held = False
            if self._read_holder().get("pid") == os.getpid():
                with contextlib.suppress(OSError):
                    self.path.unlink()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
