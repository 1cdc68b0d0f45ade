"""What real providers compute, answered by the mocks.

An output the mocks leave unset makes every input that depends on it disappear silently, so each
provider-computed value the program reads must be filled here: azure-native ``name``, IAM role
``arn``/``name``, the EKS kubeconfig, RandomPassword ``result``, and the invokes the program calls.
Values are realistic in shape (ARNs, FQDNs, base64 kubeconfigs) so rendering looks like a real run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

ACCOUNT_ID = "123456789012"


def fake_secret(name: str, length: int = 24) -> str:
    """A deterministic stand-in secret derived from the resource name."""
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def kubeconfig_yaml(cluster: str, server: str) -> str:
    """A syntactically valid kubeconfig for a mocked cluster."""
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n"
        "    certificate-authority-data: bW9jaw==\n"
        f"contexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: {cluster}\n"
        f"current-context: {cluster}\n"
        f"users:\n- name: {cluster}\n  user:\n    token: {fake_secret(cluster)}\n"
    )


def secret(value: Any) -> dict[str, Any]:
    """Mark a computed output as secret, as the real provider's schema does."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}  # noqa: SLF001


def _random_password(args: MockResourceArgs) -> Mapping[str, Any]:
    length = int(args.inputs.get("length", 24))
    return {"result": secret(fake_secret(args.name, length))}


def _random_string(args: MockResourceArgs) -> Mapping[str, Any]:
    length = int(args.inputs.get("length", 8))
    return {"result": fake_secret(args.name, length).lower()}


COMPUTED: dict[str, Any] = {
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomString:RandomString": _random_string,
}
"""Resource type token -> function of the registration returning computed outputs."""

INVOKES: dict[str, Any] = {}
"""Invoke token -> function of the invoke's arguments returning its result."""


def b64(text: str) -> str:
    """Base64 of a UTF-8 string."""
    return base64.b64encode(text.encode()).decode()
