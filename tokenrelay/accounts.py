"""Accounts: which bot of which platform a stream uses, and where its secrets and settings are.

A stream names ``(channel, account)``; only the worker turns that into credentials, through
:func:`lookup`, which asks in this order:

1. ``TOKENRELAY_CREDENTIALS=module:callable``: ``callable(platform, account)`` returns a mapping
   of keys (``BOT_TOKEN``, ``API_BASE``, …) or None; results are cached for
   ``CREDENTIALS_CACHE_TTL`` seconds, never logged (deployments with one bot per customer).
2. ``TOKENRELAY_ACCOUNTS_FILE``: a TOML file of ``[[account]]`` tables with ``platform``,
   ``name`` and keys, each either the value or ``<key>_env = "VAR"`` naming the variable
   that holds it.
3. The environment: ``TOKENRELAY_<PLATFORM>_<ACCOUNT>_<KEY>``, and for the account named
   ``default`` also ``TOKENRELAY_<PLATFORM>_<KEY>``.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from tokenrelay.config import ENV_PREFIX, ConfigError

#: seconds a TOKENRELAY_CREDENTIALS answer is reused
CREDENTIALS_CACHE_TTL = 300.0

_lock = threading.Lock()
_cache: dict[tuple[str, str, str], tuple[float, Mapping[str, Any] | None]] = {}
_files: dict[tuple[str, float], dict[tuple[str, str], dict[str, Any]]] = {}


def _norm(key: str) -> str:
    return key.upper().replace("-", "_")


def _from_callable(spec: str, platform: str, account: str) -> Mapping[str, Any] | None:
    now = time.monotonic()
    with _lock:
        hit = _cache.get((spec, platform, account))
        if hit is not None and hit[0] > now:
            return hit[1]
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ConfigError(f"{ENV_PREFIX}CREDENTIALS must be module:callable, not {spec!r}")
    try:
        fn: Callable[[str, str], Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{ENV_PREFIX}CREDENTIALS={spec!r} cannot be loaded: "
                          f"{type(exc).__name__}") from None
    got = fn(platform, account)
    if got is not None and not isinstance(got, Mapping):
        raise ConfigError(f"{ENV_PREFIX}CREDENTIALS={spec!r} must return a mapping or None")
    answer = None if got is None else {_norm(k): v for k, v in got.items()}
    with _lock:
        _cache[(spec, platform, account)] = (now + CREDENTIALS_CACHE_TTL, answer)
    return answer


def _from_file(path: str, platform: str, account: str, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        raise ConfigError(f"{ENV_PREFIX}ACCOUNTS_FILE={path!r} cannot be read") from None
    with _lock:
        table = _files.get((path, mtime))
    if table is None:
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{ENV_PREFIX}ACCOUNTS_FILE={path!r}: {exc}") from None
        table = {}
        for entry in doc.get("account", []):
            if not isinstance(entry, dict) or "platform" not in entry or "name" not in entry:
                raise ConfigError(f"{path}: every [[account]] needs platform and name")
            table[(str(entry["platform"]).lower(), str(entry["name"]))] = entry
        with _lock:
            _files[(path, mtime)] = table
    entry = table.get((platform, account), {})
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("platform", "name"):
            continue
        if key.endswith("_env"):
            var = str(value)
            if var in env:
                out[_norm(key[: -len("_env")])] = env[var]
        else:
            out[_norm(key)] = value
    return out


def lookup(
    platform: str,
    account: str,
    key: str,
    *,
    default: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The value of ``key`` (e.g. ``BOT_TOKEN``, ``API_BASE``) for ``account`` on ``platform``.

    ConfigError naming where it was looked for when it is nowhere and has no default.
    """
    env = os.environ if env is None else env
    platform, key = platform.lower(), _norm(key)
    spec = env.get(ENV_PREFIX + "CREDENTIALS", "").strip()
    if spec:
        got = _from_callable(spec, platform, account)
        if got and got.get(key) not in (None, ""):
            return str(got[key]).strip()
    path = env.get(ENV_PREFIX + "ACCOUNTS_FILE", "").strip()
    if path:
        got = _from_file(path, platform, account, env)
        if got.get(key) not in (None, ""):
            return str(got[key]).strip()
    names = [f"{ENV_PREFIX}{platform.upper()}_{account.upper()}_{key}"]
    if account == "default":
        names.insert(0, f"{ENV_PREFIX}{platform.upper()}_{key}")
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    if default is not None:
        return default
    raise ConfigError(f"no {key} for {platform} account {account!r}: set {names[0]}")


def clear_cache() -> None:
    """Forget cached TOKENRELAY_CREDENTIALS answers and parsed account files."""
    with _lock:
        _cache.clear()
        _files.clear()


def credential(
    channel: str,
    account: str = "default",
    env: Mapping[str, str] | None = None,
    kind: str = "BOT_TOKEN",
) -> str:
    """The secret of ``account`` on ``channel`` (see ``tokenrelay.accounts.lookup``).

    The default account reads ``TOKENRELAY_TELEGRAM_BOT_TOKEN``; an account named ``support``
    reads ``TOKENRELAY_TELEGRAM_SUPPORT_BOT_TOKEN``; a webhook's URL is ``kind="URL"``.
    """
    return lookup(channel, account, kind, env=env)
