"""`mlp crds fetch` downloads every pinned CRD from release URLs (served here from a local mirror)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.versions import CRD_BUNDLES, CRD_RELEASES, CRD_SOURCES, crd_local_name
from mlp.commands.crds import fetch_crds
from stacks.plan.validate import Validator


@pytest.fixture()
def mirror(tmp_path: Path, crds: Path) -> Iterator[str]:
    """Lay out the shared CRD files as <repo>/<tag>/<upstream path> and serve them on loopback."""
    root = tmp_path / "mirror"
    for project, paths in CRD_SOURCES.items():
        repo, tag = CRD_RELEASES[project]
        for upstream in paths:
            target = root / repo / tag / upstream
            target.parent.mkdir(parents=True, exist_ok=True)
            if upstream in CRD_BUNDLES:
                # Upstream ships these in one multi-document file: rebuild it from the split copies.
                parts = [(crds / project / name).read_text().strip() for name in CRD_BUNDLES[upstream]]
                target.write_text("\n---\n".join(parts) + "\n")
                continue
            shutil.copy(crds / project / crd_local_name(upstream), target)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_fetch_writes_every_pinned_file_and_validator_uses_them(
    mirror: str, tmp_path: Path, crds: Path
) -> None:
    dest = tmp_path / "cache"
    written = fetch_crds(dest, base_url=mirror)
    bundled = sum(len(keep) - 1 for keep in CRD_BUNDLES.values())
    assert len(written) == sum(len(paths) for paths in CRD_SOURCES.values()) + bundled
    assert Validator("1.33", dest).crd_count == Validator("1.33", crds).crd_count


@pytest.mark.timeout(60)
def test_failed_fetch_raises_and_leaves_no_partial_file(tmp_path: Path) -> None:
    import urllib.error

    dest = tmp_path / "cache"
    with pytest.raises(urllib.error.URLError):
        fetch_crds(dest, base_url="http://127.0.0.1:9", timeout=2)
    assert not list(dest.rglob("*.part"))
