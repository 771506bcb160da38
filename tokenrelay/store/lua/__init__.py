"""The Lua scripts of the store (tokenrelay.store.scripts): one file per atomic Redis operation."""
