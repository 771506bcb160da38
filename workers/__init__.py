"""tokenrelay workers: ``celery -A workers worker`` finds the app here.

The app is built on first access of ``workers.app``, so producers, which import only
the store (``tokenrelay.store``) and the channel specs, never build it as a side effect.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from workers.app import app

        return app
    raise AttributeError(name)
