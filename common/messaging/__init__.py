"""Outbox, inbox and dead letters: how a service exchanges events with exactly-once effects."""
