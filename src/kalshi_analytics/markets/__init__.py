"""Markets: pricing rules, queries, API endpoints and response schemas."""
