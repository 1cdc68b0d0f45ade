"""Generated router and Prometheus configuration, checked by nginx -t and promtool themselves."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from workloads.serving.local import config_render
from workloads.serving.local.stack import worker_user

pytestmark = pytest.mark.slow


def test_split_and_mirror_config_passes_nginx_t(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / sub).mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    conf = config_render.nginx_conf(
        directory=tmp_path,
        listen_port=18555,
        upstreams={"primary": 1, "canary": 2, "shadow": 3},
        canary_percent=20,
        mirror=True,
        run_as=worker_user(),
    )
    assert "20% canary;" in conf and "mirror /_shadow;" in conf and "listen 127.0.0.1:18555;" in conf
    (tmp_path / "nginx.conf").write_text(conf)
    done = subprocess.run(
        [nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("percent", "expected"), [(0, "* primary;"), (100, "* canary;"), (12.5, "12.5% canary;")]
)
def test_split_shares(tmp_path, percent, expected):
    conf = config_render.nginx_conf(
        directory=tmp_path, listen_port=1, upstreams={"primary": 1, "canary": 2}, canary_percent=percent
    )
    assert expected in conf


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upstreams": {"canary": 1}}, "primary"),
        ({"upstreams": {"primary": 1}, "canary_percent": 10}, "canary"),
        ({"upstreams": {"primary": 1}, "mirror": True}, "shadow"),
        ({"upstreams": {"primary": 1, "canary": 2}, "canary_percent": 120}, "0..100"),
    ],
)
def test_impossible_routes_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config_render.nginx_conf(directory=tmp_path, listen_port=1, **kwargs)


def test_prometheus_config_and_rules_pass_promtool(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(config_render.alert_rules())
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        config_render.prometheus_config(targets={"primary": 1, "canary": 2}, router_port=3, rules_file=rules)
    )
    names = [r["alert"] for r in yaml.safe_load(rules.read_text())["groups"][0]["rules"]]
    assert names == ["InferenceErrorRateHigh", "InferenceLatencyP95High", "FeatureDrift"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool ships with the prometheus package"
    for args in (["check", "rules", str(rules)], ["check", "config", str(conf)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_stop_recorded_ends_recorded_processes_and_skips_reused_pids(tmp_path):
    import json
    import sys

    from workloads.serving.local.stack import stop_recorded

    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(61)"])
    try:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(
            json.dumps(
                {
                    "processes": {
                        "server": {
                            "pid": ours.pid,
                            "argv": [sys.executable, "-c", "import time; time.sleep(60)"],
                        },
                        "reused": {"pid": other.pid, "argv": ["/usr/sbin/nginx", "-c", "gone.conf"]},
                    }
                }
            )
        )
        report = stop_recorded(endpoints)
        assert ours.wait(5) is not None
        assert other.poll() is None
        assert any("server" in line and "stopped" in line for line in report)
        assert any("reused" in line and "skipped" in line for line in report)
        assert not endpoints.exists()
    finally:
        for proc in (ours, other):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
