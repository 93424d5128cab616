"""docs/flows.md is the data mapping document: it must name every rule setting."""

from __future__ import annotations

from pathlib import Path

from app.flows.rules import RulesConfig

FLOWS_DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"


def test_every_rule_setting_is_documented() -> None:
    text = FLOWS_DOC.read_text(encoding="utf-8")
    missing = [
        f"rules.{section}.{name}"
        for section, field in RulesConfig.model_fields.items()
        for name in type(field.default_factory()).model_fields  # type: ignore[misc]
        if f"`{name}`" not in text or f"### rules.{section}" not in text
    ]
    assert not missing, f"document these in docs/flows.md: {', '.join(missing)}"
