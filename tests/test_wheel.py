"""The built wheel carries what an install needs: the migrations, py.typed, the licence, and a working CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
# The MIT licence's grant and disclaimer (https://spdx.org/licenses/MIT.html), whitespace folded.
MIT_GRANT = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
    'associated documentation files (the "Software"), to deal in the Software without restriction,'
)
MIT_DISCLAIMER = 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,'


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, unpacked into a folder of its own."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
    )
    [wheel] = dist.glob("chainlit_openrag_datalayer-*.whl")
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def run_cli(site: Path, *args: str, database_url: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m chainlit_openrag_datalayer ...` importing the package from the wheel, not the checkout."""
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "chainlit_openrag_datalayer", *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_wheel_contains_migrations_and_py_typed(unpacked_wheel: Path) -> None:
    """Both revisions, the Alembic environment and the typing marker are inside the package."""
    package = unpacked_wheel / "chainlit_openrag_datalayer"
    expected = [
        "py.typed",
        "migrations/env.py",
        "migrations/script.py.mako",
        "migrations/versions/0001_initial_schema.py",
    ]
    assert [name for name in expected if not (package / name).is_file()] == []
    assert len(list((package / "migrations" / "versions").glob("0*.py"))) >= 2


def test_wheel_ships_the_mit_licence_it_declares(unpacked_wheel: Path) -> None:
    """pyproject says MIT; the wheel's metadata says so and carries the MIT text with our copyright line."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    [dist_info] = unpacked_wheel.glob("chainlit_openrag_datalayer-*.dist-info")
    metadata = Parser().parsestr((dist_info / "METADATA").read_text())
    assert (declared, metadata["License-Expression"], metadata["License-File"]) == ("MIT", "MIT", "LICENSE")
    text = " ".join((dist_info / "licenses" / "LICENSE").read_text().split())
    assert text.startswith("MIT License Copyright (c) ")
    assert "chainlit-openrag-datalayer contributors" in text
    assert MIT_GRANT in text and MIT_DISCLAIMER in text
    assert (dist_info / "licenses" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()


def test_upgrade_from_the_wheel_migrates_an_empty_database(unpacked_wheel: Path, database_url: str) -> None:
    """`python -m chainlit_openrag_datalayer upgrade` works from an install with no repository around."""
    upgraded = run_cli(unpacked_wheel, "upgrade", database_url=database_url)
    assert upgraded.returncode == 0, upgraded.stderr

    current = run_cli(unpacked_wheel, "current", database_url=database_url)
    assert current.returncode == 0 and "head" in current.stdout, current.stdout + current.stderr


def test_cli_help_from_the_wheel(unpacked_wheel: Path) -> None:
    """--help lists the commands and exits 0, with the package imported from the wheel."""
    result = run_cli(unpacked_wheel, "--help")
    assert result.returncode == 0 and "upgrade" in result.stdout and "doctor" in result.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import chainlit_openrag_datalayer as p; print(p.__file__)"],
        cwd=unpacked_wheel,
        env={**os.environ, "PYTHONPATH": str(unpacked_wheel)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(unpacked_wheel))
