"""Keeps credentials out of logs and exception text.

Channel clients register their secrets here; :func:`redact` replaces them with ``***`` and a
logging filter does the same for HTTP libraries that log request URLs (Telegram puts the bot
token in the URL path).
"""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_lock = threading.Lock()
#: loggers that print request URLs at DEBUG level
URL_LOGGERS = ("urllib3.connectionpool", "requests", "urllib3")


def register_secret(secret: str) -> None:
    """Remember ``secret`` so that it is masked everywhere from now on."""
    if secret:
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Masks registered secrets in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(str(record.msg))
            if record.args:
                args = record.args if isinstance(record.args, tuple) else (record.args,)
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        return True


_filter = RedactingFilter()


def install_log_filter() -> None:
    """Attach the redacting filter to the HTTP libraries' loggers (idempotent)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
