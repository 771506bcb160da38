"""The one place that makes HTTP requests to chat platforms, for every channel client.

Clients say *what* to call and *how to read the answer*; this module decides how long a call may
take and whether to retry it:

- A call never outlives the stream's lease. The flusher opens a :func:`guarded` block with the
  lease's deadline and a ``renew`` callback; each attempt's timeout is cut to what is left of it
  and the lease is renewed before every retry (a lost lease raises out of the call). A stale
  worker therefore cannot still be talking to the platform once another worker owns the stream.
- Server errors (5xx), connect failures and timeouts of idempotent calls are retried a few
  times with a short jittered backoff; longer waits are the flusher's job (it reschedules the
  stream instead of sleeping in a worker thread).
- A call that creates something (``idempotent=False``) is never retried once its request may
  have reached the platform: a read timeout or a connection dropped after sending raises
  :class:`Ambiguous` (the platform may show the message).
- Rate limits (429) are not retried here: the client maps them to ``RateLimited``.
"""

from __future__ import annotations

import contextvars
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

from tokenrelay.backoff import backoff
from tokenrelay.redact import install_log_filter, redact
from workers.channels.errors import Ambiguous, CallExpired, PermanentFailure, TransientFailure

#: connection pool size per platform account (one worker process, many threads)
POOL_SIZE = 256
#: seconds an attempt needs at least; less left on the lease means the call is not made
MIN_ATTEMPT = 0.05
#: seconds kept free between an attempt's end and the lease's expiry (clock and Redis latency)
LEASE_MARGIN = 0.25


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry transient failures inside one call (keep it short: threads wait)."""

    attempts: int = 3
    #: first backoff in seconds (doubles, with full jitter)
    initial: float = 0.05
    #: longest single backoff in seconds
    max_wait: float = 0.5


@dataclass
class Guard:
    """The deadline of the calls made inside :func:`guarded` (monotonic seconds)."""

    deadline: float
    #: renews the lease; returns the new deadline, raises when the lease is lost
    renew: Callable[[], float]

    #: an attempt's request may have reached the platform without us seeing the answer (a
    #: timeout or a drop after sending): it may still act on it later, even if a retry worked
    uncertain: bool = False

    def renew_now(self) -> None:
        self.deadline = self.renew()

    def left(self) -> float:
        return self.deadline - LEASE_MARGIN - time.monotonic()


_guard: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("guard", default=None)


@contextmanager
def guarded(deadline: float, renew: Callable[[], float]) -> Iterator[Guard]:
    """Every HTTP call in this block ends before ``deadline`` (monotonic seconds)."""
    guard = Guard(deadline, renew)
    token = _guard.set(guard)
    try:
        yield guard
    finally:
        _guard.reset(token)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


class _Retry(Exception):
    """Internal: this attempt failed in a way that another attempt may fix."""


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (safe to retry any call)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(
        reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
    )


class Transport:
    """A pooled ``requests.Session`` plus the retry and deadline rules above."""

    def __init__(self, timeout: float, policy: RetryPolicy | None = None) -> None:
        install_log_filter()
        #: seconds for one attempt (connect + read) when no lease cuts it shorter
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.session = requests.Session()
        # read proxy settings once here, not on every call (measured: 13% of worker CPU)
        self.session.trust_env = False
        self.session.proxies.update(urllib.request.getproxies())
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def post_json(
        self,
        url: str,
        payload: dict[str, Any],
        policy: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> Reply:
        """POST ``payload`` as JSON (see :meth:`request`)."""
        return self.request("POST", url, payload, headers, idempotent=idempotent, policy=policy)

    def request(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        idempotent: bool = True,
        policy: RetryPolicy | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        """Make the call; returns any non-5xx reply. Raises TransientFailure (retries spent),
        Ambiguous (a non-idempotent call's answer was lost), CallExpired (the lease's deadline
        left no time) or PermanentFailure (the request itself is malformed)."""
        policy = policy or self.policy
        guard = _guard.get()
        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            stop=stop_after_attempt(policy.attempts),
            wait=lambda state: backoff(state.attempt_number, policy.initial, policy.max_wait),
            # renew the lease before every retry: a lost lease raises out of the call
            before_sleep=None if guard is None else lambda _: guard.renew_now(),
        )
        try:
            return retrying(self._guarded_attempt, guard, method, url, payload, headers,
                            params, idempotent)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise TransientFailure(
                f"{_route(url)} failed {policy.attempts} times: {cause}", method=_route(url)
            ) from None

    def _guarded_attempt(
        self,
        guard: Guard | None,
        method: str,
        url: str,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None,
        params: dict[str, str] | None,
        idempotent: bool,
    ) -> Reply:
        """One attempt, cut to the lease's deadline (renewed before every retry)."""
        budget = self.timeout if guard is None else min(self.timeout, guard.left())
        if budget < MIN_ATTEMPT:
            raise CallExpired(
                f"{_route(url)}: the stream's lease leaves no time for the call",
                method=_route(url),
            )
        try:
            return self._attempt(method, url, payload, headers, params, budget)
        except (requests.ConnectionError, requests.Timeout) as exc:
            name = redact(type(exc).__name__)
            if guard is not None and not _never_sent(exc):
                guard.uncertain = True
            if not idempotent and not _never_sent(exc):
                raise Ambiguous(
                    f"{_route(url)}: answer lost ({name}); the platform may have acted",
                    method=_route(url),
                ) from None
            raise _Retry(name) from None

    def _attempt(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None,
        params: dict[str, str] | None,
        budget: float,
    ) -> Reply:
        try:
            resp = self.session.request(
                method, url, json=payload, headers=headers, params=params,
                timeout=(min(3.05, budget), budget),
            )
        except (requests.ConnectionError, requests.Timeout):
            raise
        except requests.RequestException as exc:  # a malformed URL and the like: no retry
            raise PermanentFailure(f"{type(exc).__name__}: {redact(str(exc))}") from None
        if resp.status_code >= 500:
            raise _Retry(f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {"value": body}
        return Reply(resp.status_code, dict(resp.headers), body)


def _route(url: str) -> str:
    """The last path element of ``url`` (the API method), safe to show."""
    return redact(url.split("?", 1)[0]).rsplit("/", 1)[-1]
