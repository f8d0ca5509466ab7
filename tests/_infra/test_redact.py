import hashlib
import json
import re

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentops._infra.redact import MIN_SECRET_LENGTH, REDACTED, Redactor, is_secret_env_name

# --- secrets from the environment ---------------------------------------------------------

LONG_VALUE = "correct-horse-battery-staple"


def redact(document, environ=None, *, ensure_ascii=True):
    """``document`` as read from JSON, redacted by a Redactor of ``environ``, then serialized.

    The result must still be JSON: it is parsed back from what would be written.
    """
    value = json.loads(json.dumps(document, ensure_ascii=ensure_ascii))
    return json.loads(json.dumps(Redactor(environ).value(value)))


@pytest.mark.parametrize(
    "name",
    ["OPENAI_API_KEY", "GITHUB_TOKEN", "WEBHOOK_SECRET", "DB_PASSWORD", "PASSWORD_FOR_SMTP"],
)
def test_secret_env_values_are_redacted(name):
    """The value of a *_KEY, *_TOKEN, *_SECRET or *PASSWORD* variable is redacted in text."""
    line = {"msg": f"login with {LONG_VALUE} failed"}
    assert redact(line, {name: LONG_VALUE}) == {"msg": f"login with {REDACTED} failed"}


@pytest.mark.parametrize("name", ["HOME", "MONKEY", "AWS_ACCESS_KEY_ID", "TOKENS_PER_RUN"])
def test_values_of_other_env_names_are_left_alone(name):
    """Variables whose names do not look secret are not redacted."""
    line = {"msg": f"value {LONG_VALUE}"}
    assert redact(line, {name: LONG_VALUE}) == line


@pytest.mark.parametrize(
    "name",
    [
        "SERVICE_CREDENTIALS",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "DB_CREDENTIAL",
        "DEPLOY_PRIVATE_KEY",
        "DEPLOY_PRIVATE_KEY_B64",
        "SSH_PASSPHRASE",
        "GITHUB_PAT",
        "REGISTRY_AUTH",
        "SENTRY_DSN",
        "SESSION_COOKIE",
        "AWS_CREDS",
        "VAULT_SECRETS",
        "API_KEYS",
    ],
)
def test_credential_names_are_secrets(name):
    """Named like a credential: its value is redacted wherever it appears."""
    assert is_secret_env_name(name)
    value = "c0rrect-h0rse-battery-staple"
    assert Redactor({name: value}).value(f"login with {value}") == f"login with {REDACTED}"


@pytest.mark.parametrize(
    "name", ["PATH", "XDG_DATA_DIRS", "SSH_AUTH_SOCK", "OAUTH_SCOPES", "TOKENS_PER_RUN", "MONKEY"]
)
def test_names_that_only_look_alike_are_not_secrets(name):
    """PATH, SSH_AUTH_SOCK and the like are left alone."""
    assert not is_secret_env_name(name)


def test_short_env_secrets_are_left_alone():
    """A secret value shorter than MIN_SECRET_LENGTH would garble every line: it is kept."""
    short, just_long_enough = "x" * (MIN_SECRET_LENGTH - 1), "y" * MIN_SECRET_LENGTH
    environ = {"PIN_PASSWORD": short, "API_KEY": just_long_enough}
    line = {"msg": f"{short} {just_long_enough}"}
    assert redact(line, environ) == {"msg": f"{short} {REDACTED}"}


@pytest.mark.parametrize(
    "secret",
    ['pa"ss\\word-123', "pässwörd-ünïcode", "emoji-🔑-secret", "tab\tand\nnewline-secret"],
    ids=["quotes-backslashes", "non-ascii", "astral", "control-chars"],
)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_env_secrets_are_redacted_when_json_escaped(secret, ensure_ascii):
    """A secret is found in JSON however it was escaped, and the result is still valid JSON."""
    doc = {"msg": f"login with {secret} failed", "nested": [secret, {"ok": "kept"}]}
    assert redact(doc, {"DB_PASSWORD": secret}, ensure_ascii=ensure_ascii) == {
        "msg": f"login with {REDACTED} failed",
        "nested": [REDACTED, {"ok": "kept"}],
    }


