"""Start, reconfigure and stop the local serving topology: KServe servers, nginx, Prometheus.

Topology (every process on 127.0.0.1, ports picked free at start)::

    client ─► transformer (KServe, V1) ─► router (nginx) ─┬─► primary  (KServe predictor)
                                                          ├─► canary   (split_clients share)
                                                          └─► shadow   (mirror, response dropped)
    Prometheus ─► every KServe /metrics (label ``variant``) and the router's /drift-metrics

The processes are children of whoever calls :meth:`LocalServing.start`; :meth:`stop` ends exactly
them. ``endpoints.json`` records URL and PID of each, so ``mlp serve stop`` can end a detached
topology later (checking each PID still runs the command it recorded).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workloads.serving.local import config_render
from workloads.serving.local.server import Injection, ServerConfig

ENDPOINTS_FILE = "endpoints.json"


class ServingError(RuntimeError):
    """A serving process could not start, or a binary is missing."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str) -> str:
    """Path of a system binary, or a ServingError saying how to install it."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        package = "nginx-light" if name == "nginx" else name
        raise ServingError(
            f"{name} not found: install it with `apt-get install {package}` (.ci/run does it when missing)"
        )
    return path


def worker_user() -> str | None:
    """The user nginx workers run as: ourselves when we are root (else nginx picks ``nobody``)."""
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, urllib.error.URLError):
        return 0


@dataclass
class VariantSpec:
    """One model server of the topology.

    Attributes:
        version: Registry version served.
        model_dir: The staged model: a pickle written by :func:`resolve_variants` from the
            registry's artifact, or an MLflow model directory with ``model.skops``.
        inject: Faults for a deliberately bad variant.
    """

    version: str
    model_dir: str
    inject: Injection = field(default_factory=Injection)


@dataclass
class Proc:
    """A started process: what it is, where it listens, its PID and command line."""

    name: str
    url: str
    pid: int
    argv: list[str]
    health: str
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for endpoints.json."""
        return {"name": self.name, "url": self.url, "pid": self.pid, "argv": self.argv, "health": self.health}


class ProcessGroup:
    """Processes started by this object, stopped by it (SIGTERM, then SIGKILL after a grace period)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.procs: dict[str, Proc] = {}

    def spawn(
        self, name: str, argv: list[str], url: str, health: str, env: Mapping[str, str] | None = None
    ) -> Proc:
        """Start a process with its output in ``<work_dir>/<name>.log``."""
        log = (self.work_dir / f"{name}.log").open("ab")
        popen = subprocess.Popen(  # noqa: S603 - argv built here
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        log.close()
        proc = Proc(name=name, url=url, pid=popen.pid, argv=argv, health=health, popen=popen)
        self.procs[name] = proc
        return proc

    def spawn_server(self, config: ServerConfig) -> Proc:
        """Start a KServe or baseline server from its configuration."""
        path = self.work_dir / f"{config.variant or config.role}.server.json"
        path.write_text(json.dumps(asdict(config), indent=2))
        url = f"http://127.0.0.1:{config.port}"
        health = f"{url}/v1/models/{config.name}"
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
        }
        return self.spawn(
            config.variant or config.role,
            [sys.executable, "-m", "workloads.serving.local.server", str(path)],
            url,
            health,
            env,
        )

    def wait_ready(self, timeout: float = 120.0, on_ready: Callable[[str], None] | None = None) -> None:
        """Wait until every process answers its health URL with 200.

        Raises:
            ServingError: A process exited or did not get ready in time (its log tail is quoted).
        """
        pending = dict(self.procs)
        deadline = time.monotonic() + timeout
        while pending:
            for name, proc in list(pending.items()):
                if proc.popen is not None and proc.popen.poll() is not None:
                    raise ServingError(f"{name} exited with {proc.popen.returncode}:\n{self.log_tail(name)}")
                if _get(proc.health) == 200:
                    pending.pop(name)
                    if on_ready:
                        on_ready(name)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ServingError(
                    f"not ready after {timeout:.0f} s: {sorted(pending)}\n"
                    + "\n".join(self.log_tail(n) for n in pending)
                )
            time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 15) -> str:
        """Last lines of a process's log."""
        path = self.work_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace_s: float = 5.0) -> None:
        """End every process this group started."""
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs.values():
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5)
        self.procs.clear()


