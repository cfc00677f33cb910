"""The generic detector's context model and the confidence of findings.

One test per false-positive / false-negative class of issue 14, with values written for these
tests (random-looking strings typed here, never copied from a corpus). Findings are taken from
an engine on the built-in rules at ``low`` so each case can say which confidence it expects;
"reported" means at least the default ``medium``.
"""

from __future__ import annotations

import json

import pytest

from sealbox.errors import InvalidInput
from sealbox.scan.context import FileKind, file_kind, is_test_path, load_model, parse_model
from sealbox.scan.context import split_key as split
from sealbox.scan.detectors.generic import MAX_HITS, is_fixture
from sealbox.scan.engine import Engine, EngineOptions
from sealbox.scan.findings import Confidence, Finding, ScanResult
from sealbox.scan.report import to_json, to_sarif
from sealbox.scan.rules import load_rules
from sealbox.scan.text import ScanText


@pytest.fixture(scope="module")
def low_engine() -> Engine:
    return Engine(load_rules(), options=EngineOptions(min_confidence=Confidence.LOW))


def found(engine: Engine, text: str, path: str) -> list[Finding]:
    return engine.scan_text(ScanText(text.encode(), path))


def reported(engine: Engine, text: str, path: str) -> list[Finding]:
    return [f for f in found(engine, text, path) if f.confidence.at_least(Confidence.MEDIUM)]


# --- the model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "cls"),
    [
        ("DB_PASSWORD", "password"),
        ("db_pass", "password"),
        ("sapassword", "password"),
        ("JENKINS_PASS", "password"),
        ("oauthToken", "token"),
        ("x-auth-token", "token"),
        ("apikey", "token"),
        ("consumer_key", "key"),
        ("APP_KEY", "key"),
        ("client_key", "key"),
        ("key", "key"),
        ("client_secret", "secret"),
        ("nonce", "nonce"),
        ("password_salt", "nonce"),
        ("oauth_verifier", "nonce"),
        ("password_field", None),
        ("token_url", None),
        ("keyId", None),
        ("monkey", None),
        ("bypass", None),
        ("compass", None),
        ("public_key", None),
        ("primary_key", None),
        ("LABEL_PASSWORD", None),
        ("forgotPasswordTooltip", None),
    ],
)
def test_key_class_is_decided_by_the_last_word(key: str, cls: str | None) -> None:
    got = load_model().key_class(key)
    assert (got.name if got else None) == cls


def test_split_key() -> None:
    assert split("DB_PASSWORD") == ["db", "password"]
    assert split("oauthTokenSecret") == ["oauth", "token", "secret"]
    assert split("ds1.password2") == ["ds", "1", "password"]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("src/app/db.py", FileKind.CODE),
        ("lib/tasks/cleanup.rake", FileKind.CODE),
        ("ext/protocol.pyx", FileKind.CODE),
        ("deploy/values.yaml", FileKind.CONFIG),
        (".env.production", FileKind.CONFIG),
        ("docs/setup.md", FileKind.DOCS),
        ("site/index.html", FileKind.DOCS),
        ("conf/app.ini.j2", FileKind.TEMPLATE),
        ("settings.example", FileKind.TEMPLATE),
        ("web/package-lock.json", FileKind.LOCKFILE),
        ("Cargo.lock", FileKind.LOCKFILE),
        ("README", FileKind.OTHER),
    ],
)
def test_file_kind(path: str, kind: str) -> None:
    assert file_kind(path) == kind


def test_test_paths() -> None:
    assert is_test_path("pkg/server/testdata/users.json")
    assert is_test_path("spec/models/user_spec.rb") and is_test_path("src/auth.test.ts")
    assert is_test_path("app/test_login.py") and is_test_path("pkg/auth_test.go")
    assert not is_test_path("src/contest/app.py")