@pytest.mark.parametrize(
    ("secret", "doc"),
    [
        ("abcdefgh\\", {"said": 'abcdefgh"'}),
        ("00e9cafe12", {"word": "écafe12"}),
        ("20261122", {"count": 202611220}),
    ],
    ids=["secret-ending-in-backslash", "hex-secret-after-non-ascii", "numeric-secret-in-number"],
)
def test_env_secret_near_misses_keep_json_valid(secret, doc):
    """JSON that only resembles a secret once serialized stays valid and unchanged."""
    assert redact(doc, {"API_KEY": secret}) == doc


# --- well-known key shapes ----------------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("sk-proj-abcDEF1234567890ghijKLMN", REDACTED),
        ("ghp_" + "a1B2c3D4e5" * 4, REDACTED),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", REDACTED),
        ("glpat-abcdefghij0123456789", REDACTED),
        ("xoxb-1234567890-abcdefghij", REDACTED),
        ("AKIAIOSFODNN7EXAMPLE", REDACTED),
        ("AIza" + "SyA-abcdefghijklmnopqrstuvwxyz_0123", REDACTED),
        (JWT, REDACTED),
        ("Authorization: Bearer abc.def-ghi_jkl", f"Authorization: Bearer {REDACTED}"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {REDACTED}"),
        (PEM, REDACTED),
        (
            "postgres://app:s3cr3t-pw@db.internal:5432/app",
            f"postgres://app:{REDACTED}@db.internal:5432/app",
        ),
        (
            "https://api.example.com/v1?api_key=abc123&page=2&token=xyz",
            f"https://api.example.com/v1?api_key={REDACTED}&page=2&token={REDACTED}",
        ),
    ],
    ids=[
        "openai",
        "github",
        "github-pat",
        "gitlab",
        "slack",
        "aws",
        "google",
        "jwt",
        "bearer",
        "basic",
        "pem",
        "url-password",
        "query-params",
    ],
)
def test_key_shapes_are_redacted(secret, expected):
    """Well-known key shapes are redacted inside any string, keeping helpful context."""
    assert redact({"note": f"got {secret} here"}) == {"note": f"got {expected} here"}
    assert redact([secret]) == [expected]


def test_query_secret_inside_a_quoted_url_keeps_json_valid():
    """An HTML snippet with a token in a quoted URL is redacted and stays valid JSON."""
    doc = {"body": '<a href="https://example.com/?token=abc123">next</a>'}
    assert redact(doc) == {"body": f'<a href="https://example.com/?token={REDACTED}">next</a>'}


def test_prose_with_the_word_basic_is_left_alone():
    """Ordinary words after "basic" or "bearer" are not mistaken for credentials."""
    line = {"msg": "basic authentication failed for the bearer endpoint"}
    assert redact(line) == line


# --- JSON values of secret-named keys -----------------------------------------------------


def test_values_of_secret_named_json_keys_are_redacted():
    """Secret-named keys lose their string values; look-alike keys keep theirs."""
    doc = {
        "password": "hunter2",
        "api_key": "abc",
        "access_token": "t",
        "headers": {"Authorization": "Token x", "X-Api-Key": "k", "cookie": "session=1"},
        "client": {"password": 'with "quotes" and \\'},
        "token_count": "1200",
        "max_tokens": "4096",
        "key": "primary",
    }
    assert redact(doc) == {
        "password": REDACTED,
        "api_key": REDACTED,
        "access_token": REDACTED,
        "headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED, "cookie": REDACTED},
        "client": {"password": REDACTED},
        "token_count": "1200",
        "max_tokens": "4096",
        "key": "primary",
    }


