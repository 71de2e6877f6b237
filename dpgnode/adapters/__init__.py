"""Adapters: the real implementations of the ports (storage, chains, HSM, HTTP sinks)."""
