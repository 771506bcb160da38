"""The Celery application: built from ``celeryconfig`` and the task module, nothing else."""

from __future__ import annotations

from celery import Celery


def create_app(**overrides: object) -> Celery:
    """Build the tokenrelay Celery app; ``overrides`` replace celeryconfig values (tests, demo)."""
    app = Celery("tokenrelay", include=["workers.tasks"])
    app.config_from_object("celeryconfig")
    if overrides:
        app.conf.update(overrides)
    return app


app = create_app()
