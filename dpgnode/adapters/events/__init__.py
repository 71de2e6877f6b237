"""Event sinks the outbox relay delivers to (in-process now; webhooks and brokers later)."""
