"""SealboxSettingsSource: a real BaseSettings class fed from sealbox, embedded and remote."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_settings")

from pydantic import SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from tests.unit.client.live import live_server

from sealbox import errors
from sealbox.cli.main import main
from sealbox.integrations.pydantic_settings import SealboxSettingsSource


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    DATABASE_URL: SecretStr
    database_pool: int = 5
    FEATURES: list[str] = []
    LOG_LEVEL: str = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            SealboxSettingsSource(settings_cls),
            file_secret_settings,
        )


def _set(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(value.encode()), encoding="utf-8")
    )
    assert main(["secret", "set", name]) == 0


def _seed(monkeypatch: pytest.MonkeyPatch) -> None:
    _set("DATABASE_URL", "postgres://app:s3cret@db/app", monkeypatch)
    _set("DATABASE_POOL", "12", monkeypatch)
    _set("FEATURES", '["a", "b"]', monkeypatch)
    _set("UNRELATED", "ignored", monkeypatch)


def _check(settings: Any) -> None:
    assert isinstance(settings.DATABASE_URL, SecretStr)
    assert settings.DATABASE_URL.get_secret_value() == "postgres://app:s3cret@db/app"
    assert "s3cret" not in repr(settings)
    assert settings.database_pool == 12  # case-insensitive, converted
    assert settings.FEATURES == ["a", "b"]  # complex values are JSON, as for env vars
    assert settings.LOG_LEVEL == "info"  # default


def test_embedded_vault(keyfile_vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(monkeypatch)
    _check(AppSettings())  # type: ignore[call-arg]
    # Environment variables win over sealbox; init arguments win over both.
    monkeypatch.setenv("DATABASE_POOL", "3")
    assert AppSettings().database_pool == 3  # type: ignore[call-arg]
    assert AppSettings(database_pool=7).database_pool == 7  # type: ignore[call-arg]


def test_remote_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with live_server(tmp_path) as live:
        monkeypatch.setenv("SEALBOX_ADDR", live.url)
        monkeypatch.setenv("SEALBOX_TOKEN", live.token)
        monkeypatch.setenv("SEALBOX_PROJECT", "payments")
        monkeypatch.setenv("SEALBOX_ENV", "prod")
        assert main(["project", "create", "payments"]) == 0
        _seed(monkeypatch)
        _check(AppSettings())  # type: ignore[call-arg]


def test_missing_secret_is_a_validation_error(
    keyfile_vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set("OTHER", "x", monkeypatch)
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        AppSettings()  # type: ignore[call-arg]


def test_no_scope_is_a_clear_error(keyfile_vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEALBOX_ENV")
    with pytest.raises(errors.InvalidInput, match="no project/environment"):
        AppSettings()  # type: ignore[call-arg]
