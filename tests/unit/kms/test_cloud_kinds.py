"""The cloud families as the vault meets them: found by kind, their SDKs off the CLI's hot
path, a missing SDK named with its extra, and a vault opened by a cloud provider alone
(its KEKs wrapped as ``kms add`` stores them, the passphrase then absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.unit.kms import aws_peer, azure_peer, gcp_peer

from sealbox import factory
from sealbox.config import load_config
from sealbox.errors import KeyProviderError
from sealbox.kms.local import kek_context
from sealbox.kms.master import UnlockMethod
from sealbox.kms.opening import RingOpener
from sealbox.kms.registry import ProviderContext, provider_kind
from sealbox.model import SecretRef, SecretValue
from sealbox.storage.rows import KekWrapping, KeyProviderRow

SDKS = ("boto3", "botocore", "google", "grpc", "azure", "moto")
PASS = "correct horse battery staple"
REF = SecretRef("payments", "dev", "DB_URL")


def test_the_cli_and_the_core_import_no_cloud_sdk() -> None:
    code = (
        "import sys; import sealbox.cli.main, sealbox.factory, sealbox.kms.registry,"
        " sealbox.kms.opening, sealbox.kms.cloud;"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SDKS!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("kind", "sdk", "extra"),
    [
        ("aws-kms", "boto3", "aws"),
        ("gcp-kms", "google.cloud.kms", "gcp"),
        ("azure-keyvault", "azure.keyvault.keys", "azure"),
    ],
)
def test_a_missing_sdk_names_the_extra_to_install(kind: str, sdk: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{sdk!r}] = None\n"  # the SDK is not installed
        "from sealbox.kms.registry import provider_kind\n"
        "from sealbox.errors import KeyProviderError\n"
        f"try:\n    provider_kind({kind!r})\n"
        "except KeyProviderError as exc:\n    print(exc.message); print(exc.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"pip install 'sealbox[{extra}]'" in out.stdout
    assert sdk in out.stdout


@pytest.mark.parametrize("kind", ["aws-kms", "gcp-kms", "azure-keyvault"])
def test_each_family_is_found_by_kind_and_opens_unattended(kind: str) -> None:
    pytest.importorskip(
        {
            "aws-kms": "boto3",
            "gcp-kms": "google.cloud.kms",
            "azure-keyvault": "azure.keyvault.keys",
        }[kind]
    )
    family = provider_kind(kind)
    assert family.kind == kind
    assert family.interactive({}) is False


def _ctx(storage: Any, vault_id: str, env: dict[str, str]) -> ProviderContext:
    return ProviderContext(storage, vault_id, None, env, None, lambda: datetime.now(UTC), 5.0)


def _add(storage: Any, vault_id: str, name: str, kind: str, made: Any) -> None:
    """What ``kms add`` stores: the provider and its wrapping of every KEK."""
    ring = RingOpener(_ctx(storage, vault_id, {"SEALBOX_PASSPHRASE": PASS})).key_ring()
    now = datetime.now(UTC).isoformat()
    wrappings = [
        KekWrapping(
            kek_id,
            name,
            made.provider.wrap(ring.kek(kek_id), kek_context(vault_id, kek_id)),
            made.provider.key_id(),
            now,
        )
        for kek_id in ring.kek_ids
    ]
    storage.add_key_provider(KeyProviderRow(name, kind, json.dumps(made.config), 1, now), wrappings)


@pytest.mark.parametrize("kind", ["aws-kms", "gcp-kms", "azure-keyvault"])
def test_a_vault_opens_with_a_cloud_provider_alone(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    factory.init_vault(home=home, method=UnlockMethod.PASSPHRASE, passphrase=PASS, env={})
    vault = factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS})
    vault.create_project("payments")
    vault.set(REF, SecretValue("s3cr3t-value"))
    vault.close()

    cfg = load_config(home)
    assert cfg is not None
    storage = factory.open_storage(cfg.storage)
    vault_id = str(storage.get_setting("vault_id"))
    ctx = _ctx(storage, vault_id, {})
    if kind == "aws-kms":
        with aws_peer.fake_credentials():
            made = provider_kind(kind).create("cloud", aws_peer.options(create_key="true"), ctx)
        for k, v in aws_peer.FAKE_ENV.items():
            monkeypatch.setenv(k, v)  # the SDK's own chain finds them when the vault opens
    elif kind == "gcp-kms":
        fake, url = gcp_peer.fake_kms()
        made = gcp_peer.kind().create("cloud", gcp_peer.config(fake.new_key(), url), ctx)
        # The vault opens the family by kind: the registry's GcpKmsKind gets the test token.
        monkeypatch.setattr(
            "sealbox.kms.gcp_kms.GcpKmsKind.__init__", _with(gcp_peer.credentials())
        )
    else:
        fake_vault = azure_peer.fake_vault()
        made = azure_peer.kind(fake=fake_vault).create(
            "cloud", azure_peer.config(fake_vault.new_key()), ctx
        )
        transport = azure_peer.transport(fake_vault)
        monkeypatch.setattr(
            "sealbox.kms.azure_keyvault.AzureKeyVaultKind.__init__",
            _with(azure_peer.StaticCredential(), transport),
        )
    _add(storage, vault_id, "cloud", kind, made)
    made.provider.close()
    storage.close()

    # No passphrase in the environment: the cloud provider (unattended) opens the KEKs.
    vault = factory.open_vault(home=home, env={})
    try:
        assert vault.get(REF, reveal=True).value.reveal() == "s3cr3t-value"
    finally:
        vault.close()


def _with(*args: Any) -> Any:
    def init(self: Any, credential: Any = None, transport: Any = None) -> None:
        self._credentials = self._credential = args[0]
        self._transport = args[1] if len(args) > 1 else None

    return init


def test_an_unreachable_cloud_provider_leaves_the_passphrase_to_open_the_vault(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    factory.init_vault(home=home, method=UnlockMethod.PASSPHRASE, passphrase=PASS, env={})
    cfg = load_config(home)
    assert cfg is not None
    storage = factory.open_storage(cfg.storage)
    vault_id = str(storage.get_setting("vault_id"))
    with aws_peer.fake_credentials():
        made = provider_kind("aws-kms").create(
            "cloud", aws_peer.options(create_key="true"), _ctx(storage, vault_id, {})
        )
        made.config["endpoint_url"] = aws_peer.closed_port_url()  # the KMS is gone
        _add(storage, vault_id, "cloud", "aws-kms", made)
        made.provider.close()
        storage.close()
        vault = factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS})
        try:
            vault.create_project("payments")
            vault.set(REF, SecretValue("v"))  # opened by the passphrase, passed over KMS
        finally:
            vault.close()
        vault = factory.open_vault(home=home, env={})
        try:
            # Neither opens it now: the error names both, the KMS's reason first.
            with pytest.raises(KeyProviderError) as err:
                vault.get(REF, reveal=True)
            assert "cloud: AWS KMS Decrypt" in err.value.message
            assert "EndpointConnectionError" in err.value.message
            assert "local:" in err.value.message
        finally:
            vault.close()
