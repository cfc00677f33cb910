"""A pydantic-settings source that reads an application's settings from sealbox.

Install with ``pip install 'sealbox[pydantic]'``. Declare settings as usual and add the
source where it belongs in the precedence order::

    from pydantic import SecretStr
    from pydantic_settings import BaseSettings
    from sealbox.integrations.pydantic_settings import SealboxSettingsSource

    class Settings(BaseSettings):
        DATABASE_URL: SecretStr
        LOG_LEVEL: str = "info"

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                       dotenv_settings, file_secret_settings):
            return (init_settings, env_settings, dotenv_settings,
                    SealboxSettingsSource(settings_cls, project="payments", env="prod"),
                    file_secret_settings)

Precedence (first wins), as above: arguments to ``Settings(...)``, then environment
variables, then ``.env`` files, then sealbox, then secret files, then field defaults. So a
variable set in the environment (for instance by ``sealbox run``, or by hand to override
one value while debugging) wins over the value fetched from sealbox — exactly as if
sealbox had been another layer of environment variables.

Secret names are matched to fields by the rules pydantic-settings uses for environment
variables: ``env_prefix``, aliases, ``case_sensitive`` (insensitive by default, so the
field ``database_url`` finds the secret ``DATABASE_URL``), JSON for complex fields, and
``env_nested_delimiter``.

The vault is the one :func:`sealbox.factory.connect` selects: a server when
``SEALBOX_ADDR`` is set (with ``SEALBOX_TOKEN`` or a ``sealbox login`` token), else the
embedded vault. Project and environment come from the arguments, else ``SEALBOX_PROJECT``
/ ``SEALBOX_ENV``, else the nearest ``sealbox.toml``. Every secret of the environment that
the caller may read is fetched in one call (audited as a ``run``), and only the matching
ones are used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic_settings import BaseSettings, EnvSettingsSource

if TYPE_CHECKING:
    from sealbox.api import VaultAPI


def _scope(project: str | None, env: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    from sealbox.config import select_scope

    return select_scope(
        project,
        env,
        environ,
        Path.cwd(),
        hint="pass project= and env=, set SEALBOX_PROJECT/SEALBOX_ENV, or add sealbox.toml",
    )


class SealboxSettingsSource(EnvSettingsSource):
    """Settings from a sealbox environment, matched to fields like environment variables."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *,
        project: str | None = None,
        env: str | None = None,
        vault: VaultAPI | None = None,
        environ: Mapping[str, str] | None = None,
        case_sensitive: bool | None = None,
        env_prefix: str | None = None,
        env_nested_delimiter: str | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._project, self._env = _scope(project, env, self._environ)
        self._vault = vault
        super().__init__(
            settings_cls,
            case_sensitive=case_sensitive,
            env_prefix=env_prefix,
            env_nested_delimiter=env_nested_delimiter,
        )

    def __repr__(self) -> str:
        return f"SealboxSettingsSource(project={self._project!r}, env={self._env!r})"

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The same normalisation pydantic-settings applies to os.environ.
        out: dict[str, str | None] = {}
        for name, value in self._fetch().items():
            if self.env_ignore_empty and value == "":
                continue
            key = name if self.case_sensitive else name.lower()
            none = self.env_parse_none_str
            out[key] = None if none is not None and value == none else value
        return out

    def _fetch(self) -> dict[str, str]:
        vault = self._vault
        owned = vault is None
        if vault is None:
            from sealbox.factory import connect

            vault = connect(env=self._environ, source="settings")
        try:
            secrets = vault.resolve(self._project, self._env, purpose="run")
        finally:
            if owned:
                vault.close()
        return {name: value.reveal() for name, value in secrets.items()}