def test_model_errors_name_the_problem() -> None:
    with pytest.raises(InvalidInput, match="version must be 1"):
        parse_model("version = 2\n")
    with pytest.raises(InvalidInput, match="max_confidence"):
        parse_model(
            'version = 1\n[class.x]\nwords = ["x"]\nmin_length = 1\nmin_entropy = 1\n'
            'strong_length = 1\nstrong_entropy = 1\nmax_confidence = "very"\n'
        )
    with pytest.raises(InvalidInput, match="not valid TOML"):
        parse_model("version = = 1")


# --- false positives ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        # markdown link references whose name holds a secret word
        ("[token-auth]: token-auth.md#rotating-keys\n", "docs/auth.md"),
        ("[credentials]: ../guide/credentials.html\n", "README.md"),
        # snippets in docs whose right-hand side is a call or an expression
        ("token = client.fetch_token(\n", "docs/quickstart.md"),
        (">>> credentials = parse_qs(body)\n", "docs/oauth.rst"),
        ("secret_key = settings.SECRET_SOURCE\n", "docs/config.md"),
        ("<pre>api_token = session.get_api_token(user)</pre>\n", "site/api.html"),
    ],
)
def test_docs_links_and_expressions_are_not_secrets(
    low_engine: Engine, text: str, path: str
) -> None:
    assert found(low_engine, text, path) == []


@pytest.mark.parametrize(
    "line",
    [
        "DB_PASSWORD=###DB_PASSWORD###",
        "password: <the password of the reporting user>",
        'api_token = "<paste your token here>"',
        "DB_PASSWORD=${DB_PASSWORD:?set DB_PASSWORD first}",
        'ADMIN_PASSWORD=${ADMIN_PASSWORD:-""}',
        "SESSION_SECRET=$(openssl rand -hex 32)",
        "password: ((concourse-db-password))",
        "secret_key = __SECRET_KEY__",
    ],
)
def test_templates_and_shell_expansions_are_placeholders(low_engine: Engine, line: str) -> None:
    assert found(low_engine, line + "\n", "deploy/app.env") == []


def _pem(kind: str, body: str, extra: str = "") -> str:
    dash = "-" * 5
    return f"{dash}BEGIN {kind}{dash}\n{extra}{body}\n{dash}END {kind}{dash}\n"


BODY = "\n".join(
    [
        "MIIEpQIBAAKCAQEA3Tz2mFxq8vJk5Lw0RbN7cYp1sHd4uGe9aWq6tKr2ZoXyVnBj",
        "Qf8LmC3hS0dPuE7gIk2RtYvW5xN4aJ1bO6zT9eHcK3sGpD8fMjQ2lUn7wVrX0yBi",
        "Zk4Ej9Lo1Pq6Rs3Tu8Vw2Xy5Za0Bc7De4Fg1Hi8Jk5Lm2No9Pq6Rs3Tu0Vw7Xy4Za",
    ]
)


def test_usable_private_key_is_high(low_engine: Engine) -> None:
    [f] = found(low_engine, _pem("RSA PRIVATE KEY", BODY), "deploy/id_rsa")
    assert f.confidence is Confidence.HIGH


@pytest.mark.parametrize(
    "text",
    [
        _pem("ENCRYPTED PRIVATE KEY", BODY),
        _pem("RSA PRIVATE KEY", BODY, "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D\n\n"),
        # an OpenSSH key whose cipher is aes256-ctr: a passphrase protects it
        _pem(
            "OPENSSH PRIVATE KEY",
            "b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABBx7Kq\n"
            "Lm2Np4Rs6Tu8Vw0Xy2Za4Bc6De8Fg0Hi2Jk4Lm6No8Pq0Rs2Tu4Vw6Xy8Za0Bc2De4",
        ),
        # a header in code that builds or parses keys: no body follows
        'pem = "-----BEGIN RSA PRIVATE KEY-----\\n" + load_body(path)\n',
        # a made-up body
        _pem("PRIVATE KEY", "\n".join(["c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"] * 3)),
        # an elided body in docs
        _pem("RSA PRIVATE KEY", BODY.split("\n")[0] + "\n...\n"),
    ],
)
def test_keys_that_are_not_usable_secrets_are_low(low_engine: Engine, text: str) -> None:
    hits = found(low_engine, text, "keys/fixture.py")
    assert hits and all(f.confidence is Confidence.LOW for f in hits)
    assert reported(low_engine, text, "keys/fixture.py") == []


