"""Rotators by name: sealbox's own looked up directly, others from entry points.

A package adds a rotator by declaring a factory ``Callable[[], Rotator]`` in the entry
points group ``sealbox.rotators``. sealbox's own are imported by module path, without
entry point discovery (``importlib.metadata`` costs a CLI process milliseconds).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from sealbox.errors import InvalidInput

if TYPE_CHECKING:
    from sealbox.rotation.interface import Rotator

GROUP = "sealbox.rotators"

#: name -> "module:factory" of the rotators sealbox ships.
BUILTIN: dict[str, str] = {
    "random": "sealbox.rotation.random:RandomRotator",
    "postgres": "sealbox.rotation.postgres:PostgresRotator",
    "mysql": "sealbox.rotation.mysql:MysqlRotator",
    "webhook": "sealbox.rotation.webhook:WebhookRotator",
    "command": "sealbox.rotation.command:CommandRotator",
}

RotatorFactory = Callable[[], "Rotator"]


def _load(name: str, target: str) -> RotatorFactory:
    module, _, attr = target.partition(":")
    factory: RotatorFactory = getattr(importlib.import_module(module), attr)
    return factory


def rotator(name: str) -> Rotator:
    """The rotator registered as ``name``; InvalidInput if there is none."""
    if name in BUILTIN:
        return _load(name, BUILTIN[name])()
    from importlib.metadata import entry_points

    for ep in entry_points(group=GROUP, name=name):
        try:
            factory: RotatorFactory = ep.load()
        except Exception as exc:
            raise InvalidInput(
                f"rotator {name!r} cannot be loaded ({type(exc).__name__})",
                hint=f"check the package that provides it ({ep.value})",
            ) from None
        return factory()
    raise InvalidInput(
        f"no rotator named {name[:100]!r} (sealbox has {', '.join(sorted(BUILTIN))})",
        hint=f"install the package that registers it in the {GROUP!r} entry points",
    )


def names() -> list[str]:
    """Every rotator this installation has."""
    from importlib.metadata import entry_points

    return sorted({*BUILTIN, *(ep.name for ep in entry_points(group=GROUP))})
