"""Every error class has an HTTP status and an exit status, each from its one table."""

from __future__ import annotations

import importlib
import pkgutil
from collections import Counter

import sealbox
from sealbox import errors
from sealbox.cli.exit_codes import EXIT_STATUS, NEVER_IN_CLI, exit_status
from sealbox.client.errors import ERROR_CLASSES, error_for
from sealbox.server.errors import HTTP_STATUS, NEVER_SENT, headers_for, status_for


def every_error_class() -> list[type[errors.SealboxError]]:
    """SealboxError and all its subclasses, in every module of sealbox (imported first, so a
    class defined anywhere — server-only, SDK-only — is found)."""
    for module in pkgutil.walk_packages(sealbox.__path__, "sealbox."):
        importlib.import_module(module.name)
    found: list[type[errors.SealboxError]] = []
    todo: list[type[errors.SealboxError]] = [errors.SealboxError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("sealbox."):  # not a test's own subclass
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def declares_code(cls: type[errors.SealboxError]) -> bool:
    return "code" in vars(cls)


def test_every_error_class_is_in_both_tables_or_marked() -> None:
    classes = every_error_class()
    assert len(classes) >= 20  # the walk found the server's and the SDK's classes too
    for cls in classes:
        name = f"{cls.__module__}.{cls.__qualname__} ({cls.code})"
        assert (cls.code in HTTP_STATUS) != (cls.code in NEVER_SENT), name
        assert (cls.code in EXIT_STATUS) != (cls.code in NEVER_IN_CLI), name


def test_no_table_names_a_code_no_class_has() -> None:
    codes = {cls.code for cls in every_error_class()}
    for table in (HTTP_STATUS, NEVER_SENT, EXIT_STATUS, NEVER_IN_CLI):
        assert set(table) <= codes


def test_codes_are_unique() -> None:
    """One class declares each code; the SDK's twin of a server-only class (RateLimited for
    the server's TooManyRequests) is the class ERROR_CLASSES raises for that code."""
    declared = [cls for cls in every_error_class() if declares_code(cls)]
    twins = [c for c in declared if c.__module__.startswith("sealbox.client.")]
    for twin in twins:
        assert ERROR_CLASSES[twin.code] is twin
    counts = Counter(cls.code for cls in declared if cls not in twins)
    assert [code for code, n in counts.items() if n > 1] == []


def test_a_remote_error_exits_as_the_embedded_one() -> None:
    for code in HTTP_STATUS:
        raised = error_for(code, "m", status=HTTP_STATUS[code], where="http://x")
        if code in EXIT_STATUS:
            assert exit_status(raised) == EXIT_STATUS[code], code
        else:
            assert raised.code in EXIT_STATUS, code  # the SDK's class exits by its table


def test_storage_busy_is_transient_everywhere() -> None:
    exc = errors.StorageBusy("the audit chain is being appended to")
    assert status_for(exc) == 503
    assert headers_for(exc) == {"retry-after": "1"}
    assert exit_status(exc) == 8
    again = error_for("storage_busy", "busy", status=503, where="http://x")
    assert type(again) is errors.StorageBusy
    assert exit_status(again) == 8


def test_exit_status_falls_back_to_the_nearest_mapped_parent() -> None:
    class Unlisted(errors.NotFound):
        code = "unlisted_test_only"

    assert exit_status(Unlisted("x")) == 3
