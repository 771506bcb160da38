"""tokenrelay: stream LLM replies into chat messages that grow live."""

from __future__ import annotations

import argparse
import os
import sys

#: the documented worker command, after ``celery``
WORKER = ("-A", "workers", "worker")


def _stream_id(value: str) -> str:
    from tokenrelay.ids import validate_stream_id

    try:
        return validate_stream_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        # every argument goes to Celery untouched (argparse would claim --help and friends)
        os.execv(sys.executable, [sys.executable, "-m", "celery", *WORKER, *argv[1:]])
    parser = argparse.ArgumentParser(prog="tokenrelay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "worker", add_help=False,
        help=f"run a worker: `celery {' '.join(WORKER)}` with the arguments that follow",
    )
    status = sub.add_parser(
        "status", help="live streams: channel, chat, age, chars, messages, lag, lease holder"
    )
    status.add_argument("--limit", type=int, default=100, help="most streams shown (100)")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    inspect = sub.add_parser(
        "inspect", help="one stream: meta, sent state per segment, versions, counters, result"
    )
    inspect.add_argument("stream_id", type=_stream_id)
    inspect.add_argument("--json", action="store_true", help="print JSON instead of tables")
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
    if args.command in ("status", "inspect"):
        from rich.console import Console

        from tokenrelay.apps import status as views

        if args.command == "status":
            return views.guarded(
                lambda s, out: views.status(s, out, max(1, args.limit), args.json),
                Console(stderr=True),
            )
        return views.guarded(
            lambda s, out: views.inspect(s, out, args.stream_id, args.json), Console(stderr=True)
        )
    if args.command == "demo":
        from sandbox.registry import EMULATORS
        from tokenrelay.apps.demo import run

        if not os.environ.get("TOKENRELAY_BROKER_URL") and args.channel not in EMULATORS:
            parser.error(f"no sandbox for channel {args.channel!r}; known: "
                         f"{', '.join(sorted(EMULATORS))}")
        return run(args.chat_id, args.rate, channel=args.channel, wait=args.wait)
    return 2


if __name__ == "__main__":
    sys.exit(main())
