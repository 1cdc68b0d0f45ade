"""checkov over the offline plan's rendered objects, gated by a reasoned allowlist.

Usage: ``python -m policy.checkov_gate --plan build/plan --checkov .venv-checkov/bin/checkov``.

Copies every rendered Kubernetes object of every planned stack (``<plan>/<stack>/manifests``) into
one directory, runs checkov's Kubernetes framework on it offline, and compares each failed check
with ``policy/checkov-allowlist.yaml``. Helm releases are not scanned by checkov: it needs the
``helm`` binary and the charts to render them, neither of which the offline plan has; their values
are checked by the chart check and the policy pack instead. Writes ``<out>/checkov.json`` (counts,
failures, allowlisted, stale entries) and exits 1 when a failure is not allowlisted.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ALLOWLIST = Path(__file__).resolve().parent / "checkov-allowlist.yaml"
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


@dataclass(frozen=True)
class Allow:
    """One allowlist entry."""

    check: str
    resources: tuple[str, ...]
    reason: str

    def covers(self, check: str, resource: str) -> bool:
        """Whether this entry accepts a failure of ``check`` on ``resource``."""
        return check == self.check and any(fnmatch.fnmatchcase(resource, g) for g in self.resources)


class AllowlistError(ValueError):
    """The allowlist file is malformed (the message names the entry)."""


def load_allowlist(path: Path = ALLOWLIST) -> list[Allow]:
    """Read the allowlist; every entry needs ``check``, ``resources`` and a non-empty ``reason``."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = []
    for index, item in enumerate(doc.get("allow") or []):
        if not isinstance(item, dict) or not all(item.get(k) for k in ("check", "resources", "reason")):
            raise AllowlistError(f"{path}: allow[{index}] needs check, resources and a reason")
        entries.append(
            Allow(str(item["check"]), tuple(str(r) for r in item["resources"]), str(item["reason"]))
        )
    return entries


def collect(plan_dir: Path, target: Path) -> int:
    """Copy every rendered Kubernetes object (not Helm releases) to ``target/<stack>/``."""
    count = 0
    for manifest in sorted(plan_dir.glob("*/manifests/*.yaml")):
        if manifest.name.startswith("helmrelease-"):
            continue
        stack_dir = target / manifest.parent.parent.name
        stack_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(manifest, stack_dir / manifest.name)
        count += 1
    return count


def run_checkov(checkov: str, directory: Path) -> dict[str, Any]:
    """Run checkov offline on a directory; return the Kubernetes framework's JSON report."""
    proc = subprocess.run(
        [
            checkov,
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
            "--compact",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE_ENV},
        check=False,
    )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"checkov exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    for item in reports:
        if item.get("check_type") == "kubernetes":
            return dict(item)
    return {"summary": {"passed": 0, "failed": 0}, "results": {"failed_checks": []}}


def gate(report: dict[str, Any], allowlist: list[Allow]) -> dict[str, Any]:
    """Split checkov's failures into allowlisted and not; find stale allowlist entries."""
    failed = report.get("results", {}).get("failed_checks", [])
    accepted, rejected, used = [], [], set()
    for item in failed:
        entry = {
            "check": item["check_id"],
            "name": item.get("check_name", ""),
            "resource": item["resource"],
            "file": item.get("file_path", ""),
        }
        match = next((a for a in allowlist if a.covers(entry["check"], entry["resource"])), None)
        if match is None:
            rejected.append(entry)
        else:
            used.add(match)
            accepted.append(entry)
    summary = report.get("summary", {})
    return {
        "checkov_version": summary.get("checkov_version", ""),
        "passed": summary.get("passed", 0),
        "failed": summary.get("failed", 0),
        "resources": summary.get("resource_count", 0),
        "allowlisted": accepted,
        "not_allowlisted": rejected,
        "allowlist_entries": len(allowlist),
        "stale_entries": [asdict(a) for a in allowlist if a not in used],
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=Path("build/plan"), help="the plan's --out directory")
    parser.add_argument("--checkov", default=".venv-checkov/bin/checkov", help="checkov executable")
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("--out", type=Path, default=Path("build/checkov"), help="report directory")
    args = parser.parse_args(argv)
    try:
        allowlist = load_allowlist(args.allowlist)
    except (OSError, yaml.YAMLError, AllowlistError) as exc:
        print(f"checkov gate: cannot read the allowlist: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mlp-checkov-") as tmp:
        objects = collect(args.plan, Path(tmp))
        if objects == 0:
            print(
                f"checkov gate: no rendered objects under {args.plan}/*/manifests; run `mlp plan` first",
                file=sys.stderr,
            )
            return 2
        started = time.perf_counter()
        try:
            report = run_checkov(args.checkov, Path(tmp))
        except (OSError, RuntimeError, json.JSONDecodeError) as exc:
            print(f"checkov gate: {exc}", file=sys.stderr)
            return 2
        seconds = time.perf_counter() - started
    result = {**gate(report, allowlist), "objects": objects, "seconds": round(seconds, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "checkov.json").write_text(json.dumps(result, indent=2))
    print(
        f"checkov {result['checkov_version']}: {result['failed']} failed of {result['passed'] + result['failed']} "
        f"checks on {objects} objects ({result['resources']} resources) in {seconds:.1f}s; "
        f"{len(result['allowlisted'])} allowlisted by {len(allowlist)} entries, "
        f"{len(result['not_allowlisted'])} not -> {args.out / 'checkov.json'}"
    )
    for entry in result["stale_entries"]:
        print(f"  stale allowlist entry (matches nothing): {entry['check']} {entry['resources']}")
    for item in result["not_allowlisted"]:
        print(f"  FAIL {item['check']} {item['resource']} ({item['file']}): {item['name']}")
    return 1 if result["not_allowlisted"] else 0


if __name__ == "__main__":
    sys.exit(main())
