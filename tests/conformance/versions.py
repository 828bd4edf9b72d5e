"""The installed Chainlit release, and markers for what later releases brought.

`scripts/dev compat` runs this suite on each Chainlit release users are on; a test of something a release
lacks skips there, naming the release that brought it.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version

import pytest
from chainlit.step import StepDict
from packaging.version import Version

CHAINLIT = Version(version("chainlit"))
# StepDict keys newer than the oldest supported release (2.2.1), with the release that added each.
NEWER_STEP_KEYS = {"modes": "2.9.0", "autoCollapse": "2.10.0", "icon": "2.11.0"}


def since(release: str, feature: str) -> pytest.MarkDecorator:
    """Skip on releases older than ``release``, saying what is missing and which release has it."""
    return pytest.mark.skipif(
        Version(release) > CHAINLIT, reason=f"{feature} came in Chainlit {release}; this is {CHAINLIT}"
    )


def sent_by_this_chainlit(keys: Iterable[str]) -> tuple[str, ...]:
    """The ``keys`` this release's ``StepDict`` defines, so a test sends only what this Chainlit sends."""
    return tuple(key for key in keys if key in StepDict.__annotations__)
