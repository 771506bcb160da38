"""tokenrelay: stream LLM replies into chat messages that grow live."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenrelay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="stream a sample reply end to end and show the chat")
    demo.add_argument(
        "--chat-id", help="chat to stream to (required with TOKENRELAY_BROKER_URL: a real chat)"
    )
    demo.add_argument("--rate", type=float, default=120.0, help="tokens per second (default 120)")
    demo.add_argument(
        "--channel", default="telegram",
        help="platform; embedded runs use its sandbox (default telegram)",
    )
    demo.add_argument(
        "--no-wait", dest="wait", action="store_false", default=None,
        help="exit when the reply is complete (default when stdin is not a terminal); "
        "otherwise the sandbox chat page stays up until Ctrl-C",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from sandbox.registry import EMULATORS
        from tokenrelay.demo import run

        if not os.environ.get("TOKENRELAY_BROKER_URL") and args.channel not in EMULATORS:
            parser.error(f"no sandbox for channel {args.channel!r}; known: "
                         f"{', '.join(sorted(EMULATORS))}")
        return run(args.chat_id, args.rate, channel=args.channel, wait=args.wait)
    return 2


if __name__ == "__main__":
    sys.exit(main())
