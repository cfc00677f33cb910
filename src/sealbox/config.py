"""Where the vault lives, and which project/environment a directory is bound to.

``SEALBOX_HOME/config.toml`` names the storage and the key file (no secret unless a
PostgreSQL DSN embeds a password, so it is written 0600). A directory's
``sealbox.toml`` (checked in, holding no secret) names its project and environment.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from sealbox.errors import InvalidInput

# NOTE: re-exported: the core's modules import the file helpers from here.
from sealbox.files import atomic_write as atomic_write  # noqa: PLC0414
from sealbox.files import default_home as default_home  # noqa: PLC0414
from sealbox.model import validate_scope

CONFIG_NAME = "config.toml"
PROJECT_FILE = "sealbox.toml"


class AuditSettings(NamedTuple):
    """``[audit]`` in config.toml (see docs/audit.md)."""

    sinks: tuple[str, ...] = ("db",)
    fail_open: bool = False  # unsafe: for development only
    node: str = "local"
    file_max_bytes: int = 64 * 1024 * 1024


def parse_audit(data: object, where: str) -> AuditSettings:
    if data is None:
        return AuditSettings()
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: [audit] must be a table")
    unknown = set(data) - set(AuditSettings._fields)
    if unknown:
        raise InvalidInput(f"{where}: unknown [audit] setting(s): {', '.join(sorted(unknown))}")
    sinks = data.get("sinks", ["db"])
    if not isinstance(sinks, list) or not all(isinstance(x, str) for x in sinks):
        raise InvalidInput(f"{where}: [audit] sinks must be a list of strings")
    fail_open = data.get("fail_open", False)
    node = data.get("node", "local")
    max_bytes = data.get("file_max_bytes", AuditSettings._field_defaults["file_max_bytes"])
    if not isinstance(fail_open, bool):
        raise InvalidInput(f"{where}: [audit] fail_open must be true or false")
    if not isinstance(node, str) or not node:
        raise InvalidInput(f"{where}: [audit] node must be a non-empty string")
    if not isinstance(max_bytes, int) or max_bytes < 1024:
        raise InvalidInput(f"{where}: [audit] file_max_bytes must be at least 1024")
    return AuditSettings(tuple(sinks), fail_open, node, max_bytes)


class VaultConfig(NamedTuple):
    home: Path
    storage: str
    key_file: Path | None = None
    audit: AuditSettings = AuditSettings()

    @property
    def path(self) -> Path:
        return self.home / CONFIG_NAME


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value)


def save_config(cfg: VaultConfig) -> None:
    lines = ["# sealbox vault configuration", f"storage = {_toml_str(cfg.storage)}"]
    if cfg.key_file is not None:
        lines.append(f"key_file = {_toml_str(str(cfg.key_file))}")
    atomic_write(cfg.path, ("\n".join(lines) + "\n").encode())


def load_config(home: Path) -> VaultConfig | None:
    path = home / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    storage = data.get("storage")
    if not isinstance(storage, str):
        raise InvalidInput(f"{path} has no storage setting")
    key_file = data.get("key_file")
    return VaultConfig(
        home,
        storage,
        Path(key_file) if isinstance(key_file, str) else None,
        parse_audit(data.get("audit"), str(path)),
    )


class Binding(NamedTuple):
    """A directory's project and environment, from the nearest ``sealbox.toml``."""

    project: str
    env: str
    path: Path


def find_binding(start: Path) -> Binding | None:
    """The nearest ``sealbox.toml`` at or above ``start``."""
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise InvalidInput(f"cannot read {candidate}: {exc}") from None
            project, env = data.get("project"), data.get("env")
            if not isinstance(project, str) or not isinstance(env, str):
                raise InvalidInput(f"{candidate} must set project and env")
            try:
                return Binding(
                    validate_scope("project", project),
                    validate_scope("environment", env),
                    candidate,
                )
            except InvalidInput as exc:
                raise InvalidInput(f"{candidate}: {exc.message}") from None
    return None


def select_scope(
    project: str | None,
    env: str | None,
    environ: Mapping[str, str],
    cwd: Path,
    *,
    hint: str = "pass a project and environment, set SEALBOX_PROJECT/SEALBOX_ENV,"
    " or bind this directory to them (sealbox.toml)",
) -> tuple[str, str]:
    """Project and environment: given ones, else SEALBOX_PROJECT/ENV, else sealbox.toml.

    An explicit empty value (`-e "$UNSET"`) is an error, never "use the default": falling
    back would act on another environment than the one the caller meant.
    """
    if project is None:
        project = environ.get("SEALBOX_PROJECT")
    if env is None:
        env = environ.get("SEALBOX_ENV")
    if project is None or env is None:
        binding = find_binding(cwd)
        if binding is not None:
            project = binding.project if project is None else project
            env = binding.env if env is None else env
    if project is None or env is None:
        raise InvalidInput("no project/environment selected", hint=hint)
    return validate_scope("project", project), validate_scope("environment", env)


def write_binding(directory: Path, project: str, env: str) -> Path:
    validate_scope("project", project)
    validate_scope("environment", env)
    path = directory / PROJECT_FILE
    text = (
        "# sealbox project binding: safe to commit, holds no secret\n"
        f"project = {_toml_str(project)}\nenv = {_toml_str(env)}\n"
    )
    atomic_write(path, text.encode(), mode=0o644)
    return path
