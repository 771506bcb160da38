"""docker-compose.yml and the Dockerfile, without Docker: the file's structure, then every
service's own command run as a subprocess.

The second half reads the compose file the way ``docker compose`` does (``${VAR:-default}``,
``${VAR:?error}``, ``$$``, values from .env.example plus the required secrets), maps the compose
network onto loopback ports (``redis:6379`` becomes a private port, and so on), starts each
service's command and waits for the service's own healthcheck command to pass, as Docker would.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")

from tokenrelay.processes import stop_process  # noqa: E402
from tokenrelay.redis_server import find_redis_server, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: secrets the compose file must require (``${VAR:?}``), never default
REQUIRED = ("REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "RABBITMQ_PASSWORD")
#: the last line of the demo's sample reply, as the chat shows it
DEMO_TAIL = "Rate limits delay the final answer, they never drop it. ✅"


# --------------------------------------------------------------------------------------------
# reading the file as docker compose does
# --------------------------------------------------------------------------------------------


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` reference with VAR unset or empty."""


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` matching the ``{`` at ``start`` (references nest)."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unclosed ${{ in {text!r}")


def _expand(expr: str, env: Mapping[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_]\w*)(?:(:?[-?])(.*))?", expr, re.S)
    assert match, f"bad reference ${{{expr}}}"
    name, op, arg = match[1], match[2], match[3]
    value = env.get(name)
    unset = value is None or (value == "" and bool(op) and op.startswith(":"))
    if op in (":-", "-"):
        return interpolate(arg, env) if unset else str(value)
    if op in (":?", "?") and unset:
        raise MissingVariable(f"{name}: {arg}")
    return value or ""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose interpolation: ``$$`` is ``$``; ``${VAR}``, ``${VAR:-default}``, ``${VAR:?err}``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
        elif text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 1)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        else:
            name = re.match(r"[A-Za-z_]\w*", text[i + 1 :])
            out.append(env.get(name[0], "") if name else "$")
            i += 1 + (len(name[0]) if name else 0)
    return "".join(out)


def referenced_variables(text: str) -> set[str]:
    """Every variable a compose file reads (``$$VAR`` is the container shell's, not compose's)."""
    text = text.replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_]\w*)", text)) | set(
        re.findall(r"\$([A-Za-z_]\w*)", text)
    )


def env_example() -> dict[str, str]:
    """The uncommented ``VAR=value`` lines of .env.example."""
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Za-z_]\w*)=(.*)$", line)
        if match:
            pairs[match[1]] = match[2]
    return pairs


def compose_env(**overrides: str) -> dict[str, str]:
    """What ``docker compose`` reads: .env.example with the required secrets filled in."""
    secrets = {
        "REDIS_PASSWORD": uuid.uuid4().hex,
        "FLOWER_BASIC_AUTH": f"admin:{uuid.uuid4().hex}",
        "RABBITMQ_PASSWORD": uuid.uuid4().hex,
    }
    return {**env_example(), **secrets, **overrides}


def walk(value: Any) -> Iterator[str]:
    """Every string inside a parsed YAML value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


# --------------------------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------------------------


def test_services_and_profiles() -> None:
    assert {"redis", "worker", "flower"} <= set(SERVICES)
    for name in ("redis", "worker", "flower"):
        assert "profiles" not in SERVICES[name], f"{name} runs by default"
    assert SERVICES["rabbitmq"]["profiles"] == ["rabbitmq"]
    for name in ("sandbox", "sandbox-worker", "demo"):
        assert SERVICES[name]["profiles"] == ["sandbox"], name


def test_every_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        if one_shot(service):
            continue  # runs once and exits (the demo): nothing to probe
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert "inspect ping" in " ".join(SERVICES["worker"]["healthcheck"]["test"])
    assert "redis-cli ping" in SERVICES["redis"]["healthcheck"]["test"][1]


def test_redis_is_private_durable_and_never_evicts() -> None:
    redis = SERVICES["redis"]
    assert "ports" not in redis and "network_mode" not in redis, "Redis must not be published"
    command = " ".join(redis["command"])
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction",
                 "--requirepass"):
        assert flag in command
    assert any(v.endswith(":/data") for v in redis["volumes"]), "AOF needs a volume"
    # the password only ever comes from the environment, and the healthcheck authenticates
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert "REDISCLI_AUTH" in redis["healthcheck"]["test"][1]


def test_workers_scale() -> None:
    for name in ("worker", "sandbox-worker"):
        worker = SERVICES[name]
        assert "container_name" not in worker and "ports" not in worker, name
        assert "hostname" not in worker, "every replica needs its own node name"
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_flower_requires_basic_auth_and_stays_on_loopback() -> None:
    flower = SERVICES["flower"]
    assert '--basic-auth="$${FLOWER_BASIC_AUTH}"' in flower["command"][-1]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    (published,) = flower["ports"]
    host = interpolate(published, compose_env())
    assert host == "127.0.0.1:5555:5555"


def test_required_secrets_fail_when_missing() -> None:
    """``docker compose`` refuses to start without each secret (``:?`` on unset *and* empty)."""
    text = (ROOT / "docker-compose.yml").read_text()
    for name in REQUIRED:
        assert f"${{{name}:?" in text
        for missing in ({}, {name: ""}):
            env = {k: v for k, v in compose_env().items() if k != name} | missing
            with pytest.raises(MissingVariable, match=name):
                for value in walk(SERVICES):
                    interpolate(value, env)


def test_no_secret_literals() -> None:
    """Credentials come from variables; only the sandbox profile defaults a (fake) bot token."""
    secretish = re.compile(r"(PASSWORD|PASS|TOKEN|AUTH|SECRET|_URL)$")
    names = set().union(*(referenced_variables(value) for value in walk(COMPOSE)))
    # every variable left empty but the required secrets, which hold a marker
    env = {name: "<secret>" if name in REQUIRED else "" for name in names}
    for name, service in SERVICES.items():
        sandbox = "sandbox" in service.get("profiles", [])
        for key, value in (service.get("environment") or {}).items():
            if not secretish.search(key) or (sandbox and key.endswith("BOT_TOKEN")):
                continue
            shown = interpolate(value, env)
            credentials = re.match(r"\w+://([^/@]*)@", shown)
            if credentials:
                assert credentials[1] in (":<secret>", "tokenrelay:<secret>"), f"{name}.{key}"
            elif not re.match(r"https?://", shown):
                assert shown in ("", "<secret>"), f"{name}.{key}={value!r} is a literal secret"


def test_images_are_pinned() -> None:
    env = compose_env()
    for name, service in SERVICES.items():
        image = interpolate(service["image"], env)
        assert ":" in image and "@" not in image.split(":")[0], f"{name}: untagged {image}"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: unpinned {image}"
    base = re.search(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base[1]), base


def test_every_variable_is_documented() -> None:
    used = set().union(*(referenced_variables(value) for value in walk(COMPOSE)))
    documented = set(re.findall(r"^#?\s*([A-Za-z_]\w*)=", (ROOT / ".env.example").read_text(),
                                re.M))
    assert used, "the compose file reads no variable?"
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    for name in REQUIRED:  # required ones are listed empty: a copied file fails until filled
        assert env_example()[name] == "", name


def test_dockerfile_installs_the_package_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install \"?\.(\[\w+\])?\"?", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_rabbitmq_variant_is_documented() -> None:
    example = (ROOT / ".env.example").read_text()
    assert "COMPOSE_PROFILES=rabbitmq" in example
    assert re.search(r"TOKENRELAY_BROKER_URL=amqp://\S+@rabbitmq:5672", example)
    assert SERVICES["worker"]["depends_on"]["rabbitmq"]["required"] is False
    assert "rabbitmq-diagnostics" in SERVICES["rabbitmq"]["healthcheck"]["test"]


# --------------------------------------------------------------------------------------------
# every service's command, outside Docker
# --------------------------------------------------------------------------------------------


class Service:
    """One compose service's command as a subprocess, in the compose network mapped to loopback."""

    def __init__(self, name: str, env: dict[str, str], network: dict[str, str], log_dir: str,
                 append: str = "", isolate: dict[str, str] | None = None) -> None:
        self.name = name
        self.spec = SERVICES[name]
        self.network = network
        given = {k: self.localize(interpolate(str(v), env))
                 for k, v in (self.spec.get("environment") or {}).items()}
        bin_dir = str(Path(sys.executable).parent)  # celery, tokenrelay, python of this venv
        self.env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "HOSTNAME": f"{name}-{uuid.uuid4().hex[:8]}",  # Docker sets the container's
            **given,
            **(isolate or {}),  # a queue of the test's own on a shared broker
        }
        command = [self.localize(interpolate(part, env)) for part in self.spec["command"]]
        if command[:2] == ["sh", "-c"]:  # ``append``: more arguments, for speed or a free port
            command[-1] += f" {append}"
        else:
            command += shlex.split(append)
        self.log = Path(log_dir, f"{name}.log")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def localize(self, text: str) -> str:
        for container, loopback in self.network.items():
            text = re.sub(container, loopback, text)
        return text

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """Run the service's healthcheck command once, as Docker does in the container."""
        kind, *args = (self.localize(interpolate(part, {})) for part in
                       self.spec["healthcheck"]["test"])
        argv = ["sh", "-c", args[0]] if kind == "CMD-SHELL" else args
        return subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=30)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Probe until the healthcheck passes, like Docker's start period (fails on exit)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
            check = self.healthcheck()
            if check.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never healthy: {check.stdout}{check.stderr}\n"
                                     f"{self.log.read_text()}")
            time.sleep(0.3)  # the probe interval

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Service]]:
    """redis, worker, flower, sandbox and sandbox-worker, each from its compose command."""
    binary = find_redis_server()
    cli = shutil.which("redis-cli") or str(Path(binary).with_name("redis-cli"))
    if not Path(cli).exists():
        pytest.skip("no redis-cli next to redis-server: the redis healthcheck needs it")
    redis_port, flower_port, sandbox_port = free_port(), free_port(), free_port()
    network = {  # regular expressions: the compose network -> loopback
        r"@redis:6379\b": f"@127.0.0.1:{redis_port}",
        r"\bsandbox:8081\b": f"127.0.0.1:{sandbox_port}",
        r"\b8081\b": str(sandbox_port),
        r"\b5555\b": str(flower_port),
        r"\b0\.0\.0\.0\b": "127.0.0.1",
        r"\bexec redis-server ": f"exec {binary} ",
        r"\bredis-cli ping\b": f"{cli} -p {redis_port} ping",
    }
    env = compose_env()
    services: dict[str, Service] = {}
    with tempfile.TemporaryDirectory(prefix="tokenrelay-compose-") as tmp:
        try:
            redis = Service("redis", env, network, tmp,
                            append=f"--port {redis_port} --bind 127.0.0.1 --dir {tmp}")
            services["redis"] = redis
            redis.wait_healthy()
            for name in ("worker", "flower", "sandbox", "sandbox-worker"):
                services[name] = Service(name, env, network, tmp)
            for service in services.values():
                service.wait_healthy()
            yield services
        finally:
            for service in reversed(services.values()):
                service.stop()


def _redis(stack: dict[str, Service], *args: str, password: str | None) -> str:
    redis = stack["redis"]
    port = redis.localize("@redis:6379").rsplit(":", 1)[1]
    cli = redis.localize("redis-cli ping").split()[0]
    env = {"PATH": os.environ["PATH"], **({"REDISCLI_AUTH": password} if password else {})}
    run = subprocess.run([cli, "-p", port, *args], env=env, capture_output=True, text=True,
                         timeout=10)
    return (run.stdout + run.stderr).strip()


@pytest.mark.integration
@pytest.mark.slow
def test_redis_command_sets_aof_noeviction_and_password(stack: dict[str, Service]) -> None:
    password = stack["redis"].env["REDIS_PASSWORD"]
    assert "NOAUTH" in _redis(stack, "ping", password=None)
    assert "WRONGPASS" in _redis(stack, "ping", password="wrong" + password)
    assert _redis(stack, "config", "get", "appendonly", password=password).split() == [
        "appendonly", "yes"]
    assert _redis(stack, "config", "get", "appendfsync", password=password).split()[1] == (
        "everysec")
    assert _redis(stack, "config", "get", "maxmemory-policy", password=password).split()[1] == (
        "noeviction")


@pytest.mark.integration
@pytest.mark.slow
def test_worker_answers_its_own_ping_with_task_events_on(stack: dict[str, Service]) -> None:
    from celery import Celery

    worker = stack["worker"]
    node = f"worker@{worker.env['HOSTNAME']}"
    app = Celery(broker=worker.env["TOKENRELAY_BROKER_URL"])
    try:
        conf = app.control.inspect(destination=[node], timeout=5).conf() or {}
    finally:
        app.close()
    assert node in conf, f"{node} did not answer: {conf}"
    # the worker's banner says whether it sends task events (Flower needs them)
    assert ".> task events: ON" in worker.log.read_text(), "TOKENRELAY_TASK_EVENTS=1 ignored"


@pytest.mark.integration
@pytest.mark.slow
def test_flower_asks_for_its_basic_auth(stack: dict[str, Service]) -> None:
    flower = stack["flower"]
    base = flower.localize("http://127.0.0.1:5555")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/workers", timeout=10)
    assert refused.value.code == 401
    token = base64.b64encode(flower.env["FLOWER_BASIC_AUTH"].encode()).decode()
    request = urllib.request.Request(f"{base}/workers",
                                     headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def _run_demo(
    stack: dict[str, Service], env: dict[str, str], chat: str, **isolate: str
) -> list[str]:
    """The demo service's command (to ``chat``, faster); returns what the sandbox chat shows."""
    with tempfile.TemporaryDirectory() as tmp:
        demo = Service("demo", env, stack["sandbox"].network, tmp,
                       append=f"--chat-id {chat} --rate 2000", isolate=isolate)
        try:
            demo.proc.wait(timeout=120)
        finally:
            demo.stop()
        output = demo.log.read_text()
    assert demo.proc.returncode == 0, output
    sandbox = stack["sandbox"].localize("http://sandbox:8081")
    with urllib.request.urlopen(f"{sandbox}/_sandbox/ledger", timeout=10) as answer:
        ledger = json.load(answer)
    return [m["text"] for m in ledger["chats"].get(chat, []) if not m["deleted"]]


def _stack_env(stack: dict[str, Service], **overrides: str) -> dict[str, str]:
    """The compose variables the running stack was started with."""
    return compose_env(REDIS_PASSWORD=stack["redis"].env["REDIS_PASSWORD"], **overrides)


@pytest.mark.integration
@pytest.mark.slow
def test_sandbox_profile_demo_streams_into_the_sandbox(stack: dict[str, Service]) -> None:
    """The demo command reaches the sandbox through the sandbox-worker; judged by the ledger."""
    shown = _run_demo(stack, _stack_env(stack), "4242")
    assert len(shown) >= 2, "the sample reply needs two Telegram messages"
    assert shown[-1].rstrip().endswith(DEMO_TAIL)


def _amqp_url() -> str | None:
    url = os.environ.get("TOKENRELAY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return url
    except OSError:
        return None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(_amqp_url() is None, reason="no RabbitMQ on 127.0.0.1:5672 (rabbitmq profile)")
def test_rabbitmq_variant(stack: dict[str, Service]) -> None:
    """TOKENRELAY_BROKER_URL=amqp://… (the rabbitmq profile): the sandbox worker's command and
    healthcheck work over RabbitMQ, Redis keeping the state, and the demo's reply arrives."""
    env = _stack_env(stack, TOKENRELAY_BROKER_URL=str(_amqp_url()))
    queue = {"TOKENRELAY_QUEUE": f"compose-amqp-{uuid.uuid4().hex[:8]}"}
    with tempfile.TemporaryDirectory() as tmp:
        worker = Service("sandbox-worker", env, stack["sandbox"].network, tmp, isolate=queue)
        try:
            assert worker.env["TOKENRELAY_BROKER_URL"].startswith("amqp://")
            assert worker.env["TOKENRELAY_REDIS_URL"].startswith("redis://")
            worker.wait_healthy()
            shown = _run_demo(stack, env, "4343", **queue)
        finally:
            worker.stop()
    assert shown and shown[-1].rstrip().endswith(DEMO_TAIL)


def test_interpolation_follows_compose() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("$$A ${A} ${B:-x${A}} ${E:-d} ${E-d} $A", env) == "$A 1 x1 d  1"
    with pytest.raises(MissingVariable):
        interpolate("${E:?need E}", env)
    assert referenced_variables("$${X} ${Y:-${Z}} $W $$V") == {"Y", "Z", "W"}
    assert shlex.split(interpolate(SERVICES["redis"]["command"][-1], {}))[0] == "exec"
