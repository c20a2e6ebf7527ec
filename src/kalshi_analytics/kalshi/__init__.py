"""Kalshi exchange boundary (placeholder, filled below)."""
