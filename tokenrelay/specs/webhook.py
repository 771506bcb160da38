"""Webhooks and the console as the producer sees them: any printable chat name; whole
messages only (they cannot edit)."""

from __future__ import annotations

from tokenrelay.specs.base import ChannelSpec

#: longest message, in characters (most gateways accept more; a per-message cut keeps it safe)
MAX_CHARS = 4000


class WebhookSpec(ChannelSpec):
    """A plain webhook: one POST per whole message."""

    name = "webhook"
    can_edit = False
    max_units = MAX_CHARS


class ConsoleSpec(WebhookSpec):
    """The console: whole messages to the worker's log, no credentials (local trials)."""

    name = "console"
