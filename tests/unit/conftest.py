"""Fixtures shared by the unit tests; each applies only to the tests that request it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.plan.validate import Validator


@pytest.fixture(scope="module")
def validator(crds: Path) -> Validator:
    """A Kubernetes 1.33 validator that also knows the official CRDs (a module may override it)."""
    return Validator("1.33", crds)
