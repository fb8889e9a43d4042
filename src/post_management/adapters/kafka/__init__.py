"""Kafka adapter: relays the outbox table to Kafka topics (docs/events.md)."""
