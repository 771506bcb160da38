"""Real parts for integration tests: a throwaway redis-server, the Telegram sandbox, a Celery
worker (threads pool) in this process, and a producer, all wired through TOKENRELAY_* settings.

Set TOKENRELAY_TEST_REDIS_URL to use an existing Redis instead (it is never flushed: every test
uses fresh stream ids and a queue of its own).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator

import pytest

from tests import platforms
from tokenrelay.config import Settings
from tokenrelay.redis_server import RedisServer

# fixtures of the extra platforms' sandboxes (tests/platforms/*.py)
for _module in platforms.modules():
    globals().update({name: getattr(_module, name) for name in _module.__all__})

#: bot token the sandbox accepts in tests (fake, loopback only)
TEST_TOKEN = "123456:TEST-sandbox-token_abcdefghijklmnopqrstuvwxyz"
#: bearer token the webhook sandbox requires
WEBHOOK_TOKEN = "hook-secret-7d1c"
_chat_ids = itertools.count(1000)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    explicit = os.environ.get("TOKENRELAY_TEST_REDIS_URL")
    if explicit:
        yield explicit
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture(scope="session")
def telegram():
    from sandbox.telegram import TelegramEmulator

    with TelegramEmulator(token=TEST_TOKEN) as emu:
        yield emu


@pytest.fixture(scope="session")
def webhook():
    from sandbox.webhook import WebhookEmulator

    with WebhookEmulator(token=WEBHOOK_TOKEN) as hook:
        yield hook


@pytest.fixture(scope="session")
def settings_env(request, redis_url: str, telegram, webhook) -> Iterator[dict[str, str]]:
    """The environment every producer and worker of the test session reads."""
    env = {
        "TOKENRELAY_BROKER_URL": redis_url,
        "TOKENRELAY_REDIS_URL": redis_url,
        "TOKENRELAY_QUEUE": f"tokenrelay-test-{uuid.uuid4().hex[:8]}",
        "TOKENRELAY_TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TOKENRELAY_TELEGRAM_API_BASE": telegram.base_url,
        "TOKENRELAY_WEBHOOK_URL": webhook.url,
        "TOKENRELAY_WEBHOOK_BOT_TOKEN": WEBHOOK_TOKEN,
        "TOKENRELAY_FLUSH_INTERVAL": "0.3",
        "TOKENRELAY_TELEGRAM_GROUP_INTERVAL": "0.6",
        "TOKENRELAY_TELEGRAM_CHAT_RATE": "5",
        "TOKENRELAY_TELEGRAM_GROUP_RATE_PER_MINUTE": "120",
        "TOKENRELAY_HTTP_TIMEOUT": "3",
    }
    for module in platforms.modules():
        env.update(request.getfixturevalue(module.ENV_FIXTURE).tokenrelay_env())
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from workers import runtime

    runtime.reset()
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    runtime.reset()


@pytest.fixture(scope="session")
def settings(settings_env) -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def worker(settings: Settings):
    """A real Celery worker (threads pool) consuming the session's queue in this process."""
    from celery.contrib.testing.worker import start_worker

    from workers.app import app

    app.conf.update(
        broker_url=settings.broker_url,
        task_default_queue=settings.queue,
        worker_concurrency=8,
    )
    with start_worker(
        app, pool="threads", concurrency=8, perform_ping_check=False, loglevel="WARNING",
        queues=[settings.queue], shutdown_timeout=10,
    ) as w:
        yield w


@pytest.fixture(scope="session")
def producer(settings: Settings, worker):
    from producers import StreamProducer

    p = StreamProducer(settings)
    yield p
    p.close()


@pytest.fixture
def chat_id(telegram) -> str:
    """A private chat nobody else in the session uses."""
    return str(next(_chat_ids))


@pytest.fixture
def group_id(telegram) -> str:
    return str(-next(_chat_ids))