@dataclass
class Endpoints:
    """URLs of the running topology (also written to ``endpoints.json``)."""

    model: str
    router: str
    prometheus: str | None
    transformer: str | None
    servers: dict[str, dict[str, Any]]
    processes: dict[str, dict[str, Any]]
    work_dir: str
    traffic: dict[str, Any]

    def predict_url(self, base: str, protocol: str = "v1") -> str:
        """Inference URL on ``base`` (a server or the router) for V1 or V2."""
        if protocol == "v2":
            return f"{base}/v2/models/{self.model}/infer"
        return f"{base}/v1/models/{self.model}:predict"


class LocalServing:
    """The local topology: build it, change its traffic split, tear it down.

    Args:
        work_dir: Where configs, logs, request logs and endpoints.json go.
        model: Registered model name (every server serves it under this name).
        variants: ``{"primary": spec, "canary": spec, "shadow": spec}``; primary required.
        feature_names: Feature order of the model (for the transformer).
        transformer: Start the KServe transformer in front of the router.
        prometheus: Start Prometheus.
        log_requests: Write each server's request log (``<work_dir>/requests/<variant>.jsonl``).
        canary_percent: Initial canary share.
        mirror: Initially mirror traffic to the shadow.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        model: str,
        variants: Mapping[str, VariantSpec],
        feature_names: list[str],
        transformer: bool = True,
        prometheus: bool = True,
        log_requests: bool = True,
        canary_percent: float = 0.0,
        mirror: bool = False,
    ) -> None:
        if "primary" not in variants:
            raise ValueError("variants need a 'primary'")
        self.work_dir = work_dir.resolve()
        self.model = model
        self.variants = dict(variants)
        self.feature_names = feature_names
        self.use_transformer = transformer
        self.use_prometheus = prometheus
        self.log_requests = log_requests
        self.canary_percent = canary_percent
        self.mirror = mirror
        self.group = ProcessGroup(self.work_dir)
        self.ports: dict[str, int] = {}
        self.endpoints: Endpoints | None = None

    @property
    def nginx_dir(self) -> Path:
        """Nginx prefix directory."""
        return self.work_dir / "nginx"

    def request_log(self, variant: str) -> Path:
        """Request log of one variant's server."""
        return self.work_dir / "requests" / f"{variant}.jsonl"

    def _write_nginx(self) -> Path:
        upstreams = {v: self.ports[v] for v in self.variants}
        conf = config_render.nginx_conf(
            directory=self.nginx_dir,
            listen_port=self.ports["router"],
            upstreams=upstreams,
            run_as=worker_user(),
            canary_percent=self.canary_percent if "canary" in upstreams else 0.0,
            mirror=self.mirror and "shadow" in upstreams,
        )
        path = self.nginx_dir / "nginx.conf"
        path.write_text(conf)
        return path

    def start(self, timeout: float = 120.0, on_ready: Callable[[str], None] | None = None) -> Endpoints:
        """Start every process, wait until all are ready, write endpoints.json.

        Raises:
            ServingError: A binary is missing or a process failed to start (all are stopped again).
        """
        nginx = require_binary("nginx")
        prometheus = require_binary("prometheus") if self.use_prometheus else None
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.nginx_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        (self.nginx_dir / "logs").mkdir(
            exist_ok=True
        )  # nginx opens <prefix>/logs/error.log before reading the conf
        drift_file = self.nginx_dir / config_render.DRIFT_METRICS_FILE
        if not drift_file.exists():
            drift_file.write_text("")
        for name in [*self.variants, "router", "transformer", "prometheus"]:
            self.ports[name] = free_port()
        try:
            for variant, spec in self.variants.items():
                self.group.spawn_server(
                    ServerConfig(
                        role="predictor",
                        name=self.model,
                        port=self.ports[variant],
                        version=spec.version,
                        variant=variant,
                        model_dir=spec.model_dir,
                        log_path=str(self.request_log(variant)) if self.log_requests else None,
                        inject=spec.inject,
                    )
                )
            conf = self._write_nginx()
            router = f"http://127.0.0.1:{self.ports['router']}"
            self.group.spawn(
                "router",
                [nginx, "-c", str(conf), "-p", str(self.nginx_dir)],
                router,
                f"{router}/router-health",
            )
            if self.use_transformer:
                self.group.spawn_server(
                    ServerConfig(
                        role="transformer",
                        name=self.model,
                        port=self.ports["transformer"],
                        variant="transformer",
                        predictor_host=f"127.0.0.1:{self.ports['router']}",
                        feature_names=self.feature_names,
                        log_path=str(self.request_log("transformer")) if self.log_requests else None,
                    )
                )
            prom_url = None
            if prometheus is not None:
                rules = self.work_dir / "prometheus" / "rules.yml"
                rules.parent.mkdir(parents=True, exist_ok=True)
                rules.write_text(config_render.alert_rules())
                prom_conf = self.work_dir / "prometheus" / "prometheus.yml"
                prom_conf.write_text(
                    config_render.prometheus_config(
                        targets={v: self.ports[v] for v in self.variants},
                        router_port=self.ports["router"],
                        rules_file=rules,
                    )
                )
                prom_url = f"http://127.0.0.1:{self.ports['prometheus']}"
                self.group.spawn(
                    "prometheus",
                    [
                        prometheus,
                        f"--config.file={prom_conf}",
                        f"--storage.tsdb.path={self.work_dir / 'prometheus' / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
                        "--storage.tsdb.retention.time=1d",
                        "--log.level=warn",
                    ],
                    prom_url,
                    f"{prom_url}/-/ready",
                )
            self.group.wait_ready(timeout, on_ready)
        except BaseException:
            self.group.stop()
            raise
        try:
            return self._record(router, prom_url)
        except BaseException:
            self.group.stop()
            raise

    def _record(self, router: str, prom_url: str | None) -> Endpoints:
        procs = self.group.procs
        self.endpoints = Endpoints(
            model=self.model,
            router=router,
            prometheus=prom_url,
            transformer=procs["transformer"].url if "transformer" in procs else None,
            servers={
                v: {"url": procs[v].url, "version": s.version, "inject": asdict(s.inject)}
                for v, s in self.variants.items()
            },
            processes={n: p.to_dict() for n, p in procs.items()},
            work_dir=str(self.work_dir),
            traffic={"canary_percent": self.canary_percent, "mirror": self.mirror},
        )
        self.write_endpoints()
        return self.endpoints

    def write_endpoints(self) -> Path:
        """Write ``endpoints.json`` (URLs and PIDs) into the work dir."""
        path = self.work_dir / ENDPOINTS_FILE
        if self.endpoints is not None:
            path.write_text(json.dumps(asdict(self.endpoints), indent=2) + "\n")
        return path

    def set_traffic(self, canary_percent: float | None = None, mirror: bool | None = None) -> None:
        """Rewrite the router config and reload nginx (graceful: in-flight requests finish)."""
        if canary_percent is not None:
            self.canary_percent = canary_percent
        if mirror is not None:
            self.mirror = mirror
        self._write_nginx()
        router = self.group.procs["router"]
        os.kill(router.pid, signal.SIGHUP)
        # The new workers take new connections once the old ones are told to quit; give nginx a beat.
        time.sleep(0.5)
        if self.endpoints is not None:
            self.endpoints.traffic = {"canary_percent": self.canary_percent, "mirror": self.mirror}
            self.write_endpoints()

    def write_drift_metrics(self, text: str) -> Path:
        """Publish drift gauges where Prometheus scrapes them (the router's ``/drift-metrics``)."""
        path = self.nginx_dir / config_render.DRIFT_METRICS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    def stop(self) -> None:
        """Stop every process and remove endpoints.json."""
        self.group.stop()
        (self.work_dir / ENDPOINTS_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalServing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _running(pid: int) -> bool:
    """Whether a PID is alive (a zombie waiting for its parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_recorded(endpoints_file: Path, grace_s: float = 5.0) -> list[str]:
    """End the processes an ``endpoints.json`` recorded (only those whose command line still matches).

    Returns:
        One line per process: stopped, already gone, or skipped (PID reused by something else).
    """
    data = json.loads(endpoints_file.read_text())
    report: list[str] = []
    alive: list[int] = []
    for name, proc in data.get("processes", {}).items():
        pid = int(proc["pid"])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            report.append(f"{name} (pid {pid}): already gone")
            continue
        # nginx rewrites its argv ("nginx: master process <argv>"), so the recorded command line
        # must appear within the current one rather than equal it.
        recorded = b" ".join(a.encode() for a in proc["argv"])
        if recorded not in b" ".join(c for c in cmdline if c):
            report.append(f"{name} (pid {pid}): skipped, the PID now runs something else")
            continue
        os.kill(pid, signal.SIGTERM)
        alive.append(pid)
        report.append(f"{name} (pid {pid}): stopped")
    deadline = time.monotonic() + grace_s
    for pid in alive:
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.1)
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    endpoints_file.unlink(missing_ok=True)
    return report


def resolve_variants(
    tracking_uri: str, model: str, aliases: Mapping[str, str], download_dir: Path
) -> dict[str, VariantSpec]:
    """Registry aliases (``{"primary": "champion", ...}``) to local model directories.

    Raises:
        ServingError: A model or alias does not exist (names what the registry has).
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    specs: dict[str, VariantSpec] = {}
    for variant, ref in aliases.items():
        try:
            found = (
                client.get_model_version(model, ref)
                if ref.isdigit()
                else client.get_model_version_by_alias(model, ref)
            )
        except MlflowException as error:
            raise ServingError(
                f"{model}@{ref} not found in {tracking_uri}: {error.message}."
                " Run `mlp demo` first (it registers champion and challenger)."
            ) from None
        uri = client.get_model_version_download_uri(model, found.version)
        staged = download_dir / f"{model}-v{found.version}.pkl"
        if not staged.exists():
            staged.parent.mkdir(parents=True, exist_ok=True)
            import mlflow.sklearn

            # Loaded once here (skops, with MLflow's trusted types) and staged as a pickle: loading
            # skops in every server imports all of scikit-learn's estimators (and torch through
            # array-api-compat), seconds of CPU per process on a 2-core machine.
            estimator = mlflow.sklearn.load_model(uri)
            tmp = staged.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                pickle.dump(estimator, handle, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(staged)
        specs[variant] = VariantSpec(version=str(found.version), model_dir=str(staged))
    return specs


def set_alias(tracking_uri: str, model: str, alias: str, version: str) -> None:
    """Point a registry alias at a version (promotion)."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        model, alias, version
    )


def from_registry(
    work_dir: Path,
    *,
    tracking_uri: str,
    model: str,
    aliases: Mapping[str, str],
    injections: Mapping[str, Injection] | None = None,
    **options: Any,
) -> LocalServing:
    """A topology serving registry aliases, e.g. ``{"primary": "champion", "canary": "challenger"}``.

    Args:
        work_dir: Working directory of the topology.
        tracking_uri: MLflow registry.
        model: Registered model name.
        aliases: Variant -> alias or version number.
        injections: Faults per variant (a deliberately bad canary).
        **options: Passed to :class:`LocalServing` (transformer, prometheus, log_requests, ...).
    """
    from workloads.pipelines.data import breast_cancer_schema

    specs = resolve_variants(tracking_uri, model, aliases, work_dir / "models")
    for variant, inject in (injections or {}).items():
        specs[variant].inject = inject
    return LocalServing(
        work_dir, model=model, variants=specs, feature_names=breast_cancer_schema().feature_names, **options
    )
