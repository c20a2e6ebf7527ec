"""The API fixtures (the real app over httpx's ASGI transport) for this folder's tests."""

from tests.api.conftest import app, app_factory, client

__all__ = ["app", "app_factory", "client"]
