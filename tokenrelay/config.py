"""Every tokenrelay setting, read from ``TOKENRELAY_*`` environment variables in one place.

Producers and workers read the same variables, so one environment configures both sides.
Credentials are not fields of :class:`Settings`: they are looked up by channel and account
name at the moment a channel client is built (``tokenrelay.accounts.credential``), so they
never travel in task arguments, reprs or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

#: prefix of every environment variable tokenrelay reads
ENV_PREFIX = "TOKENRELAY_"
#: broker used when TOKENRELAY_BROKER_URL is not set
DEFAULT_BROKER_URL = "redis://localhost:6379/0"


class ConfigError(ValueError):
    """A TOKENRELAY_* variable has a value tokenrelay cannot use."""


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} must be >= {minimum}")
    return value


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(ENV_PREFIX + name)
    return raw.strip() if raw and raw.strip() else default


def _port(env: Mapping[str, str], name: str) -> int:
    port = _number(env, name, 0, 0)
    if port != int(port) or port > 65535:
        raise ConfigError(f"{ENV_PREFIX}{name}={env[ENV_PREFIX + name]!r} is not a port number")
    return int(port)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(ENV_PREFIX + name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a flag (use 1 or 0)")


@dataclass(frozen=True)
class Settings:
    """Runtime configuration shared by producers and workers (no secrets in here)."""

    broker_url: str = DEFAULT_BROKER_URL
    redis_url: str = DEFAULT_BROKER_URL
    #: Celery queue the tasks travel on
    queue: str = "tokenrelay"
    #: seconds between two edits of one stream
    flush_interval: float = 1.0
    #: seconds a worker's lease on a stream lives without renewal (crash take-over time)
    lease_ttl: float = 2.5
    #: seconds every per-stream key lives (abandoned streams clean themselves up)
    stream_ttl: float = 24 * 3600.0
    #: seconds without tokens after which the watchdog finalizes a stream that never stopped
    idle_timeout: float = 600.0
    #: longest text one stream accepts, in characters
    max_stream_chars: int = 1_000_000
    #: seconds the stop task keeps trying to deliver the final text before it reports failure
    final_deadline: float = 900.0
    #: seconds for one HTTP request to a chat platform (connect + read)
    http_timeout: float = 10.0
    #: Celery worker threads (stop tasks: one final pass each)
    worker_concurrency: int = 16
    #: threads of each worker process's flush engine (passes in flight at once; HTTP bound)
    flush_threads: int = 64
    #: schedules the due streams are spread over (Redis Cluster: one slot each)
    shards: int = 8
    #: seconds a finished stream's keys and result are kept once its result is published
    result_ttl: float = 3600.0
    #: seconds after a call whose answer was lost (or a take-over) during which an older edit
    #: may still land; the final text is shown again after that
    late_write_grace: float = 10.0
    #: most Redis connections one producer process opens (all its threads share them)
    redis_max_connections: int = 16
    #: Telegram Bot API base URL (point it at the sandbox for tests and the demo)
    telegram_api_base: str = "https://api.telegram.org"
    #: seconds between edits in Telegram group chats (negative chat ids)
    telegram_group_interval: float = 3.0
    #: sends+edits per second one Telegram chat may take (private chats)
    telegram_chat_rate: float = 1.0
    #: sends+edits per minute one Telegram group chat may take
    telegram_group_rate_per_minute: float = 19.0
    #: sends+edits per second one Telegram bot may take across all chats
    telegram_global_rate: float = 28.0
    #: port of each worker's Prometheus ``/metrics`` endpoint; 0 serves none
    metrics_port: int = 0
    #: address that endpoint binds to (loopback unless configured)
    metrics_host: str = "127.0.0.1"
    #: workers send Celery task events (for Flower) from the start
    task_events: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        broker = _text(env, "BROKER_URL", DEFAULT_BROKER_URL)
        state_default = broker if broker.startswith(("redis://", "rediss://", "unix://")) else (
            DEFAULT_BROKER_URL
        )
        api_base = _text(env, "TELEGRAM_API_BASE", cls.telegram_api_base).rstrip("/")
        if not api_base.startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_PREFIX}TELEGRAM_API_BASE={api_base!r} must be an http(s) URL")
        return cls(
            broker_url=broker,
            redis_url=_text(env, "REDIS_URL", state_default),
            queue=_text(env, "QUEUE", cls.queue),
            flush_interval=_number(env, "FLUSH_INTERVAL", cls.flush_interval, 0.05),
            lease_ttl=_number(env, "LEASE_TTL", cls.lease_ttl, 0.5),
            stream_ttl=_number(env, "STREAM_TTL", cls.stream_ttl, 60.0),
            idle_timeout=_number(env, "IDLE_TIMEOUT", cls.idle_timeout, 1.0),
            max_stream_chars=int(_number(env, "MAX_STREAM_CHARS", cls.max_stream_chars, 1)),
            final_deadline=_number(env, "FINAL_DEADLINE", cls.final_deadline, 1.0),
            http_timeout=_number(env, "HTTP_TIMEOUT", cls.http_timeout, 0.1),
            worker_concurrency=int(_number(env, "WORKER_CONCURRENCY", cls.worker_concurrency, 1)),
            flush_threads=int(_number(env, "FLUSH_THREADS", cls.flush_threads, 1)),
            shards=int(_number(env, "SHARDS", cls.shards, 1)),
            result_ttl=_number(env, "RESULT_TTL", cls.result_ttl, 1.0),
            late_write_grace=_number(env, "LATE_WRITE_GRACE", cls.late_write_grace, 0.0),
            redis_max_connections=int(
                _number(env, "REDIS_MAX_CONNECTIONS", cls.redis_max_connections, 2)
            ),
            telegram_api_base=api_base,
            telegram_group_interval=_number(
                env, "TELEGRAM_GROUP_INTERVAL", cls.telegram_group_interval, 0.05
            ),
            telegram_chat_rate=_number(env, "TELEGRAM_CHAT_RATE", cls.telegram_chat_rate, 0.01),
            telegram_group_rate_per_minute=_number(
                env, "TELEGRAM_GROUP_RATE_PER_MINUTE", cls.telegram_group_rate_per_minute, 0.1
            ),
            telegram_global_rate=_number(
                env, "TELEGRAM_GLOBAL_RATE", cls.telegram_global_rate, 0.1
            ),
            metrics_port=_port(env, "METRICS_PORT"),
            metrics_host=_text(env, "METRICS_HOST", cls.metrics_host),
            task_events=_flag(env, "TASK_EVENTS"),
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"Settings({shown})"

    def describe(self) -> dict[str, object]:
        """Settings as a plain mapping, safe to print (URLs lose their passwords)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = redact_url(value) if f.name.endswith("_url") else value
        return out


def redact_url(url: str) -> str:
    """``redis://:secret@host`` -> ``redis://:***@host``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
