""".env.example names every variable the gateway reads, each with a comment, and shows each
setting's real default: a new setting, or a new ${VAR} in the example config, fails here until
it is documented."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import TypeAdapter

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def entries() -> dict[str, tuple[bool, str, str]]:
    """name → (commented out, value, the comment line above it)."""
    found: dict[str, tuple[bool, str, str]] = {}
    previous = ""
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            name = match.group(2)
            assert name not in found, f"{name} is listed twice"
            found[name] = (bool(match.group(1)), match.group(3), previous)
        previous = line.strip()
    return found


def setting_names() -> dict[str, str]:
    return {f"GATEWAY_{field.upper()}": field for field in Settings.model_fields}


def test_every_setting_is_listed_with_a_comment() -> None:
    listed = entries()
    missing = sorted(set(setting_names()) - set(listed))
    assert not missing, f".env.example lacks {missing}"
    for name in setting_names():
        comment = listed[name][2]
        assert comment.startswith("#") and not ASSIGNMENT.match(comment), (
            f"{name} has no comment of its own above it"
        )


def test_no_listed_gateway_variable_is_unknown() -> None:
    unknown = sorted(n for n in entries() if n.startswith("GATEWAY_") and n not in setting_names())
    assert not unknown, f".env.example lists {unknown}, which no setting reads"


def test_each_commented_default_is_the_real_default() -> None:
    for name, (commented, value, _) in entries().items():
        field = setting_names().get(name)
        if field is None or not commented or not value:
            continue
        info = Settings.model_fields[field]
        assert TypeAdapter(info.annotation).validate_python(value) == info.default, (
            f"{name}={value} in .env.example, but the default is {info.default!r}"
        )


def test_every_variable_the_example_config_uses_is_listed() -> None:
    text = (ROOT / "deploy" / "gateway.example.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    assert used, "the example config uses no ${VAR}: is this test still reading the right file?"
    listed = entries()
    missing = sorted(used - set(listed))
    assert not missing, f".env.example lacks {missing} (used by deploy/gateway.example.yaml)"
    for name in used:
        assert listed[name][2].startswith("#"), f"{name} has no comment above it"


def test_every_variable_docker_compose_interpolates_is_listed() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m for m in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)}
    missing = sorted(used - set(entries()))
    assert not missing, f".env.example lacks {missing} (used by docker-compose.yml)"
