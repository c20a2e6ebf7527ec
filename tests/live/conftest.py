"""Paper trading tests: the test strategy, registered on import (own_db comes from tests/conftest.py)."""

from __future__ import annotations

from tests.live import strategies  # noqa: F401  (registers test_every_few)
