"""Accounts resolve from the environment, a TOML file or a callable, in that documented order
(callable, file, environment), and failures name where they looked without showing secrets."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokenrelay import accounts
from tokenrelay.accounts import lookup
from tokenrelay.config import ConfigError


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    accounts.clear_cache()
    yield
    accounts.clear_cache()


def test_environment_default_and_named_accounts() -> None:
    env = {
        "TOKENRELAY_SLACK_BOT_TOKEN": "xoxb-default",
        "TOKENRELAY_SLACK_ACME_BOT_TOKEN": "xoxb-acme",
        "TOKENRELAY_SLACK_API_BASE": "http://127.0.0.1:9/api",
    }
    assert lookup("slack", "default", "BOT_TOKEN", env=env) == "xoxb-default"
    assert lookup("slack", "acme", "bot_token", env=env) == "xoxb-acme"
    assert lookup("slack", "default", "API_BASE", env=env) == "http://127.0.0.1:9/api"
    assert lookup("slack", "acme", "API_BASE", default="https://slack.com/api", env=env) == (
        "https://slack.com/api"
    )
    with pytest.raises(ConfigError, match="TOKENRELAY_SLACK_OTHER_BOT_TOKEN"):
        lookup("slack", "other", "BOT_TOKEN", env=env)


def test_a_toml_file_with_values_and_variables(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[[account]]\nplatform = "discord"\nname = "support"\nbot_token_env = "SUPPORT_TOKEN"\n'
        'max_chars = 1500\n\n'
        '[[account]]\nplatform = "matrix"\nname = "default"\nhomeserver = "http://hs.local"\n'
        'access_token = "syt_file"\n'
    )
    env = {
        "TOKENRELAY_ACCOUNTS_FILE": str(path),
        "SUPPORT_TOKEN": "discord-from-env-var",
        "TOKENRELAY_MATRIX_ACCESS_TOKEN": "syt_env",  # the file comes first
    }
    assert lookup("discord", "support", "BOT_TOKEN", env=env) == "discord-from-env-var"
    assert lookup("discord", "support", "MAX_CHARS", env=env) == "1500"
    assert lookup("matrix", "default", "ACCESS_TOKEN", env=env) == "syt_file"
    assert lookup("matrix", "default", "HOMESERVER", env=env) == "http://hs.local"


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[account]]\nname = 'no platform'\n")
    with pytest.raises(ConfigError, match="platform and name"):
        lookup("slack", "x", "BOT_TOKEN", env={"TOKENRELAY_ACCOUNTS_FILE": str(path)})
    with pytest.raises(ConfigError, match="cannot be read"):
        lookup("slack", "x", "BOT_TOKEN",
               env={"TOKENRELAY_ACCOUNTS_FILE": str(tmp_path / "missing.toml")})


def test_a_callable_for_one_bot_per_customer_is_cached() -> None:
    calls: list[tuple[str, str]] = []

    def credentials(platform: str, account: str) -> dict[str, str] | None:
        calls.append((platform, account))
        return {"bot_token": f"{platform}-{account}-secret"} if account.startswith("cust") else None

    module = types.ModuleType("tokenrelay_test_creds")
    module.credentials = credentials  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        env = {
            "TOKENRELAY_CREDENTIALS": "tokenrelay_test_creds:credentials",
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": "1:env",
        }
        for _ in range(3):
            assert lookup("telegram", "cust42", "BOT_TOKEN", env=env) == "telegram-cust42-secret"
        assert calls == [("telegram", "cust42")], "answers are cached"
        # the callable knows nothing of this account: the environment answers
        assert lookup("telegram", "default", "BOT_TOKEN", env=env) == "1:env"
    finally:
        del sys.modules[module.__name__]


def test_a_bad_callable_is_a_clear_error_without_secrets() -> None:
    with pytest.raises(ConfigError, match="module:callable"):
        lookup("slack", "a", "BOT_TOKEN", env={"TOKENRELAY_CREDENTIALS": "nocolon"})
    with pytest.raises(ConfigError, match="cannot be loaded"):
        lookup("slack", "a", "BOT_TOKEN", env={"TOKENRELAY_CREDENTIALS": "no.such.module:f"})
