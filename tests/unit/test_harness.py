"""The mock harness: registrations, parents, secrets, isolation between runs."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pytest

from stacks.plan.harness import clean, is_secret, run_program
from stacks.plan.render import manifests, resource_entries, secret_values


class Sample(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:test:Sample", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.password = random.RandomPassword(f"{name}-pw", length=20, opts=child)
        provider = k8s.Provider(f"{name}-k8s", kubeconfig="{}", opts=child)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": name}, opts=k8s_opts)
        k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": "creds", "namespace": ns.metadata.name},
            string_data={"password": self.password.result},
            opts=k8s_opts,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-cm",
            metadata={"name": "settings", "namespace": ns.metadata.name},
            data={"replicas": "2"},
            opts=k8s_opts,
        )
        self.register_outputs({"password": self.password.result})


def program() -> None:
    sample = Sample("one")
    Sample("two")
    pulumi.export("password", sample.password.result)
    pulumi.export("target", pulumi.Config("mlplatform").require("target"))


@pytest.mark.timeout(60)
def test_registrations_have_parents_and_config_reaches_program() -> None:
    run = run_program(program, stack="dev", config={"mlplatform:target": "dev"})
    by_name = {reg.name: reg for reg in run.registrations}
    assert by_name["one-ns"].parent == "one"
    assert by_name["one"].parent is None and not by_name["one"].custom
    assert run.exports["target"] == "dev"
    names = [reg.name for reg in run.registrations]
    assert len(names) == len(set(names))


@pytest.mark.timeout(60)
def test_computed_secrets_stay_secret_and_are_hidden_when_rendered() -> None:
    run = run_program(program, stack="dev", config={"mlplatform:target": "dev"})
    assert "password" in run.secret_exports
    secret_reg = next(reg for reg in run.registrations if reg.name == "one-secret")
    assert is_secret(secret_reg.inputs["stringData"])
    rendered = {m.resource: m for m in manifests(run)}
    assert rendered["one-secret"].document["stringData"] == {"password": "[secret]"}
    leaked = secret_values(run)
    assert leaked and all(len(v) >= 8 for v in leaked)
    assert all(value not in str(resource_entries(run)) for value in leaked)


@pytest.mark.timeout(120)
def test_runs_are_isolated() -> None:
    counts = {
        len(run_program(program, stack="dev", config={"mlplatform:target": "dev"}).registrations)
        for _ in range(5)
    }
    assert counts == {12}


def test_clean_turns_whole_floats_into_ints() -> None:
    assert clean({"a": 2.0, "b": [1.5, 3.0]}) == {"a": 2, "b": [1.5, 3]}


def test_policy_flags_leaked_secrets_unpinned_charts_and_floating_images() -> None:
    from stacks.plan.plan import _policy
    from stacks.plan.render import Manifest

    leaky = Manifest(
        "001-deployment-x.yaml",
        "x",
        {"kind": "Deployment", "spec": {"env": "token s3cr3t-value-123", "image": "nginx"}},
        "object",
    )
    rules = sorted(f.rule for f in _policy(leaky, {"s3cr3t-value-123"}))
    assert rules == ["no-plaintext-secrets", "pinned-images"]
    pinned = Manifest(
        "002-pod.yaml",
        "p",
        {"image": "registry.example/app:1.2.3", "sidecar": {"image": "a@sha256:ab"}},
        "object",
    )
    assert _policy(pinned, set()) == []
    latest = Manifest("003-pod.yaml", "p", {"image": "registry.example:5000/app:latest"}, "object")
    assert [f.rule for f in _policy(latest, set())] == ["pinned-images"]
    release = Manifest("004-helmrelease.yaml", "r", {"chart": "grafana", "version": "1.0.0"}, "helm-release")
    assert [f.rule for f in _policy(release, set())] == ["pinned-charts"]
