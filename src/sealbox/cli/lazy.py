"""Click groups whose subcommands are imported only when invoked (``sealbox run`` must not
pay for every command module), with help that lists summaries without importing them."""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

#: name -> ("module:attribute", one-line summary)
Table = dict[str, tuple[str, str]]


class LazyGroup(click.Group):
    """A group over a :data:`Table`; subclass with ``table`` (and ``sort``) set."""

    table: ClassVar[Table] = {}
    #: List commands sorted by name (else in the table's order).
    sort: ClassVar[bool] = True

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.table) if self.sort else list(self.table)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.table.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.table[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def lazy_group(table: Table, *, sort: bool = True) -> type[LazyGroup]:
    """A :class:`LazyGroup` class over ``table``."""
    return type("LazyGroup", (LazyGroup,), {"table": table, "sort": sort})
