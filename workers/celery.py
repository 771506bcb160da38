"""Where ``celery -A workers`` finds the app when ``workers.app`` is already the module."""

from workers.app import app

__all__ = ["app"]
