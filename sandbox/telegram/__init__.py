"""Loopback emulator of the Telegram Bot API, for tests and the demo.

It speaks the Bot API's wire format (``/bot<token>/<method>`` with JSON, form or query parameters;
errors as ``{"ok": false, "error_code": N, "description": "…"}``), enforces the text limit, entity
parsing and flood limits, injects faults, and keeps a ledger of every call and every message that
tests read to judge outcomes::

    with TelegramEmulator(seed=1) as emu:
        requests.post(f"{emu.base_url}/bot123:abc/sendMessage", json={"chat_id": 7, "text": "hi"})
        assert emu.texts(7) == ["hi"]

Stand-alone for other processes: ``python -m sandbox.telegram --port 8081 --latency 0.05``; then
``GET /_sandbox/ledger`` reports what it holds (see ``TelegramEmulator.control``).

Layout, each module importing only those above it (the server, fault knobs and ledger
plumbing every emulator shares are ``sandbox.loopback`` and ``sandbox.ledger``):

- ``knobs``: ``Knobs``, the settings ``configure`` changes, and how each is read from text.
- ``entities``: UTF-16 length and the HTML / MarkdownV2 / Markdown parsers (``visible_text``).
- ``flood``: token buckets and ``FloodControl`` with its growing penalties.
- ``ledger``: ``SandboxMessage``, ``SandboxCall``, ``SandboxDraft`` and the ``Ledger`` holding them.
- ``api``: ``BotApi``, the Bot API methods, and ``ApiError``; no HTTP.
- ``server``: the HTTP handler and ``TelegramEmulator`` (faults, ledger recording, control paths).
- ``__main__``: the command line.
"""

# ``name as name``: helpers importable from the single-module emulator stay importable here,
# outside ``__all__`` as they were.
from sandbox.telegram.api import BLOCKED, NOT_MODIFIED, ApiError, BotApi
from sandbox.telegram.api import ApiReply as ApiReply
from sandbox.telegram.api import chat_id_param as chat_id_param
from sandbox.telegram.api import int_param as int_param
from sandbox.telegram.entities import PARSE_MODES as PARSE_MODES
from sandbox.telegram.entities import TRIMMED as TRIMMED
from sandbox.telegram.entities import EntityParseError, utf16_len, visible_text
from sandbox.telegram.flood import PENALTY_STEP as PENALTY_STEP
from sandbox.telegram.flood import FloodControl, TokenBucket
from sandbox.telegram.flood import is_private as is_private
from sandbox.telegram.knobs import KNOB_PARSERS as KNOB_PARSERS
from sandbox.telegram.knobs import Knobs
from sandbox.telegram.ledger import Ledger, SandboxCall, SandboxDraft, SandboxMessage
from sandbox.telegram.ledger import normalise_chat_id as normalise_chat_id
from sandbox.telegram.server import MAX_BODY as MAX_BODY
from sandbox.telegram.server import TelegramEmulator
from sandbox.telegram.server import parse_params as parse_params

__all__ = [
    "BLOCKED",
    "NOT_MODIFIED",
    "ApiError",
    "BotApi",
    "EntityParseError",
    "FloodControl",
    "Knobs",
    "Ledger",
    "SandboxCall",
    "SandboxDraft",
    "SandboxMessage",
    "TelegramEmulator",
    "TokenBucket",
    "utf16_len",
    "visible_text",
]