# --- property: redacted JSON is valid, secret-free, and otherwise unchanged ----------------

# Characters JSON escapes, to put in and next to the secret and its fragments.
TRICKY = ['"', "\\", "\n", "\t", "é", "🔑", "/", " "]

# Secrets mix those with any other text. Each has a character that cannot appear in a
# JSON number, and no square brackets (so "[REDACTED]" next to a fragment of the secret
# cannot re-form it).
SECRETS = st.text(
    st.sampled_from(TRICKY)
    | st.characters(exclude_characters="[]\x00", exclude_categories=("Cs",)),
    min_size=MIN_SECRET_LENGTH,
    max_size=16,
).filter(lambda s: not set(s) <= set("0123456789.eE+-"))

# Too short to hold a secret, and unable to spell a secret-sounding key name.
KEYS = st.text(alphabet='xyz_-01 "\\é', max_size=6)


@st.composite
def secret_and_document(draw):
    secret = draw(SECRETS)
    cut = st.integers(1, len(secret) - 1)
    fragments = st.one_of(
        st.text(max_size=8),
        st.sampled_from(TRICKY),
        st.just(secret),
        cut.map(lambda i: secret[:i]),
        cut.map(lambda i: secret[i:]),
    )
    strings = st.lists(fragments, max_size=4).map("".join)
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | strings
    )
    document = draw(
        st.recursive(
            leaves,
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4)
            ),
            max_leaves=12,
        )
    )
    return secret, document


def _holds(value, secret):
    if isinstance(value, str):
        return secret in value
    if isinstance(value, list):
        return any(_holds(item, secret) for item in value)
    if isinstance(value, dict):
        return any(_holds(item, secret) for item in value.values())
    return False


def _assert_redacted(original, redacted, secret):
    if not _holds(original, secret):
        # Unchanged by knowing the secret: text shaped as a credential anyway
        # ("key=0" at the start of a string, a form body) is redacted for its shape.
        assert redacted == redact(original)
    elif isinstance(original, str):
        assert secret not in redacted
    elif isinstance(original, list):
        assert len(redacted) == len(original)
        for before, after in zip(original, redacted, strict=True):
            _assert_redacted(before, after, secret)
    else:
        assert redacted.keys() == original.keys()
        for key, before in original.items():
            _assert_redacted(before, redacted[key], secret)


@settings(max_examples=500)
@given(secret_and_document())
def test_redacted_json_is_valid_secret_free_and_otherwise_unchanged(case):
    """Any JSON document stays valid, loses the secret, and is unchanged where it had none.

    (Unchanged by the secret: what has a credential's shape is redacted whatever the secret.)
    """
    secret, document = case
    _assert_redacted(document, redact(document, {"SERVICE_TOKEN": secret}), secret)


def test_pem_markers_in_different_strings_do_not_swallow_what_lies_between():
    """A BEGIN marker in one string and an END in another redact only their own strings."""
    doc = {"a": "-----BEGIN RSA PRIVATE KEY-----\nMIIB", "b": "keep me", "c": "-----END x"}
    assert redact(doc) == {"a": REDACTED, "b": "keep me", "c": "-----END x"}


def test_json_inside_a_string_is_redacted_by_key_name():
    """A logged response body holding an access token loses the token, keeps the rest."""
    body = '{"access_token": "opaque-abc", "token_type": "bearer", "expires_in": 3600}'
    assert redact({"body": body}) == {
        "body": f'{{"access_token": "{REDACTED}", "token_type": "bearer", "expires_in": 3600}}'
    }


def test_form_body_secrets_are_redacted():
    """A form-encoded body redacts client_secret even at the start of the string."""
    assert redact({"body": "client_secret=abc123&grant_type=client_credentials"}) == {
        "body": f"client_secret={REDACTED}&grant_type=client_credentials"
    }


