"""The HTTP toolkit features use: problem errors, dependencies, rate limits, response cache, cursors, server."""
