"""docs/configuration.md is generated from Settings and kept in sync."""

from __future__ import annotations

from pathlib import Path

from kalshi_analytics.config import Settings
from kalshi_analytics.configdoc import FALLBACK_DESCRIPTIONS, MACHINE_DEFAULTS, env_name, main, render

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "configuration.md"


def test_the_reference_is_in_sync_with_settings() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m kalshi_analytics.configdoc"


def test_every_setting_is_documented_with_a_meaning() -> None:
    text = render()
    rows = {line.split(" | ")[0].strip("| `"): line for line in text.splitlines() if line.startswith("| `")}
    for name, info in Settings.model_fields.items():
        var = env_name(name, info)
        assert var in rows, f"{var} missing"
        meaning = rows[var].rstrip(" |").rsplit(" | ", 1)[-1]
        assert meaning.strip(), f"{var} has no meaning: give its Field a description"
    assert "KALSHI_ANALYTICS_DATA_DIR" in rows  # the alias, not the field name
    assert set(FALLBACK_DESCRIPTIONS) <= set(Settings.model_fields)
    assert set(MACHINE_DEFAULTS) <= set(Settings.model_fields)


def test_defaults_and_bounds_come_from_the_fields() -> None:
    text = render()
    assert "| `POLL_INTERVAL_SECONDS` | `5.0` | number, > 0, ≤ 3600 |" in text
    assert "| `KALSHI_ENV` | `sim` | `prod` \\| `demo` \\| `sim` |" in text
    assert "| `API_RATE_LIMIT_ENABLED` | `true` | true/false |" in text
    assert str(Path.home()) not in text, "no machine's own path in the reference"


def test_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    doc = tmp_path / "configuration.md"
    assert main([str(doc)]) == 0
    assert main([str(doc), "--check"]) == 0
    doc.write_text(doc.read_text(encoding="utf-8").replace("POLL_INTERVAL_SECONDS", "POLL_SECONDS"), encoding="utf-8")
    assert main([str(doc), "--check"]) == 1
