"""`versions.py` matches the installed Chainlit, on each release `scripts/dev compat` runs."""

from __future__ import annotations

from chainlit.data.base import BaseDataLayer
from chainlit.step import StepDict
from packaging.version import Version

from tests.conformance.versions import CHAINLIT, NEWER_STEP_KEYS


def test_each_newer_step_key_is_in_step_dict_from_its_release_on() -> None:
    present = {key: key in StepDict.__annotations__ for key in NEWER_STEP_KEYS}
    assert present == {key: Version(release) <= CHAINLIT for key, release in NEWER_STEP_KEYS.items()}


def test_step_favorites_are_there_from_2_10_on() -> None:
    assert hasattr(BaseDataLayer, "set_step_favorite") == (Version("2.10.0") <= CHAINLIT)
