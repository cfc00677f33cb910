"""TLS: a server with a private CA is trusted only through SEALBOX_CACERT / cacert=."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.client.live import Live, make_vault, serving

from sealbox import errors
from sealbox.client import Client
from sealbox.factory import open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealbox test")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_live(tmp_path: Path) -> Iterator[tuple[Live, Path]]:
    cert, key = _self_signed(tmp_path)
    token = make_vault(tmp_path)
    vault = open_vault(source="api")
    try:
        app = create_app(vault, ServerSettings())
        with serving(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
            yield Live(url, token, tmp_path / "home", 0, vault), cert
    finally:
        vault.close()


def test_tls_needs_the_ca(tls_live: tuple[Live, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    live, cert = tls_live
    assert live.url.startswith("https://")
    with pytest.raises(errors.BackendUnavailable) as exc:
        Client(live.url, live.token).list_projects()
    assert "could not be verified" in exc.value.message
    assert "SEALBOX_CACERT" in (exc.value.hint or "")
    assert live.token not in exc.value.diagnostics()
    assert Client(live.url, live.token, cacert=str(cert)).list_projects() == []
    monkeypatch.setenv("SEALBOX_CACERT", str(cert))
    assert Client(live.url, live.token).list_projects() == []


def test_plain_http_to_a_tls_server_and_back(tls_live: tuple[Live, Path]) -> None:
    live, _ = tls_live
    with pytest.raises(errors.BackendUnavailable):
        Client(live.url.replace("https://", "http://"), live.token).list_projects()


def test_tls_to_a_plain_server(tmp_path: Path) -> None:
    from tests.unit.client.live import live_server

    with live_server(tmp_path) as live:
        with pytest.raises(errors.BackendUnavailable) as exc:
            Client(live.url.replace("http://", "https://"), live.token).list_projects()
        assert "TLS handshake" in exc.value.message


def test_a_missing_ca_file_is_invalid_input(tmp_path: Path) -> None:
    client = Client("https://127.0.0.1:1", "sbx_s_" + "X" * 49, cacert=str(tmp_path / "no.pem"))
    with pytest.raises(errors.InvalidInput, match="CA bundle"):
        client.list_projects()
