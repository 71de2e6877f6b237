"""Ports: the small protocols services need; adapters implement them."""
