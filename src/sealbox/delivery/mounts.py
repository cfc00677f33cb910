"""Secrets delivered as a file: 0600, on tmpfs where there is one, there only while needed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from sealbox.errors import InvalidInput
from sealbox.model import SecretValue

MOUNT_FORMATS = ("dotenv", "json")


def tmpfs_base() -> tuple[Path, bool]:
    """A directory in memory where there is one (/dev/shm, then $XDG_RUNTIME_DIR)."""
    import tempfile

    for candidate in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR") or ""):  # noqa: S108
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate), True
    return Path(tempfile.gettempdir()), False


class MountedFile:
    """The secrets as a 0600 file that exists only while the command runs.

    ``spec`` is a file name (placed in a private directory on tmpfs) or an absolute path;
    ``report`` receives the warnings (no tmpfs here, the file could not be removed).
    """

    def __init__(self, spec: str, fmt: str, report: Callable[[str], None]) -> None:
        import tempfile

        self.fmt = fmt
        self._report = report
        self._dir: Path | None = None
        if os.path.isabs(spec):
            self.path = Path(spec)
        else:
            if "/" in spec or spec in ("", ".", ".."):
                raise InvalidInput(
                    f"secrets file {spec[:80]!r}: give a file name (placed on tmpfs) or an"
                    " absolute path",
                    hint="a bare file name or an absolute path",
                    hint_key="mount_spec",
                )
            base, in_memory = tmpfs_base()
            if not in_memory:
                report(
                    f"warning: no tmpfs here (/dev/shm, $XDG_RUNTIME_DIR); the secrets "
                    f"file is on disk in {base} while the command runs"
                )
            # A private directory: no collisions, no symlink games in a shared /dev/shm.
            self._dir = Path(tempfile.mkdtemp(prefix="sealbox-", dir=base))
            self.path = self._dir / spec

    def write(self, secrets: Mapping[str, SecretValue]) -> None:
        from sealbox.config import atomic_write
        from sealbox.delivery.dotenv_io import render

        try:
            atomic_write(self.path, render(secrets, self.fmt).encode(), mode=0o600)
        except OSError as exc:
            raise InvalidInput(f"cannot write {self.path}: {exc.strerror}") from None

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._report(f"warning: could not remove {self.path}: {exc}")
        if self._dir is not None:
            with contextlib.suppress(OSError):
                self._dir.rmdir()
