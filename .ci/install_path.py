"""The README's install path, as a newcomer takes it: run by .ci/run with a fresh virtualenv's
python that has only ``pip install .`` (no extras, no test tools).

It starts a private redis-server and the Telegram sandbox, a bare ``celery -A workers worker``
(no flags but the queue and node name), checks it with ``celery -A workers inspect ping``, and
streams one reply into the sandbox, judged from the sandbox's ledger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

TOKEN = "4242:install-path-check"
REPLY = "Installed from a fresh virtualenv, and the reply still grows live. ✅"


def main() -> int:
    from producers import StreamProducer
    from sandbox.telegram import TelegramEmulator
    from tokenrelay.config import Settings
    from tokenrelay.processes import stop_process
    from tokenrelay.redis_server import RedisServer

    with RedisServer() as redis, TelegramEmulator(token=TOKEN) as sandbox:
        env = {
            **os.environ,
            "TOKENRELAY_BROKER_URL": redis.url,
            "TOKENRELAY_TELEGRAM_BOT_TOKEN": TOKEN,
            "TOKENRELAY_TELEGRAM_API_BASE": sandbox.base_url,
        }
        os.environ.update(env)
        celery = [sys.executable, "-m", "celery", "-A", "workers"]
        worker = subprocess.Popen(
            [*celery, "worker", "-n", "install-check@%h", "--loglevel", "INFO"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                ping = subprocess.run(
                    [*celery, "inspect", "ping", "--timeout", "2"], env=env,
                    capture_output=True, text=True,
                )
                if ping.returncode == 0 and "pong" in ping.stdout:
                    print("install path: celery inspect ping answered", flush=True)
                    break
                if worker.poll() is not None or time.monotonic() > deadline:
                    out = worker.stdout.read() if worker.poll() is not None else ""
                    print(f"install path: the bare worker did not answer\n{out}{ping.stdout}"
                          f"{ping.stderr}", file=sys.stderr)
                    return 1
            producer = StreamProducer(Settings.from_env())
            stream = producer.start(channel="telegram", chat_id="77")
            for i in range(0, len(REPLY), 5):
                stream.emit(REPLY[i : i + 5])
            result = stream.stop(timeout=60)
            producer.close()
            shown = sandbox.texts("77")
            if not result.all_sent or shown != [REPLY]:
                print(f"install path: the chat shows {shown!r}; {result}", file=sys.stderr)
                return 1
            print(f"install path: one reply streamed, the chat shows it whole ({result.how})")
            return 0
        finally:
            stop_process(worker, timeout=10)


if __name__ == "__main__":
    sys.exit(main())
