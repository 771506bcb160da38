"""The Lua scripts of the store: one file per atomic operation in ``lua/``, each opening with
named locals for its KEYS and ARGV (the script's contract); ``_prelude.lua`` (the server's
clock) is prepended to every one."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import redis

#: directory of the Lua scripts, one file per atomic operation
LUA_DIR = Path(__file__).with_name("lua")

#: one script call: (script name, KEYS, ARGV)
ScriptCall = tuple[str, list[str], list[Any]]


class Scripts:
    """Runs the named scripts on one Redis client, alone or several in one round trip."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @cached_property
    def registered(self) -> dict[str, Any]:
        prelude = (LUA_DIR / "_prelude.lua").read_text()
        return {
            path.stem: self.redis.register_script(prelude + path.read_text())
            for path in sorted(LUA_DIR.glob("*.lua"))
            if not path.stem.startswith("_")
        }

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script (loading it when Redis does not know it yet)."""
        return self.registered[name](keys=keys, args=args)

    def pipelined(self, calls: list[ScriptCall]) -> list[Any]:
        """Run several scripts in one round trip (EVALSHA straight in a pipeline: redis-py's
        Script objects would send a SCRIPT EXISTS before every pipeline)."""
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            for name, keys, args in calls:
                pipe.evalsha(self.registered[name].sha, len(keys), *keys, *args)
            try:
                return pipe.execute()
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                for name in {c[0] for c in calls}:  # Redis restarted or flushed its scripts
                    self.redis.script_load(self.registered[name].script)
        raise AssertionError("unreachable")
