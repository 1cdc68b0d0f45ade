"""Shared test settings: where the official CRDs are, and a repo-root fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def crd_dir() -> Path:
    """The CRD directory for tests: $MLP_CRD_DIR, else ../shared/crds beside the checkout."""
    env = os.environ.get("MLP_CRD_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "crds"


@pytest.fixture(scope="session")
def crds() -> Path:
    path = crd_dir()
    if not path.is_dir():
        pytest.fail(f"official CRDs not found at {path}: set MLP_CRD_DIR (CI has ../shared/crds)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
