"""Loopback stand-ins for Mural's two network edges, and the rig that runs the real bot against them.

`fake_discord` (gateway websocket + REST) and `fake_openai` (an OpenAI-compatible HTTP server) speak
the real protocols on 127.0.0.1, so the real discord.py and openai clients talk to them unchanged.
`rig` starts the bot built by `bot.app.build_bot` against both, with a real SQLite file. Tests and
benchmarks both use this package; neither imports the other.
"""