def test_url_password_with_a_raw_at_sign_is_fully_redacted():
    """user:p@ss@host: everything between the colon and the last @ of the authority goes."""
    assert redact({"url": "https://u:p@ss@host/path?q=a@b"}) == {
        "url": f"https://u:{REDACTED}@host/path?q=a@b"
    }


# --- the forms a learnt secret is written in ------------------------------------------------

HTTPX_SECRETS = [
    "pa$$w0rd!x\\yé z",
    "50%off-c0de!x",
    "p%41ss-w0rd$",
    "ünï+cöde&=x~",
    'sp ace"q<>{}|^`x',
    "semi;col:on[at]@x",
]


@pytest.mark.parametrize("secret", HTTPX_SECRETS)
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda s: httpx.URL(f"https://api.example.com/bot{s}/send"),
            f"https://api.example.com/bot{REDACTED}/send",
        ),
        (
            lambda s: httpx.URL(f"https://api.example.com/send?text={s}"),
            f"https://api.example.com/send?text={REDACTED}",
        ),
        (
            lambda s: httpx.URL("https://api.example.com/send", params={"text": s}),
            f"https://api.example.com/send?text={REDACTED}",
        ),
    ],
    ids=["path", "query", "params"],
)
def test_a_secret_is_redacted_in_a_url_as_httpx_writes_it(secret, build, expected):
    r"""httpx encodes some characters and leaves others ($ ! \ ...) bare: every form goes."""
    url = str(build(secret))
    assert redact({"url": url}, {"BOT_TOKEN": secret}) == {"url": expected}


@pytest.mark.parametrize("upper", [False, True], ids=["\\u00e9", "\\u00E9"])
def test_a_secret_is_redacted_in_json_text_that_escapes_it(upper):
    r"""JSON carried in a string holds é as \u00e9 (or \u00E9): that form is redacted too."""
    secret = "pässwörd-ünïcode"
    body = json.dumps({"note": f"login with {secret} failed"})
    if upper:
        body = re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m[1].upper(), body)
    assert secret not in body
    redacted = redact({"body": body}, {"DB_PASSWORD": secret})
    assert redacted == {"body": f'{{"note": "login with {REDACTED} failed"}}'}


# --- identifiers: digests instead of REDACTED ---------------------------------------------


def test_an_identifier_holding_a_secret_gets_a_digest_of_it():
    """Action names and keys: each secret becomes [REDACTED:<8 hex>], the rest stays."""
    redactor = Redactor({"SERVICE_TOKEN": LONG_VALUE})
    digest = hashlib.sha256(LONG_VALUE.encode()).hexdigest()[:8]
    assert redactor.identifier(f"user-{LONG_VALUE}-1") == f"user-[REDACTED:{digest}]-1"
    assert redactor.identifier("plain-key-42") == "plain-key-42"


def test_identifiers_stay_distinct_per_secret_and_stable_across_redactors():
    """Two secrets, two digests; the same secret, the same digest in another run's Redactor."""
    other = "another-secret-value"
    environ = {"SERVICE_TOKEN": LONG_VALUE, "BACKUP_TOKEN": other}
    first = Redactor(environ).identifier(f"k-{LONG_VALUE}")
    assert first != Redactor(environ).identifier(f"k-{other}")
    assert first == Redactor({"SERVICE_TOKEN": LONG_VALUE}).identifier(f"k-{LONG_VALUE}")


def test_a_key_shaped_secret_in_an_identifier_gets_a_digest_too():
    """A shape (an sk- key) with no variable behind it is digested like a learnt secret."""
    key = "sk-proj-abcDEF1234567890ghijKLMN"
    identifier = Redactor().identifier(f"reply-to-{key}")
    assert re.fullmatch(r"reply-to-\[REDACTED:[0-9a-f]{8}\]", identifier)
    assert identifier != Redactor().identifier("reply-to-sk-proj-zyxWVU0987654321abcdEFGH")
