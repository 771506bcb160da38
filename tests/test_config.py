"""Settings come from TOKENRELAY_* variables; bad values get a clear error naming the variable."""

from __future__ import annotations

import pytest

from tokenrelay.accounts import credential
from tokenrelay.config import ConfigError, Settings, redact_url


def test_defaults_and_overrides() -> None:
    s = Settings.from_env({})
    assert s.broker_url == "redis://localhost:6379/0" and s.redis_url == s.broker_url
    assert s.flush_interval == 1.0 and s.telegram_group_interval == 3.0
    s = Settings.from_env(
        {"TOKENRELAY_BROKER_URL": "amqp://guest:guest@h//", "TOKENRELAY_FLUSH_INTERVAL": "0.5"}
    )
    assert s.redis_url == "redis://localhost:6379/0", "an amqp broker does not hold state"
    assert s.flush_interval == 0.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKENRELAY_FLUSH_INTERVAL", "fast"),
        ("TOKENRELAY_FLUSH_INTERVAL", "0"),
        ("TOKENRELAY_LEASE_TTL", "-1"),
        ("TOKENRELAY_TELEGRAM_API_BASE", "api.telegram.org"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_credentials_by_account_and_never_in_settings() -> None:
    env = {"TOKENRELAY_TELEGRAM_BOT_TOKEN": "1:a", "TOKENRELAY_TELEGRAM_SUPPORT_BOT_TOKEN": "2:b"}
    assert credential("telegram", env=env) == "1:a"
    assert credential("telegram", "support", env=env) == "2:b"
    with pytest.raises(ConfigError, match="TOKENRELAY_TELEGRAM_SALES_BOT_TOKEN"):
        credential("telegram", "sales", env=env)
    assert "1:a" not in repr(Settings.from_env(env))


def test_urls_are_printed_without_passwords() -> None:
    assert redact_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    described = Settings(broker_url="amqp://user:pw@host//").describe()
    assert "pw" not in str(described)
