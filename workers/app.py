"""The Celery application: built from ``celeryconfig``, the task module and the flush engine's
bootstep, nothing else."""

from __future__ import annotations

from celery import Celery

from workers.bootsteps import FlushEngineStep


def create_app(**overrides: object) -> Celery:
    """Build the tokenrelay Celery app; ``overrides`` replace celeryconfig values (tests, demo)."""
    app = Celery("tokenrelay", include=["workers.tasks"])
    app.config_from_object("celeryconfig")
    if overrides:
        app.conf.update(overrides)
    app.steps["worker"].add(FlushEngineStep)
    return app


app = create_app()
