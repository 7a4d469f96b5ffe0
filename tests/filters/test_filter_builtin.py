"""builtin-default's secret redaction: listed words as whole names or name parts only."""
from __future__ import annotations

import pytest

from rewind import filters

REDACTED = [
    # each listed word, alone and as a part
    "password", "passwd", "pwd", "secret", "token", "session", "cookie", "auth", "credential",
    "credentials", "creds", "bearer", "ssn", "credit", "card", "iban", "cvv", "cvc", "jwt",
    "api_key", "apikey", "apiKey", "API_KEY", "APIKey", "api-key", "private_key", "privateKey",
    "secret_key", "secretKey", "ssh_key", "sshKey", "refresh_token", "refreshToken", "access_token",
    "accessToken",
    # separated by '_', '-', digits, camelCase, any case
    "userPassword", "user_password", "db-password", "PASSWORD", "Password", "password2", "old_pwd",
    "client_secret", "AUTH_TOKEN", "authHeader", "auth_header", "HTTPAuthToken", "sessionId",
    "session_id", "csrf_cookie", "credit_card", "card_number", "cardNumber", "user_ssn", "cvv2",
    "bearer_token", "jwt_payload", "oauth_token", "tokens", "passwords", "my_api_key", "github_token",
    "apikeys_count", "ssns",
]

ALLOWED = [
    "author", "panel", "company", "tokenizer", "authority", "authenticate", "passage", "passport",
    "cardinal", "discard", "sessionize", "key", "keys", "monkey", "private", "keyring", "api",
    "x", "self", "user", "username", "count", "myapikey", "passwordless", "pwdx", "compass", "bypass",
    "secretary", "tokenize", "ibanx", "creditor", "cookbook", "scarder",
]


@pytest.fixture(scope="module")
def decision():
    return filters.build_chain([], environ={}).decide(module="app.m", qualname="f", filename="/p/app/m.py")


@pytest.mark.parametrize("name", REDACTED)
@pytest.mark.parametrize("kind", ["local", "global", "arg", "attr"])
def test_redacted(decision, kind, name):
    assert decision.value_action(kind, name) == "redact"


@pytest.mark.parametrize("name", ALLOWED)
@pytest.mark.parametrize("kind", ["local", "global", "arg", "attr"])
def test_not_redacted(decision, kind, name):
    assert decision.value_action(kind, name) == "allow"


@pytest.mark.parametrize(
    "module, qualname, action",
    [
        ("app.auth", "get_token", "redact"),
        ("app.auth", "Client.refreshToken", "redact"),
        ("app", "load_api_key", "redact"),
        # the secret word must be in the function's own name, not its module or class
        ("app.auth", "login", "allow"),
        ("app.session", "count", "allow"),
        ("app", "Token.__repr__", "allow"),
        ("app", "author_name", "allow"),
    ],
)
def test_return_values_by_function_name(module, qualname, action):
    chain = filters.build_chain([], environ={})
    decision = chain.decide(module=module, qualname=qualname, filename="/p/app.py")
    assert decision.value_action("ret", f"{module}.{qualname}") == action


def test_builtin_files_validate_like_user_files():
    for name in filters.BUILTIN_FILTERS:
        builtin = filters.load_builtin(name)
        assert builtin.name == name and builtin.version == 1
        assert builtin.path == f"<inline:{name}>" and builtin.root is None


def test_builtins_are_packaged_data():
    from importlib import resources

    names = {entry.name for entry in resources.files("rewind.filters.builtin").iterdir()}
    assert {"default.toml", "pytest.toml", "unittest.toml"} <= names
