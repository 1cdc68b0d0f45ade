"""Where the pinned upstream kustomize bundles live (ServiceMonitors: :mod:`components.metrics`)."""

from __future__ import annotations


def github_kustomization(repo: str, ref: str, path: str) -> str:
    """URL of a kustomization directory in a GitHub repository at a pinned tag."""
    return f"https://github.com/{repo}/tree/{ref}/{path}"
