"""Operator tooling behind the `saga` command: inspecting orders, tailing topics, replays, rebuilds."""
