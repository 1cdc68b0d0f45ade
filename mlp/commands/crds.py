"""``mlp crds``: fetch and inspect the CRD schemas the offline plan validates against."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import click

from mlp.common import Failed

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"


def fetch_crds(dest: Path, base_url: str = DEFAULT_BASE_URL, timeout: float = 30.0) -> list[Path]:
    """Download every pinned upstream CRD and API schema file into ``dest/<project>/``.

    Files already present are replaced only after a complete download, so a failed fetch never
    leaves a half-written schema behind.

    Raises:
        urllib.error.URLError: When a file cannot be downloaded.
    """
    from components.versions import CRD_BUNDLES, CRD_RELEASES, CRD_SOURCES, crd_local_name

    written: list[Path] = []
    for project, paths in CRD_SOURCES.items():
        repo, tag = CRD_RELEASES[project]
        for upstream in paths:
            url = f"{base_url.rstrip('/')}/{repo}/{tag}/{upstream}"
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - pinned https URL
                body = response.read()
            if upstream in CRD_BUNDLES:
                files = split_bundle(body, CRD_BUNDLES[upstream], url)
            else:
                files = {crd_local_name(upstream): body}
            for name, content in files.items():
                written.append(_write_atomically(dest / project / name, content))
    return written


def split_bundle(body: bytes, keep: tuple[str, ...], source: str) -> dict[str, bytes]:
    """The CRDs named in ``keep`` (``<group>_<plural>.yaml``) out of a multi-document CRD file.

    Raises:
        OSError: When the file lacks one of them (the pinned release changed shape).
    """
    import yaml

    found: dict[str, bytes] = {}
    for document in body.decode().split("\n---\n"):
        crd = yaml.safe_load(document)
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        name = f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"
        if name in keep:
            found[name] = (document.strip() + "\n").encode()
    missing = sorted(set(keep) - set(found))
    if missing:
        raise OSError(f"{source} has no {', '.join(missing)}")
    return found


def _write_atomically(target: Path, body: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(body)
    partial.replace(target)
    return target


@click.group("crds")
def crds() -> None:
    """Manage the official CRD schemas used to validate custom resources offline."""


@crds.command("fetch")
@click.option(
    "--dest", type=click.Path(path_type=Path, file_okay=False), help="Target directory [default: cache]."
)
@click.option(
    "--base-url", default=DEFAULT_BASE_URL, show_default=True, help="Where upstream files are served."
)
def fetch(dest: Path | None, base_url: str) -> None:
    """Download the CRDs of the pinned add-on releases (components/versions.py)."""
    from stacks.plan.validate import default_crd_dir

    dest = dest or default_crd_dir()
    try:
        written = fetch_crds(dest, base_url)
    except (urllib.error.URLError, OSError) as exc:
        raise Failed(f"could not fetch CRDs: {exc}") from None
    click.echo(f"{len(written)} files in {dest}")


@crds.command("list")
@click.option("--crd-dir", type=click.Path(path_type=Path, file_okay=False), envvar="MLP_CRD_DIR")
def list_crds(crd_dir: Path | None) -> None:
    """List the custom resource kinds the CRD directory can validate."""
    from components.versions import DEFAULT_KUBERNETES_VERSION
    from stacks.plan.validate import Validator, default_crd_dir

    crd_dir = crd_dir or default_crd_dir()
    validator = Validator(DEFAULT_KUBERNETES_VERSION, crd_dir)
    click.echo(f"{crd_dir}: {validator.crd_count} kinds")
    for api_version, kind, structural, source in validator.crd_kinds():
        state = "full" if structural else "no spec schema"
        click.echo(f"  {api_version:40} {kind:28} {state:16} {source}")
