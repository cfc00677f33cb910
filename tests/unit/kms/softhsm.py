"""A SoftHSM2 made for this test process: tokens in a temp dir, keys generated in them.

SoftHSM2 reads ``SOFTHSM2_CONF`` and lists its tokens when the library is first loaded
in a process (python-pkcs11 keeps it loaded), so :func:`softhsm` writes the config, sets
the variable and initialises every token the tests use before anything loads it, once
per process. Where ``softhsm2-util`` or the library is missing the tests skip, saying so
(``.ci/run`` installs the Debian package ``softhsm2``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234-user-pin"
SO_PIN = "5678-so-pin"
#: Tokens: the contract suite's keys, and tokens of their own for tests that log in with
#: a wrong PIN or open a vault (a process-wide login would otherwise be shared).
TOKENS = ("sealbox-a", "sealbox-pin", "sealbox-vault", "sealbox-gen")
MAIN, OTHER = "contract-key", "other-key"


class SoftHsm(NamedTuple):
    library: str
    conf: Path
    tokendir: Path
    pin: str


def available() -> str | None:
    """Why SoftHSM2 cannot be had here, or None."""
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is not installed (Debian package softhsm2)"
    if not Path(LIBRARY).is_file():
        return f"{LIBRARY} is missing (Debian package softhsm2)"
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 is not installed (pip install 'sealbox[pkcs11]')"
    return None


@functools.cache
def _made() -> SoftHsm:
    root = Path(tempfile.mkdtemp(prefix="sealbox-softhsm-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    tokendir = root / "tokens"
    tokendir.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    # Before the library is first loaded in this process: it reads the variable then.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in TOKENS:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label,
             "--pin", PIN, "--so-pin", SO_PIN],
            check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
            timeout=60,
        )  # fmt: skip
    hsm = SoftHsm(LIBRARY, conf, tokendir, PIN)
    for label in (MAIN, OTHER):
        with _provider(label, generate=True):
            pass
    return hsm


def softhsm() -> SoftHsm:
    """This process's SoftHSM2 (made on first use), or skip the test saying why not."""
    why = available()
    if why is not None:
        pytest.skip(f"pkcs11: {why}")
    return _made()


class _Storage:
    """No storage: a pkcs11 provider never reads the vault."""


def context(env: Mapping[str, str] | None = None, timeout: float = 5.0) -> Any:
    from sealbox.kms.registry import ProviderContext

    return ProviderContext(
        _Storage(),  # type: ignore[arg-type]
        "vault-test",
        None,
        {"SEALBOX_PKCS11_PIN": PIN} if env is None else env,
        None,
        lambda: datetime.now(UTC),
        timeout,
    )


def options(key_label: str = MAIN, token_label: str = "sealbox-a", **more: str) -> dict[str, str]:
    return {"library": LIBRARY, "token_label": token_label, "key_label": key_label, **more}


def opened(
    key_label: str = MAIN,
    *,
    token_label: str = "sealbox-a",
    generate: bool = False,
    env: Mapping[str, str] | None = None,
    **more: str,
) -> contextlib.AbstractContextManager[Any]:
    """A pkcs11 provider on this process's SoftHSM2 (generating its key if asked)."""
    softhsm()
    return _provider(key_label, token_label=token_label, generate=generate, env=env, **more)


@contextlib.contextmanager
def _provider(
    key_label: str,
    *,
    token_label: str = "sealbox-a",
    generate: bool = False,
    env: Mapping[str, str] | None = None,
    **more: str,
) -> Iterator[Any]:
    from sealbox.kms.pkcs11 import Pkcs11Kind

    kind = Pkcs11Kind()
    if generate:
        new = kind.create(
            "hsm", options(key_label, token_label, generate="true", **more), context(env)
        )
        provider = new.provider
    else:
        provider = kind.open("hsm", options(key_label, token_label, **more), context(env))
    try:
        yield provider
    finally:
        provider.close()