def test_unencrypted_openssh_key_is_high(low_engine: Engine) -> None:
    body = (
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACBq7Kd2Lm9Np4Rs6Tu8Vw0Xy2Za4Bc6De8Fg0Hi2Jk4Lm6No8Pq0Rs2Tu4V"
    )
    [f] = found(low_engine, _pem("OPENSSH PRIVATE KEY", body), "deploy/id_ed25519")
    assert f.confidence is Confidence.HIGH


@pytest.mark.parametrize(
    "line",
    [
        'password = "admin123"',
        'token = "access-token-123"',
        'client_secret = "0123456789abcdefXq"',
        'refresh_token = "refresh98765x"',
        'password = "p@ssw0rd!"',
        'password = "147147147"',
    ],
)
def test_obvious_fixtures_are_low(low_engine: Engine, line: str) -> None:
    hits = found(low_engine, line + "\n", "config/app.ini")
    assert [f.confidence for f in hits] == [Confidence.LOW]


def test_truncated_provider_tokens_are_low(low_engine: Engine) -> None:
    # a GitHub prefix too short for the ghp_ rule: a truncated or made-up example
    [f] = found(low_engine, 'GITHUB_TOKEN = "ghp_Qz7vTm2xLk"\n', "ci/env.cfg")
    assert (f.rule_id, f.confidence) == ("generic-secret-assignment", Confidence.LOW)


@pytest.mark.parametrize(
    "line",
    [
        "PROXY=http://deploy:Kq7vRm2xLp9@proxy.example.com:3128/",
        "mirror = https://ci:Tz4wQn8bVc6@artifacts.test/repo",
        "DSN=postgres://app:Test%4012345@db.internal/app",
    ],
)
def test_url_credentials_on_example_hosts_or_fixtures_are_low(
    low_engine: Engine, line: str
) -> None:
    hits = found(low_engine, line + "\n", "deploy/app.env")
    assert hits and all(f.confidence is Confidence.LOW for f in hits)


def test_translations_and_prose_are_not_secrets(low_engine: Engine) -> None:
    text = json.dumps(
        {
            "LABEL_PASSWORD": "Contrasenya",
            "MANDATORY_NEW_PASSWORD": "Bitte ein neues Passwort eingeben",
            "password_hint": "Mindestens acht Zeichen",
            "PASSWORD_CHANGED": "パスワードが変更されました",
        },
        ensure_ascii=False,
        indent=1,
    )
    assert found(low_engine, text, "i18n/de.json") == []


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("password: $2b$12$Qm3vT9zL1xW8pR4nK6sJ2uHcYbE5dF7gA0iO3lN9tM8rV6wX1yZ2.", "users.yml"),
        ('"privateKey": "certs/staging/server.key.pem"', "conf/tls.json"),
        ("# app.signing.privateKey=classpath:keys/signing.jks", "app.properties"),
        ('"github_app_authorization": "GitHubAppAuthorizationEvent"', "events.json"),
        ('{"key": "billingAddress2"}', "forms/order.json"),
        ("CACHE_KEY = 'orders:pending:summary'", "conf/cache.cfg"),
        ("lockfile_token: sha512-Qm3vT9zL1xW8pR4nK6sJ2uHcYbE5dF7gA0iO3lN9tM8rV6wX", "yarn.lock"),
    ],
)
def test_hashes_paths_identifiers_and_lockfiles_are_not_secrets(
    low_engine: Engine, line: str, path: str
) -> None:
    assert found(low_engine, line + "\n", path) == []


