"""Login methods by name: the built-in ones, and others from entry points.

A package adds a method by declaring a zero-argument factory (its class) returning a
:class:`~sealbox.auth.methods.interface.LoginMethod` in the entry points group
``sealbox.login_methods``, under the method's name; the server then serves it at
``/v1/auth/<name>/login`` with no change of its own. The built-in methods are declared
there too (pyproject.toml) and are found without entry point discovery
(``importlib.metadata`` costs milliseconds a lookup of ``password`` need not spend).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sealbox.auth.methods.interface import METHOD_NAME_RE, RESERVED_NAMES, FieldKind
from sealbox.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from sealbox.auth.methods.interface import LoginMethod

GROUP = "sealbox.login_methods"
#: name -> the factory's ``module:attribute``, exactly as pyproject.toml declares it.
BUILTIN = {
    "password": "sealbox.auth.methods.password:PasswordLogin",
    "approle": "sealbox.auth.methods.approle:AppRoleLogin",
    "userpass": "sealbox.auth.methods.password:UserpassLogin",
}


def login_method(name: str) -> LoginMethod:
    """The method registered as ``name``; NotFound if there is none."""
    if name in BUILTIN:
        return _make(name, BUILTIN[name], _load_builtin(BUILTIN[name]))
    for ep in _entry_points():
        if ep.name == name:
            return _from_entry_point(ep)
    raise NotFound(f"no login method {name[:64]!r} on this server")


def available() -> dict[str, LoginMethod]:
    """Every installed method by name, built-ins first. A method that cannot be loaded,
    breaks the interface's rules, or whose name two packages claim is an error: a server
    does not start with a login method silently missing."""
    methods = {name: login_method(name) for name in BUILTIN}
    claimed = dict(BUILTIN)
    for ep in _entry_points():
        if claimed.get(ep.name) == ep.value:
            continue  # a built-in, as pyproject.toml declares it
        if ep.name in claimed:
            raise InvalidInput(
                f"login method {ep.name[:64]!r} is registered twice"
                f" ({claimed[ep.name]} and {ep.value})",
                hint=f"uninstall one of the packages that register it in {GROUP!r}",
            )
        claimed[ep.name] = ep.value
        methods[ep.name] = _from_entry_point(ep)
    return methods


def _entry_points() -> Iterable[EntryPoint]:
    from importlib.metadata import entry_points

    return entry_points(group=GROUP)


def _load_builtin(target: str) -> Callable[[], Any]:
    module, _, attr = target.partition(":")
    factory: Callable[[], Any] = getattr(importlib.import_module(module), attr)
    return factory


def _from_entry_point(ep: EntryPoint) -> LoginMethod:
    try:
        factory: Callable[[], Any] = ep.load()
    except Exception as exc:
        raise InvalidInput(
            f"login method {ep.name[:64]!r} cannot be loaded ({type(exc).__name__})",
            hint=f"check the package that provides it ({ep.value})",
        ) from None
    return _make(ep.name, ep.value, factory)


def _make(name: str, target: str, factory: Callable[[], Any]) -> LoginMethod:
    method: LoginMethod = factory()
    problem = _problem(name, method)
    if problem:
        raise InvalidInput(
            f"login method {name[:64]!r} ({target}) is not usable: {problem}",
            hint="the package that provides it breaks sealbox's LoginMethod interface",
        )
    return method


def _problem(name: str, method: Any) -> str:
    """What keeps ``method`` from being served as ``name``, or ``""``."""
    if not METHOD_NAME_RE.match(name) or name in RESERVED_NAMES:
        return "its name must be 1-32 lowercase letters, digits, - and _, and not 'token'"
    if getattr(method, "name", None) != name:
        return f"it calls itself {getattr(method, 'name', None)!r}"
    if not all(callable(getattr(method, a, None)) for a in ("subject", "login")):
        return "it has no subject() or login()"
    fields = tuple(getattr(method, "fields", None) or ())
    names = [getattr(f, "name", None) for f in fields]
    if len(set(names)) != len(names):
        return "it declares a field twice"
    if not all(isinstance(getattr(f, "kind", None), FieldKind) for f in fields):
        return "a field's kind is not a FieldKind"
    path = getattr(method, "path_field", None)
    if path is not None and not any(f.name == path and f.kind is FieldKind.STR for f in fields):
        return f"its path_field {path!r} is not one of its string fields"
    return ""
