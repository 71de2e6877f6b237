"""Conversion between assets: exact rate math, quote pricing, limits (pure)."""
