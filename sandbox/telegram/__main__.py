"""Command line: ``python -m sandbox.telegram --port 8081 [--latency 0.05 …]`` serves until ^C.

Each chat is shown live at ``/chats/<chat_id>`` (sandbox/page.py).
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from sandbox.telegram.knobs import KNOB_PARSERS, Knobs
from sandbox.telegram.server import TelegramEmulator


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator until interrupted: ``python -m sandbox.telegram --port 8081``."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.telegram", description="Loopback Telegram Bot API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    defaults = Knobs()
    for name, parse in KNOB_PARSERS.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=parse,
            default=getattr(defaults, name),
            help=f"(default: {getattr(defaults, name)})",
        )
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    try:
        emulator = TelegramEmulator(host, port, **args)
    except ValueError as exc:
        parser.error(str(exc))
    with emulator:
        print(f"Telegram sandbox listening on {emulator.base_url}", flush=True)
        print(f"live chat pages: {emulator.base_url}/chats/<chat_id>", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