# --- false negatives ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("JENKINS_PASS=mqzvtkhw", "deploy/ci.env"),  # letters only
        ('password = "wqxjvu"', "app/settings.py"),  # 6 characters
        ("db_password: 4827193", "conf/db.yaml"),  # digits only
        ("POSTGRES_PASSWORD: rtvbnmqa", "docker-compose.yml"),  # entropy between 2 and 3
        ('      password = Some("kvxqtz"),', "src/main/App.scala"),
        ('    private static final String DB_PASS = "hx7Kq2";', "src/Db.java"),
        ("if ($auth['password'] === 'zqv81k') {", "src/Auth.php"),
        ('public static string Password => "mbvrtq";', "src/Conf.cs"),
    ],
)
def test_password_keys_take_weak_looking_passwords(
    low_engine: Engine, line: str, path: str
) -> None:
    hits = reported(low_engine, line + "\n", path)
    assert [f.rule_id for f in hits] == ["generic-secret-assignment"]


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ('nonce = "Xk2Lq9Tz4Vw7Rp3M"', "src/oauth.py"),
        ("client_salt: Qe7Lw2Rt9Zx4Pn6K", "conf/auth.yaml"),
        ('"seed": "bT5xQ8mL2wR9vK4zP7nJ"', "conf/wallet.json"),
        ('        .oauth_verifier("Hq8Tz3Lk9Vx2Wm5R")', "src/OAuthTest.java"),
        ('consumer_key = "Zq4Lm8Xv2Tk9Rb6W"', "lib/client.rb"),
        ("APP_KEY=base64:Qm9vVXz2Lk8Tq4Rw7Yp3Nb6M", ".env"),
        ('{"key": "Tq9Zx4Lm7Vb2Rk8Wp3Ny6Hc5"}', "fixtures/signing.json"),
        ("auth: Lm4Qz8Tx2Vk9Rw7P", "conf/registry.yml"),
        ("db_pass=Hn3Kq8Zt", "conf/app.cfg"),
        ("GANDI_API_KEY=qwhtzkpmvbnrlcxsdfgjyuie", "deploy/.env"),  # random letters only
        ("HEROKU_API_KEY=5f2b9c1e-7a4d-4e8b-9c3f-1a2b3c4d5e6f", "deploy/.env"),  # GUID-shaped
    ],
)
def test_key_names_now_looked_at(low_engine: Engine, line: str, path: str) -> None:
    assert reported(low_engine, line + "\n", path)


@pytest.mark.parametrize(
    ("line", "path"),
    [
        # JSON with escaped quotes inside a string
        ('body := "{\\"access_token\\":\\"Lq8Zt3Vx9Km2Rw7Pb4Nc\\",\\"x\\":1}"', "api/client.go"),
        # credentials in URL query parameters, in code
        ("cb = 'https://api.example.org/cb?secret=Zk7Qm2Xv9Lt4Rw8P&next=/home'", "app/views.py"),
        ('url = base + "&oauth_token=Tq4Vz8Lm2Xk9Rb7W"', "lib/oauth.rb"),
        # command-line flags
        ('java -Djavax.net.ssl.keyStorePassword=Rt5Kq9Zx "$@"', "bin/run.sh"),
        # Authorization values whose header name is elsewhere
        ('assert.Equal(t, "Basic dXNlcjpRN3ZUMnhLOQ==", got)', "pkg/auth_test.go"),
        ('req.headers["Authorization"] = (\n    "Bearer Zx8Qm3Lt9Vk2Rw7Pb4Nc")', "app/api.py"),
        # a variable that is set from a quoted dotenv line
        ('docker run -e "SA_PASSWORD=Vq7#kLm2" mssql', "scripts/db.cmd"),
        ('nc, _ := nats.Connect(fmt.Sprintf("nats://svc:Qz7vTm@%s:%d", h, p))', "main.go"),
    ],
)
def test_syntax_now_parsed(low_engine: Engine, line: str, path: str) -> None:
    assert reported(low_engine, line + "\n", path)


