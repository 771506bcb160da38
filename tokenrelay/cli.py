"""tokenrelay: stream LLM replies into chat messages that grow live."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenrelay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="stream a sample reply end to end and show the chat")
    demo.add_argument("--chat-id", help="real chat to stream to (needs TOKENRELAY_BROKER_URL)")
    demo.add_argument("--rate", type=float, default=120.0, help="tokens per second (default 120)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from tokenrelay.demo import run

        return run(args.chat_id, args.rate)
    return 2


if __name__ == "__main__":
    sys.exit(main())
