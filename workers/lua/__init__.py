"""The Lua scripts of workers.state: one file per atomic Redis operation."""
