"""The API fixtures these tests use live in tests/api/conftest.py (a conftest only serves its own folder)."""

from tests.api.conftest import app, app_factory, client

__all__ = ["app", "app_factory", "client"]
