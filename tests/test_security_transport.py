"""Redis with a password and with TLS: a whole stream (producer -> a Celery worker in its own
process -> the Telegram sandbox) over each, and the password never in logs or exception text."""

from __future__ import annotations

import secrets
import traceback
import uuid
from collections.abc import Iterator

import pytest
import redis

from producers import BackendUnavailable, StreamProducer
from sandbox.telegram import TelegramEmulator
from tests.conftest import TEST_TOKEN
from tests.helpers import SAMPLE, tokens
from tests.procs import WorkerProcess
from tokenrelay.config import Settings
from tokenrelay.redis_server import RedisServer, TLSUnavailable, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: hex: needs no escaping in a URL, so a leak shows verbatim
PASSWORD = secrets.token_hex(16)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[TelegramEmulator]:
    """This module's own Telegram sandbox (nobody else's knobs or chats)."""
    with TelegramEmulator(token=TEST_TOKEN) as emu:
        yield emu


def _server(kind: str) -> RedisServer:
    try:
        return RedisServer(password=PASSWORD, tls=kind == "tls+password").start()
    except TLSUnavailable as exc:
        pytest.skip(f"this redis-server or machine cannot serve TLS: {exc}")


@pytest.fixture(scope="module", params=["password", "tls+password"])
def secured(request) -> Iterator[RedisServer]:
    server = _server(request.param)
    yield server
    server.stop()


def _env(server: RedisServer, sandbox: TelegramEmulator) -> dict[str, str]:
    return {
        "TOKENRELAY_BROKER_URL": server.url,
        "TOKENRELAY_REDIS_URL": server.url,
        "TOKENRELAY_QUEUE": f"tokenrelay-sec-{uuid.uuid4().hex[:8]}",
        "TOKENRELAY_TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TOKENRELAY_TELEGRAM_API_BASE": sandbox.base_url,
        "TOKENRELAY_FLUSH_INTERVAL": "0.3",
        "TOKENRELAY_TELEGRAM_CHAT_RATE": "5",
        "TOKENRELAY_HTTP_TIMEOUT": "3",
    }


def test_the_server_demands_what_the_url_carries(secured: RedisServer) -> None:
    """Guards the end-to-end test below: without the password (or, with TLS, in plain text or
    trusting anything but the test CA) the server cannot be used."""
    if secured.tls:
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=secured.port, password=PASSWORD, socket_timeout=3).ping()
        system_cas = f"rediss://:{PASSWORD}@127.0.0.1:{secured.port}/0?ssl_cert_reqs=required"
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(system_cas, socket_timeout=3).ping()
        plain_url = secured.url.split("?")[0].replace(f":{PASSWORD}@", "@")
        unauthenticated = redis.Redis.from_url(
            plain_url + f"?ssl_cert_reqs=required&ssl_ca_certs={secured.ca_cert}"
        )
    else:
        unauthenticated = redis.Redis(port=secured.port)
    with pytest.raises(redis.AuthenticationError):
        unauthenticated.ping()
    assert redis.Redis.from_url(secured.url).ping()


def test_a_stream_end_to_end_and_the_password_stays_out_of_the_logs(
    secured: RedisServer, sandbox: TelegramEmulator, caplog
) -> None:
    caplog.set_level("DEBUG")
    env = _env(secured, sandbox)
    worker = WorkerProcess(env, env["TOKENRELAY_QUEUE"], "secure")
    producer = StreamProducer(Settings.from_env(env))
    chat = str(50_000 + secrets.randbelow(10_000))
    try:
        assert worker.ready.wait(30), "".join(worker.lines[-30:])
        stream = producer.start(channel="telegram", chat_id=chat)
        for tok in tokens(SAMPLE, 24):
            stream.emit(tok)
        result = stream.stop(timeout=30)
    finally:
        producer.close()
        worker.stop()
    assert result.all_sent, result
    assert sandbox.texts(chat) == [SAMPLE.strip()], "the chat shows the whole reply, once"
    log = "".join(worker.lines)
    scheme = "rediss" if secured.tls else "redis"
    assert f"Connected to {scheme}://:**@127.0.0.1:{secured.port}" in log, log[-3000:]
    assert "insecure" not in log, "kombu verifies the server's certificate"
    assert PASSWORD not in log
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(producer.settings.describe())


def test_the_settings_repr_hides_the_password() -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:6390/0"
    settings = Settings.from_env({"TOKENRELAY_BROKER_URL": url})
    assert PASSWORD not in repr(settings)


def test_connection_errors_never_echo_the_password(secured: RedisServer) -> None:
    """Redis unreachable, or the wrong password: the errors say so without the secret."""
    query = f"?{secured.url.split('?', 1)[1]}" if secured.tls else ""
    scheme = "rediss" if secured.tls else "redis"
    dead = f"{scheme}://:{PASSWORD}@127.0.0.1:{free_port()}/0{query}"
    wrong = secrets.token_hex(16)
    wrong_url = f"{scheme}://:{wrong}@127.0.0.1:{secured.port}/0{query}"
    for url, secret in ((dead, PASSWORD), (wrong_url, wrong)):
        producer = StreamProducer(Settings.from_env({"TOKENRELAY_BROKER_URL": url}))
        try:
            with pytest.raises(BackendUnavailable) as caught:
                producer.start(channel="telegram", chat_id="42")
        finally:
            producer.close()
        text = "".join(traceback.format_exception(caught.value))
        assert "Redis unreachable" in text
        assert secret not in text and PASSWORD not in text, text
