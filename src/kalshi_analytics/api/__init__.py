"""The HTTP API: app factory, lifespan, errors, rate limits, health, live stream."""
