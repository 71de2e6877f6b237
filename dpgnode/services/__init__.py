"""Use cases: each takes its ports and owns one transaction boundary."""