def test_letters_and_guids_need_the_right_key(low_engine: Engine) -> None:
    assert found(low_engine, "api_key = 'lettersonlyword'\n", "conf/a.cfg") == []
    guid = "5f2b9c1e-7a4d-4e8b-9c3f-1a2b3c4d5e6f"
    assert found(low_engine, f"password = '{guid}'\n", "conf/a.cfg") == []


def test_setters_set_and_getters_get(low_engine: Engine) -> None:
    assert reported(low_engine, 'user.setPassword("Kq7vRm2x");\n', "src/Seed.java")
    assert found(low_engine, 'String p = cfg.getPassword("primary");\n', "src/Cfg.java") == []
    assert found(low_engine, 'h = hash_password("Kq7vRm2x")\n', "app/users.py") == []


def test_unquoted_values_in_code_stay_expressions(low_engine: Engine) -> None:
    assert found(low_engine, "password = build_password(user_seed)\n", "app/x.py") == []
    assert found(low_engine, "token = Lq8Zt3Vx9Km2Rw7Pb4Nc\n", "app/x.py") == []
    assert reported(low_engine, "token = Lq8Zt3Vx9Km2Rw7Pb4Nc\n", "conf/x.cfg")


def test_unquoted_value_must_end_the_line(low_engine: Engine) -> None:
    assert found(low_engine, "password: Qx7Lm2Tz is what it says\n", "notes.yml") == []
    line = "{user: svc, password: Qx7Lm2Tz, permissions: $all}\n"
    assert reported(low_engine, line, "server.conf")


# --- confidence: model, reports, bounds -----------------------------------------------------


def test_strong_values_are_high_and_weak_ones_medium(low_engine: Engine) -> None:
    [strong] = found(low_engine, 'api_token = "Qm3vT9zL1xW8pR4nK6sJ2uHc"\n', "app/c.py")
    [weak] = found(low_engine, 'password = "kvxqtz"\n', "app/c.py")
    assert (strong.confidence, weak.confidence) == (Confidence.HIGH, Confidence.MEDIUM)


def test_docs_and_templates_are_one_step_less_sure(low_engine: Engine) -> None:
    line = "DB_PASSWORD=Qm3vT9zL1xW8\n"
    [conf] = found(low_engine, line, "deploy/app.env")
    [docs] = found(low_engine, line, "docs/deploy.md")
    [tmpl] = found(low_engine, line, "deploy/app.env.j2")
    assert conf.confidence is Confidence.HIGH
    assert docs.confidence is Confidence.MEDIUM and tmpl.confidence is Confidence.MEDIUM


def test_default_engine_reports_medium_and_up() -> None:
    engine = Engine(load_rules())
    assert engine.scan_text(ScanText(b'password = "admin123"\n', "a.cfg")) == []
    assert len(engine.scan_text(ScanText(b'password = "kvxqtz"\n', "a.cfg"))) == 1


def test_confidence_in_json_and_sarif(low_engine: Engine) -> None:
    text = 'password = "admin123"\napi_token = "Qm3vT9zL1xW8pR4nK6sJ2uHc"\n'
    findings = found(low_engine, text, "conf/app.cfg")
    res = ScanResult(findings=findings, files_scanned=1)
    doc = json.loads(to_json(res, findings))
    assert [f["confidence"] for f in doc["findings"]] == ["low", "high"]
    results = json.loads(to_sarif(res, findings, "0"))["runs"][0]["results"]
    assert [r["rank"] for r in results] == [30.0, 90.0]
    assert [r["properties"]["confidence"] for r in results] == ["low", "high"]
    assert [r["level"] for r in results] == ["note", "warning"]  # medium severity, low = note


def test_is_fixture() -> None:
    assert is_fixture("secret123") and is_fixture("abcabcabc") and is_fixture("qwerty99")
    assert not is_fixture("Qm3vT9zL1xW8")


