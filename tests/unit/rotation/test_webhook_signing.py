"""Standard Webhooks signatures: the spec's known answer, round trips, the rollover's two
secrets, and every way a webhook is refused (forged, altered, replayed, malformed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

import pytest
from tests.rotation_fake import FakeContext

from sealbox.client import WebhookVerifier, sign_webhook, verify_webhook, verify_webhook_headers
from sealbox.client import webhooks as webhooks_module
from sealbox.client.webhooks import secret_key
from sealbox.errors import InvalidInput, RotationFailed, WebhookVerificationFailed
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.registry import rotator
from sealbox.rotation.webhook import WebhookRotator

# The known answer of the Standard Webhooks reference libraries' tests.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_PAYLOAD = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_800_000_000
BODY = b'{"type":"invoice.paid","data":{"id":"in_1"}}'


def new_secret() -> SecretValue:
    return WebhookRotator().create(Ctx({}))


def test_the_spec_known_answer() -> None:
    headers = sign_webhook(SPEC_PAYLOAD, SPEC_SECRET, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP)
    assert headers.signature == SPEC_SIGNATURE
    assert headers.as_dict() == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    # The spec's reference reads the key with or without the prefix; so do we.
    assert secret_key(SPEC_SECRET) == secret_key(SPEC_SECRET.removeprefix("whsec_"))


def test_the_signature_is_hmac_sha256_over_id_timestamp_body() -> None:
    secret = new_secret()
    headers = sign_webhook(BODY, secret, msg_id="msg_1", timestamp=NOW)
    key = base64.b64decode(secret.reveal().removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_1.%d." % NOW + BODY, hashlib.sha256).digest()
    assert headers.signature == "v1," + base64.b64encode(mac).decode()


def test_round_trip_with_every_secret_form() -> None:
    secret = new_secret()
    for form in (secret, secret.reveal(), secret_key(secret)):
        headers = sign_webhook(BODY, form, timestamp=NOW)
        assert headers.id.startswith("msg_")
        got = verify_webhook_headers(BODY, headers.as_dict(), secrets=[form], now=NOW + 1)
        assert got == headers.id
        verify_webhook(
            BODY, headers.signature, headers.timestamp, msg_id=headers.id, secrets=[form], now=NOW
        )


def test_headers_are_read_in_any_case() -> None:
    secret = new_secret()
    headers = {k.title(): v for k, v in sign_webhook(BODY, secret, timestamp=NOW).as_dict().items()}
    verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW)


def test_previous_secret_is_accepted_during_the_grace_window() -> None:
    old, new = new_secret(), new_secret()
    by_old = sign_webhook(BODY, old, timestamp=NOW).as_dict()
    by_new = sign_webhook(BODY, new, timestamp=NOW).as_dict()
    for headers in (by_old, by_new):
        verify_webhook_headers(BODY, headers, secrets=[new, old], now=NOW)
    # After the grace window the receiver holds only the new one: the old is refused.
    with pytest.raises(WebhookVerificationFailed, match="no signature") as refused:
        verify_webhook_headers(BODY, by_old, secrets=[new], now=NOW)
    assert refused.value.reason == "signature"


def test_a_sender_may_sign_with_both_secrets() -> None:
    old, new = new_secret(), new_secret()
    both = sign_webhook(BODY, [new, old], timestamp=NOW)
    assert len(both.signature.split(" ")) == 2
    verify_webhook_headers(BODY, both.as_dict(), secrets=[old], now=NOW)
    verify_webhook_headers(BODY, both.as_dict(), secrets=[new], now=NOW)


def test_an_unknown_secret_is_refused() -> None:
    headers = sign_webhook(BODY, new_secret(), timestamp=NOW).as_dict()
    with pytest.raises(WebhookVerificationFailed) as refused:
        verify_webhook_headers(BODY, headers, secrets=[new_secret(), new_secret()], now=NOW)
    assert refused.value.reason == "signature"
    assert headers["webhook-signature"][3:] not in str(refused.value)


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_a_timestamp_outside_the_tolerance_is_refused(offset: int) -> None:
    secret = new_secret()
    headers = sign_webhook(BODY, secret, timestamp=NOW + offset).as_dict()
    with pytest.raises(WebhookVerificationFailed, match="timestamp is too") as refused:
        verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW)
    assert refused.value.reason == "timestamp"
    # Inside a wider tolerance the same webhook passes: only the clock refused it.
    verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW, tolerance=20_000)


def test_a_replay_with_a_fresh_timestamp_does_not_verify() -> None:
    """An attacker who resends an old webhook with a new timestamp breaks the signature."""
    secret = new_secret()
    headers = sign_webhook(BODY, secret, timestamp=NOW - 3600).as_dict()
    headers["webhook-timestamp"] = str(NOW)
    with pytest.raises(WebhookVerificationFailed) as refused:
        verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW)
    assert refused.value.reason == "signature"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b + b" ",
        lambda b: b.replace(b"in_1", b"in_2"),
        lambda b: b"",
        lambda b: b'{"type":"invoice.paid","data":{"id":"in_1"}}\n',
    ],
)
def test_a_tampered_payload_is_refused(tamper: object) -> None:
    secret = new_secret()
    headers = sign_webhook(BODY, secret, timestamp=NOW).as_dict()
    with pytest.raises(WebhookVerificationFailed):
        verify_webhook_headers(tamper(BODY), headers, secrets=[secret], now=NOW)  # type: ignore[operator]


def test_a_changed_id_is_refused() -> None:
    secret = new_secret()
    headers = sign_webhook(BODY, secret, msg_id="msg_a", timestamp=NOW).as_dict()
    headers["webhook-id"] = "msg_b"
    with pytest.raises(WebhookVerificationFailed):
        verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-signature": None}, "lacks the header webhook-signature"),
        ({"webhook-id": None}, "lacks the header webhook-id"),
        ({"webhook-timestamp": None}, "lacks the header webhook-timestamp"),
        ({"webhook-timestamp": "1800000000.5"}, "not whole Unix seconds"),
        ({"webhook-timestamp": "soon"}, "not whole Unix seconds"),
        ({"webhook-timestamp": "-1"}, "not whole Unix seconds"),
        ({"webhook-id": "msg.1"}, "spaces or dots"),
        ({"webhook-signature": "v1"}, "not version,signature"),
        ({"webhook-signature": "v1,"}, "not version,signature"),
        ({"webhook-signature": "v1,not base64!"}, "not base64"),
        ({"webhook-signature": "v1,abc"}, "not base64"),
        ({"webhook-signature": "t=1,v1=abcd"}, "not version,signature"),
        ({"webhook-signature": "v1,AAAA " * 20}, "more than 16 signatures"),
        ({"webhook-signature": "v1," + "A" * 5000}, "longer than 4096"),
    ],
)
def test_a_malformed_header_is_refused_clearly(change: dict[str, str | None], message: str) -> None:
    secret = new_secret()
    headers: dict[str, str] = sign_webhook(BODY, secret, timestamp=NOW).as_dict()
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    with pytest.raises(WebhookVerificationFailed, match=message) as refused:
        verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW)
    assert refused.value.reason == "malformed"


def test_other_signature_versions_are_skipped_not_trusted() -> None:
    secret = new_secret()
    good = sign_webhook(BODY, secret, timestamp=NOW).as_dict()
    only_v1a = dict(good, **{"webhook-signature": "v1a," + good["webhook-signature"][3:]})
    with pytest.raises(WebhookVerificationFailed, match="no v1"):
        verify_webhook_headers(BODY, only_v1a, secrets=[secret], now=NOW)
    mixed = dict(good, **{"webhook-signature": "v2,AAAA " + good["webhook-signature"]})
    verify_webhook_headers(BODY, mixed, secrets=[secret], now=NOW)


def test_no_secret_is_a_mistake_not_an_open_door() -> None:
    headers = sign_webhook(BODY, new_secret(), timestamp=NOW).as_dict()
    with pytest.raises(InvalidInput, match="at least one secret"):
        verify_webhook_headers(BODY, headers, secrets=[], now=NOW)
    with pytest.raises(InvalidInput, match="at least one secret"):
        sign_webhook(BODY, [])


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not*base64", "", "whsec_AAAAA"])
def test_a_bad_secret_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        sign_webhook(BODY, bad)
    if bad.removeprefix("whsec_"):
        assert bad.removeprefix("whsec_") not in str(refused.value)


def test_a_negative_tolerance_is_a_mistake() -> None:
    secret = new_secret()
    headers = sign_webhook(BODY, secret, timestamp=NOW).as_dict()
    with pytest.raises(InvalidInput, match="tolerance"):
        verify_webhook_headers(BODY, headers, secrets=[secret], now=NOW, tolerance=-1)


def test_a_source_error_propagates_and_the_next_call_fetches_again() -> None:
    from sealbox.errors import BackendUnavailable

    secret = new_secret()
    calls = {"n": 0}

    def flaky() -> list[SecretValue]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise BackendUnavailable("the sealbox server at http://x is unavailable")
        return [secret]

    verifier = WebhookVerifier(flaky, clock=Clock())
    headers = sign_webhook(BODY, secret, timestamp=NOW).as_dict()
    with pytest.raises(BackendUnavailable):
        verifier.verify(BODY, headers, now=NOW)
    verifier.verify(BODY, headers, now=NOW)
    assert calls["n"] == 2


def test_sign_refuses_an_id_with_a_dot() -> None:
    with pytest.raises(InvalidInput, match="without spaces or dots"):
        sign_webhook(BODY, new_secret(), msg_id="msg.1")


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhooks_module.hmac, "compare_digest", spy)
    old, new = new_secret(), new_secret()
    headers = sign_webhook(BODY, old, timestamp=NOW).as_dict()
    verify_webhook_headers(BODY, headers, secrets=[new, old], now=NOW)
    # One comparison per (secret, offered signature) until the match: new, then old.
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)


def test_headers_repr_hides_the_signature() -> None:
    headers = sign_webhook(BODY, new_secret(), timestamp=NOW)
    assert headers.signature[3:] not in repr(headers)


class Source:
    """What sealbox serves for the secret, changed by the test as a rotation would."""

    def __init__(self, *values: SecretValue) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> list[SecretValue]:
        self.calls += 1
        return list(self.values)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_verifier_caches_and_follows_a_rollover_once() -> None:
    old, new = new_secret(), new_secret()
    source, clock = Source(old), Clock()
    verifier = WebhookVerifier(source, cache_ttl=60, refresh_after=5, clock=clock)
    by_old = sign_webhook(BODY, old, timestamp=NOW).as_dict()
    by_new = sign_webhook(BODY, new, timestamp=NOW).as_dict()
    assert verifier.verify(BODY, by_old, now=NOW) == by_old["webhook-id"]
    verifier.verify(BODY, by_old, now=NOW)
    assert source.calls == 1  # cached
    source.values = [new, old]  # the rotation finished: new is current, old previous
    clock.t += 1
    # A signature by the new secret within refresh_after of the last fetch: refused, no fetch.
    with pytest.raises(WebhookVerificationFailed):
        verifier.verify(BODY, by_new, now=NOW)
    assert source.calls == 1
    clock.t += 5
    assert verifier.verify(BODY, by_new, now=NOW) == by_new["webhook-id"]
    assert source.calls == 2  # one refresh, then the retry passed
    verifier.verify(BODY, by_old, now=NOW)  # previous still accepted
    source.values = [new]  # the grace window is over
    clock.t += 60  # the cache expires
    with pytest.raises(WebhookVerificationFailed):
        verifier.verify(BODY, by_old, now=NOW)
    assert source.calls == 3


def test_verifier_does_not_refetch_for_a_replay_or_a_malformed_header() -> None:
    secret = new_secret()
    source, clock = Source(secret), Clock()
    verifier = WebhookVerifier(source, refresh_after=0, clock=clock)
    stale = sign_webhook(BODY, secret, timestamp=NOW - 900).as_dict()
    with pytest.raises(WebhookVerificationFailed, match="too old"):
        verifier.verify(BODY, stale, now=NOW)
    with pytest.raises(WebhookVerificationFailed, match="lacks"):
        verifier.verify(BODY, {}, now=NOW)
    assert source.calls == 1


def test_verifier_from_a_client_without_reads_by_stage_uses_current() -> None:
    current = new_secret()

    class Reader:
        def get(self, ref: SecretRef) -> object:
            class Read:
                value = current

            return Read()

    verifier = WebhookVerifier.from_client(Reader(), SecretRef("p", "dev", "HOOK"))
    verifier.verify(BODY, sign_webhook(BODY, current).as_dict())


def test_verifier_from_a_client_reads_previous_by_stage_when_it_can() -> None:
    from sealbox.errors import NotFound

    current, previous = new_secret(), new_secret()
    grace = {"open": True}

    class Reader:
        def get(self, ref: SecretRef, *, stage: str = "current") -> object:
            if stage == "previous" and not grace["open"]:
                raise NotFound(f"{ref} has no readable previous version")
            value = previous if stage == "previous" else current

            class Read:
                pass

            read = Read()
            read.value = value  # type: ignore[attr-defined]
            return read

    clock = Clock()
    verifier = WebhookVerifier.from_client(
        Reader(), SecretRef("p", "dev", "HOOK"), cache_ttl=10, clock=clock
    )
    by_previous = sign_webhook(BODY, previous).as_dict()
    verifier.verify(BODY, by_previous)
    grace["open"] = False
    clock.t += 10
    with pytest.raises(WebhookVerificationFailed):
        verifier.verify(BODY, by_previous)


# -- the webhook rotator ---------------------------------------------------------------------


def test_registry_finds_the_webhook_rotator() -> None:
    assert isinstance(rotator("webhook"), WebhookRotator)


@pytest.mark.parametrize(("length", "prefix"), [(None, None), ("24", None), ("64", "acme_wh_")])
def test_rotator_makes_standard_secrets(length: str | None, prefix: str | None) -> None:
    options = {k: v for k, v in {"length": length, "prefix": prefix}.items() if v is not None}
    r = WebhookRotator()
    r.check(options)
    values = {r.create(Ctx(options)).reveal() for _ in range(20)}
    assert len(values) == 20
    for value in values:
        assert value.startswith(prefix or "whsec_")
        assert len(secret_key(value)) == int(length or 32)
        r.test(Ctx(options, SecretValue(value), current=new_secret()))


def test_rotator_test_refuses_a_value_off_policy() -> None:
    r = WebhookRotator()
    with pytest.raises(RotationFailed, match="not a webhook secret of its policy"):
        r.test(Ctx({}, SecretValue("not-a-webhook-secret")))
    with pytest.raises(RotationFailed, match="base64 of 32 bytes"):
        r.test(Ctx({}, SecretValue("whsec_" + base64.b64encode(b"x" * 24).decode())))
    same = new_secret()
    with pytest.raises(RotationFailed, match="signs like the current one"):
        r.test(Ctx({}, same, current=same))


def test_rotator_without_programs_tells_no_upstream() -> None:
    r = WebhookRotator()
    ctx = Ctx({}, new_secret(), current=new_secret())
    r.set(ctx)
    r.finish(ctx)
    r.undo(ctx)
    assert ctx.notes == ["no receiver to tell (sender and receiver read sealbox)"]


@pytest.mark.parametrize(
    "options",
    [
        {"length": "16"},
        {"length": "65"},
        {"length": "many"},
        {"prefix": "whsec"},
        {"prefix": "wh sec_"},
        {"prefix": "a" * 40 + "_"},
        {"secret": "x"},
        {"set": "'unbalanced"},
        {"timeout": "0"},
    ],
)
def test_rotator_refuses_bad_options_at_configure_time(options: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        WebhookRotator().check(options)


def test_an_expired_verifier_reads_again_within_refresh_after() -> None:
    """expire() (a change event) is not rate-limited like a mismatch's refresh: the next
    verify reads at once, and a value removed meanwhile (revoked) is refused."""
    old, new = new_secret(), new_secret()
    source, clock = Source(old), Clock()
    verifier = WebhookVerifier(source, cache_ttl=3600, refresh_after=3600, clock=clock)
    by_old = sign_webhook(BODY, old, timestamp=NOW).as_dict()
    by_new = sign_webhook(BODY, new, timestamp=NOW).as_dict()
    verifier.verify(BODY, by_old, now=NOW)
    source.values = [new, old]
    with pytest.raises(WebhookVerificationFailed):  # a mismatch: no refresh due yet
        verifier.verify(BODY, by_new, now=NOW)
    assert source.calls == 1
    verifier.expire()
    verifier.verify(BODY, by_new, now=NOW)
    verifier.verify(BODY, by_old, now=NOW)
    assert source.calls == 2
    source.values = [new]
    verifier.expire()
    with pytest.raises(WebhookVerificationFailed):
        verifier.verify(BODY, by_old, now=NOW)
    assert source.calls == 3
    verifier.close()  # nothing followed: a no-op


def Ctx(
    options: Mapping[str, str],
    pending: SecretValue | None = None,
    current: SecretValue | None = None,
) -> FakeContext:
    return FakeContext(
        options, pending=pending, current=current, ref=SecretRef("p", "dev", "WEBHOOK_SECRET")
    )
