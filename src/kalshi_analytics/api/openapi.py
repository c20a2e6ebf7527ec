"""The API's OpenAPI document without a server: ``python -m kalshi_analytics.api.openapi [FILE]``.

The dashboard's TypeScript client is generated from it (``frontend/openapi.json``, then ``npm run generate``);
a test renders it again and fails when the committed copy differs, so the client cannot drift from the API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kalshi_analytics.config import Settings


def openapi_document() -> dict[str, Any]:
    """The document the API serves at ``/api/v1/openapi.json`` (no database, no lifespan: the schema only)."""
    from kalshi_analytics.api.app import create_app

    settings = Settings(_env_file=None, api_dashboard=False)
    return create_app(settings).openapi()


def render() -> str:
    """The document as committed: sorted keys, two-space indents, a final newline (stable diffs)."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
