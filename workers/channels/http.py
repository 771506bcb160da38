"""The one place that builds HTTP sessions and the retry policy for every channel client.

Clients say *what* to call and *how to read the answer*; this module decides how to retry:
server errors (5xx), timeouts and dropped connections back off exponentially with jitter.
Rate limits (429) are not retried here: the core decides (skip an interim edit, or schedule
the final after ``retry_after``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from workers.channels.base import PermanentFailure, TransientFailure
from workers.redact import install_log_filter, redact

#: connection pool size per platform account (one worker process, many threads)
POOL_SIZE = 64


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry transient failures of one call."""

    attempts: int = 4
    #: first backoff in seconds (doubles, with full jitter)
    initial: float = 0.1
    #: longest single backoff in seconds
    max_wait: float = 2.0
    #: give up on the call after this many seconds in all
    deadline: float = 20.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


class _Retry(Exception):
    """Internal: this attempt failed in a way that another attempt may fix."""


class Transport:
    """A pooled ``requests.Session`` plus the tenacity retry policy."""

    def __init__(self, timeout: float, policy: RetryPolicy | None = None) -> None:
        install_log_filter()
        self.timeout = (min(3.05, timeout), timeout)
        self.policy = policy or RetryPolicy()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def post_json(
        self,
        url: str,
        payload: dict[str, Any],
        policy: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """POST ``payload`` as JSON; retries transient failures; returns any non-5xx reply."""
        policy = policy or self.policy
        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline),
            wait=wait_random_exponential(multiplier=policy.initial, max=policy.max_wait),
        )
        try:
            return retrying(self._attempt, url, payload, headers)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise TransientFailure(
                f"{_route(url)} failed {policy.attempts} times: {cause}"
            ) from None

    def _attempt(
        self, url: str, payload: dict[str, Any], headers: dict[str, str] | None
    ) -> Reply:
        try:
            resp = self.session.post(url, json=payload, headers=headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(redact(type(exc).__name__)) from None
        except requests.RequestException as exc:  # a malformed URL and the like: no retry
            raise PermanentFailure(f"{type(exc).__name__}: {redact(str(exc))}") from None
        if resp.status_code >= 500:
            raise _Retry(f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return Reply(resp.status_code, dict(resp.headers), body)


def _route(url: str) -> str:
    """The last path element of ``url`` (the API method), safe to show."""
    return redact(url).rsplit("/", 1)[-1]