def test_a_rejected_candidate_does_not_hide_the_next_key(low_engine: Engine) -> None:
    # `key:` takes `"token1"` as its value (rejected), then `"token1":"…"` must still be seen
    data = 'x={key:"token1":"Qm3vT9zL1xW8pR4nK6sJ",key:"token2":"Zx8Qm3Lt9Vk2Rw7Pb4Nc"}\n'
    assert len(found(low_engine, data, "dist/app.min.js")) == 2


def test_non_utf8_and_minified_input_stay_bounded(low_engine: Engine) -> None:
    data = b'password = "\xff\xfe\xfd\xfc\xfb\xfa"\n' + b"".join(
        b'k%d={"password":"Qz%04dLm%04dTx"},' % (i, i, i) for i in range(3000)
    )
    hits = low_engine.hits(ScanText(data, "dist/app.min.cfg"))
    assert 0 < len(hits) <= MAX_HITS


# --- calls, tuple assignments and famous example passwords (dogfooding this repository) -------


@pytest.mark.parametrize(
    ("line", "path"),
    [
        # the literal is the first of several arguments: a name, not the secret
        ('    auth.login_password("zqmvtrwx", PW, actor)', "tests/test_login.py"),
        ("store.put_secret('Kv7qTz2mRw', payload)", "src/app/store.py"),
        ('    cfg.RegisterToken("Zt4wQm9vKr2p", opts...)', "pkg/cfg/load.go"),
        # the literal is the first target's value
        ('PROJECT, ENV, SECRET = "payments", "dev", "DB_URL"', "tests/test_matrix.py"),
        ('name, token := "reports", os.Getenv("T")', "cmd/report/main.go"),
    ],
)
def test_call_arguments_and_other_targets_values_are_not_the_secret(
    low_engine: Engine, line: str, path: str
) -> None:
    assert found(low_engine, line + "\n", path) == []


@pytest.mark.parametrize(
    ("line", "path", "secret"),
    [
        ('ks.setKeyPassword("Wq7zTr4mVx");', "src/Keystore.java", "Wq7zTr4mVx"),
        ('    .clientSecret("Hb3nQ8vLx2Kp9TzR4wYc")', "src/Oauth.java", "Hb3nQ8vLx2Kp9TzR4wYc"),
        ('auth.login_password("Zk5pVr8mQw")', "src/app/cli.py", "Zk5pVr8mQw"),
        ('connect(host="db", password="Rt6yWq2zXm")', "src/app/db.py", "Rt6yWq2zXm"),
        ('USER, PASSWORD = "deploy", "Pv9rKz3tWq"', "src/app/conf.py", "Pv9rKz3tWq"),
        ('user, pw := "svc", "Mx4qTz8rVb"', "cmd/svc/main.go", "Mx4qTz8rVb"),
    ],
)
def test_setters_keyword_arguments_and_tuple_items_are_still_found(
    low_engine: Engine, line: str, path: str, secret: str
) -> None:
    [f] = reported(low_engine, line + "\n", path)
    assert line.index(secret) + 1 == f.column


@pytest.mark.parametrize(
    "value",
    [
        "correcthorsebatterystaple",
        "correct-horse-battery-staple",
        "Correct_Horse_Battery_Staple",
        "Tr0ub4dor",
        "hunter2",
        "Swordfish",
        "trustno1",
    ],
)
def test_famous_example_passwords_are_placeholders(low_engine: Engine, value: str) -> None:
    assert found(low_engine, f'PASSWORD = "{value}"\n', "tests/test_login.py") == []


def test_a_real_passphrase_is_still_found(low_engine: Engine) -> None:
    text = 'PASSWORD = "correct-horse-battery-staple-9q"\nPASSWORD = "swordfish-Qv7t"\n'
    assert len(reported(low_engine, text, "tests/test_login.py")) == 2
