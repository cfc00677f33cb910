"""SHOW GRANTS lines made into templates for the clone: the grantee replaced, the password
hash and plugin removed, and a line that cannot be copied safely refused (never guessed)."""

from __future__ import annotations

import pytest

from sealbox.upstream.mysql_accounts import GRANTEE, template

U, H = "app", "%"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A87'",
            f"GRANT USAGE ON *.* TO {GRANTEE}",
        ),
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2B60' REQUIRE SSL"
            " WITH MAX_USER_CONNECTIONS 5",
            f"GRANT USAGE ON *.* TO {GRANTEE} REQUIRE SSL WITH MAX_USER_CONNECTIONS 5",
        ),
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6'",
            f"GRANT USAGE ON *.* TO {GRANTEE}",
        ),
        (
            "GRANT SELECT, INSERT ON `db`.* TO `app`@`%` WITH GRANT OPTION",
            f"GRANT SELECT, INSERT ON `db`.* TO {GRANTEE} WITH GRANT OPTION",
        ),
        ("GRANT `reader` TO `app`@`%`", f"GRANT `reader` TO {GRANTEE}"),
        ("SET DEFAULT ROLE `reader` FOR `app`@`%`", f"SET DEFAULT ROLE `reader` FOR {GRANTEE}"),
        # A database whose name looks like the grantee is not the grantee (its backticks
        # are doubled as printed).
        (
            "GRANT SELECT ON `x TO ``app``@``%`` y`.* TO `app`@`%`",
            f"GRANT SELECT ON `x TO ``app``@``%`` y`.* TO {GRANTEE}",
        ),
    ],
)
def test_templates(line: str, expected: str | None) -> None:
    assert template(line, U, H) == expected


def test_names_with_backticks_are_matched_as_printed() -> None:
    line = "GRANT SELECT ON `db`.* TO `a``b`@`10.0.%`"
    assert template(line, "a`b", "10.0.%") == f"GRANT SELECT ON `db`.* TO {GRANTEE}"
    assert template(line, "a", "10.0.%") is None  # another account's line


def test_an_authentication_it_cannot_remove_is_refused() -> None:
    line = "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY 'plain'"
    assert template(line, U, H) is None


def test_an_echoed_password_or_hash_is_hidden_in_errors() -> None:
    from sealbox.model import SecretValue
    from sealbox.upstream.endpoint import Endpoint
    from sealbox.upstream.mysql_accounts import _fail, native_hash

    pw = SecretValue("s3cret-Passw0rd")
    admin = Endpoint("mysql", "db", 3306, "app", "root", SecretValue("admin-pw-1"))
    assert native_hash(SecretValue("pw1")) == "*2B602296A79E0A8784ACC5C88D92E46588CCA3C3"
    echo = Exception(f"(1064, \"near '{native_hash(pw)}' and 's3cret-Passw0rd' at line 1\")")
    err = _fail(admin, "change the password of `app`@`%`", echo, pw)
    assert native_hash(pw) not in err.message and "s3cret-Passw0rd" not in err.message
    assert "root@db:3306/app" in err.message and "admin-pw-1" not in err.message
