"""What real providers compute, answered by the mocks.

An output the mocks leave unset makes every input that depends on it disappear silently, so each
provider-computed value the program reads must be filled here: azure-native ``name``, IAM role
``arn``/``name``, the EKS kubeconfig, RandomPassword ``result``, and the invokes the program calls.
Values are realistic in shape (ARNs, FQDNs, base64 kubeconfigs) so rendering looks like a real run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

from components.versions import DEFAULT_KUBERNETES_VERSION

ACCOUNT_ID = "123456789012"
AWS_REGION = "us-west-2"
"""Region of mocked AWS values (provider-level settings are not visible to the mocks)."""
AZURE_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
AZURE_TENANT_ID = "11111111-1111-1111-1111-111111111111"


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


def fake_uuid(name: str) -> str:
    """A deterministic UUID-shaped string derived from ``name``."""
    h = fake_secret(name, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def autoname(args: MockResourceArgs, key: str = "name", sep: str = "") -> str:
    """The name input if given, else what the provider's auto-naming would make of the logical name."""
    given = args.inputs.get(key)
    return str(given) if given else f"{args.name}{sep}{fake_secret(args.name, 7)}"


def b64(text: str) -> str:
    """Base64 of a UTF-8 string."""
    return base64.b64encode(text.encode()).decode()


# --- azure-native ----------------------------------------------------------------------------


def _azure_resource_group(args: MockResourceArgs) -> Mapping[str, Any]:
    return {"name": autoname(args, "resourceGroupName"), "provisioningState": "Succeeded"}


def _aks_managed_cluster(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, "resourceName")
    location = args.inputs.get("location", "westeurope")
    group = args.inputs.get("resourceGroupName", "rg")
    issuer = f"https://{location}.oic.prod-aks.azure.com/{AZURE_TENANT_ID}/{fake_uuid(name)}/"
    kubelet = {
        "clientId": fake_uuid(f"{name}-kubelet-client"),
        "objectId": fake_uuid(f"{name}-kubelet-object"),
        "resourceId": (
            f"/subscriptions/{AZURE_SUBSCRIPTION_ID}/resourceGroups/MC_{group}_{name}_{location}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"
        ),
    }
    return {
        "name": name,
        "fqdn": f"{args.inputs.get('dnsPrefix', name)}-{fake_secret(name, 8)}.hcp.{location}.azmk8s.io",
        "oidcIssuerProfile": {"enabled": True, "issuerURL": issuer},
        "identityProfile": {"kubeletidentity": kubelet},
        "identity": {
            "type": "SystemAssigned",
            "principalId": fake_uuid(f"{name}-principal"),
            "tenantId": AZURE_TENANT_ID,
        },
        "nodeResourceGroup": f"MC_{group}_{name}_{location}",
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
    }


def _aks_agent_pool(args: MockResourceArgs) -> Mapping[str, Any]:
    return {"name": autoname(args, "agentPoolName"), "provisioningState": "Succeeded"}


def _aks_user_credentials(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    cluster = str(inputs.get("resourceName", "aks"))
    server = f"https://{cluster}-{fake_secret(cluster, 8)}.hcp.westeurope.azmk8s.io:443"
    return {"kubeconfigs": [{"name": "clusterUser", "value": b64(kubeconfig_yaml(cluster, server))}]}


# --- aws -------------------------------------------------------------------------------------


def _arn(service: str, resource: str, region: str = "") -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def _iam(kind: str, id_key: str, id_prefix: str) -> Any:
    """Outputs of a named IAM entity: ``name``, ``arn`` and its unique id (``AROA...``, ``ANPA...``)."""

    def compute(args: MockResourceArgs) -> Mapping[str, Any]:
        name = autoname(args, sep="-")
        return {
            "name": name,
            "arn": _arn("iam", f"{kind}/{name}"),
            id_key: f"{id_prefix}{fake_secret(name, 17).upper()}",
        }

    return compute


def _iam_role_policy(args: MockResourceArgs) -> Mapping[str, Any]:
    return {"name": autoname(args, sep="-")}


def _iam_oidc_provider(args: MockResourceArgs) -> Mapping[str, Any]:
    url = str(args.inputs.get("url", f"https://oidc.eks.{AWS_REGION}.amazonaws.com/id/{args.name}"))
    return {"arn": _arn("iam", f"oidc-provider/{url.removeprefix('https://')}")}


def _kms_key(args: MockResourceArgs) -> Mapping[str, Any]:
    key_id = fake_uuid(args.name)
    return {"arn": _arn("kms", f"key/{key_id}", AWS_REGION), "keyId": key_id}


def _log_group(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, sep="-")
    return {"name": name, "arn": _arn("logs", f"log-group:{name}", AWS_REGION)}


def _ec2(kind: str, prefix: str) -> Any:
    def compute(args: MockResourceArgs) -> Mapping[str, Any]:
        return {
            "arn": _arn("ec2", f"{kind}/{prefix}-{fake_secret(args.name, 17)}", AWS_REGION),
            "ownerId": ACCOUNT_ID,
        }

    return compute


def _vpc(args: MockResourceArgs) -> Mapping[str, Any]:
    out = dict(_ec2("vpc", "vpc")(args))
    out.update(
        defaultSecurityGroupId=f"sg-{fake_secret(args.name + '-sg', 17)}",
        mainRouteTableId=f"rtb-{fake_secret(args.name + '-rtb', 17)}",
    )
    return out


def _eip(args: MockResourceArgs) -> Mapping[str, Any]:
    octet = int(fake_secret(args.name, 2), 16)
    return {
        "publicIp": f"198.51.100.{octet % 254 + 1}",
        "allocationId": f"eipalloc-{fake_secret(args.name, 17)}",
    }


def _nat_gateway(args: MockResourceArgs) -> Mapping[str, Any]:
    return {"publicIp": "198.51.100.200", "networkInterfaceId": f"eni-{fake_secret(args.name, 17)}"}


def _security_group(args: MockResourceArgs) -> Mapping[str, Any]:
    out = dict(_ec2("security-group", "sg")(args))
    out["name"] = autoname(args, sep="-")
    return out


def _eks_node_group(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, "nodeGroupName", sep="-")
    cluster = args.inputs.get("clusterName", "cluster")
    return {
        "nodeGroupName": name,
        "arn": _arn("eks", f"nodegroup/{cluster}/{name}/{fake_uuid(name)}", AWS_REGION),
        "status": "ACTIVE",
        "resources": [
            {
                "autoscalingGroups": [{"name": f"eks-{name}-{fake_uuid(name)}"}],
                "remoteAccessSecurityGroupId": "",
            }
        ],
    }


def _eks_addon(args: MockResourceArgs) -> Mapping[str, Any]:
    addon = args.inputs.get("addonName", args.name)
    cluster = args.inputs.get("clusterName", "cluster")
    return {
        "arn": _arn("eks", f"addon/{cluster}/{addon}/{fake_uuid(args.name)}", AWS_REGION),
        "addonVersion": args.inputs.get("addonVersion") or "v1.0.0-eksbuild.1",
    }


def eks_kubeconfig(cluster: str, endpoint: str) -> dict[str, Any]:
    """The kubeconfig ``pulumi_eks`` generates: ``aws eks get-token`` as the credential."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "kubernetes", "cluster": {"server": endpoint, "certificate-authority-data": "bW9jaw=="}}
        ],
        "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
        "current-context": "aws",
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster, "--output", "json"],
                    }
                },
            }
        ],
    }


def _eks_endpoint(name: str) -> str:
    return f"https://{fake_secret(name, 32).upper()}.gr7.{AWS_REGION}.eks.amazonaws.com"


def _aws_eks_cluster(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, sep="-")
    issuer = f"https://oidc.eks.{AWS_REGION}.amazonaws.com/id/{fake_secret(name, 32).upper()}"
    return {
        "name": name,
        "arn": _arn("eks", f"cluster/{name}", AWS_REGION),
        "endpoint": _eks_endpoint(name),
        "certificateAuthority": {"data": "bW9jaw=="},
        "identities": [{"oidcs": [{"issuer": issuer}]}],
        "status": "ACTIVE",
        "version": args.inputs.get("version") or DEFAULT_KUBERNETES_VERSION,
    }


def _pulumi_eks_cluster(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, sep="-")
    issuer = f"oidc.eks.{AWS_REGION}.amazonaws.com/id/{fake_secret(name, 32).upper()}"
    kubeconfig = eks_kubeconfig(name, _eks_endpoint(name))
    return {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "oidcIssuer": issuer,
        "oidcProviderUrl": f"https://{issuer}",
        "oidcProviderArn": _arn("iam", f"oidc-provider/{issuer}"),
        "clusterSecurityGroupId": f"sg-{fake_secret(name + '-cluster', 17)}",
        "nodeSecurityGroupId": f"sg-{fake_secret(name + '-node', 17)}",
    }


def _availability_zones(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    region = str(inputs.get("region") or AWS_REGION)
    letters = "abcd"
    return {
        "id": region,
        "names": [f"{region}{c}" for c in letters],
        "zoneIds": [f"usw2-az{i + 1}" for i in range(len(letters))],
        "groupNames": [region] * len(letters),
        "state": inputs.get("state", "available"),
    }


def _partition(_: Mapping[str, Any]) -> Mapping[str, Any]:
    return {
        "id": "aws",
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


def _caller_identity(_: Mapping[str, Any]) -> Mapping[str, Any]:
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
        "userId": "AIDAMOCK",
    }


def _region(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    region = str(inputs.get("region") or inputs.get("name") or AWS_REGION)
    return {"id": region, "name": region, "region": region, "endpoint": f"ec2.{region}.amazonaws.com"}


def _sqs_queue(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, sep="-")
    return {
        "name": name,
        "arn": _arn("sqs", name, AWS_REGION),
        "url": f"https://sqs.{AWS_REGION}.amazonaws.com/{ACCOUNT_ID}/{name}",
    }


def _event_rule(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, sep="-")
    return {"name": name, "arn": _arn("events", f"rule/{name}", AWS_REGION)}


# --- command, helm ---------------------------------------------------------------------------


def _local_command(args: MockResourceArgs) -> Mapping[str, Any]:
    create = str(args.inputs.get("create", ""))
    stdout = ""
    if "get kubeconfig" in create or "config view" in create:
        stdout = kubeconfig_yaml(args.name, "https://127.0.0.1:6443")
    return {"stdout": stdout, "stderr": ""}


def _helm_release(args: MockResourceArgs) -> Mapping[str, Any]:
    name = autoname(args, sep="-")
    return {
        "name": name,
        "status": {
            "name": name,
            "namespace": args.inputs.get("namespace", "default"),
            "chart": args.inputs.get("chart", ""),
            "version": args.inputs.get("version", ""),
            "status": "deployed",
            "revision": 1,
        },
    }


COMPUTED: dict[str, Any] = {
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomString:RandomString": _random_string,
    # azure-native
    "azure-native:resources:ResourceGroup": _azure_resource_group,
    "azure-native:containerservice:ManagedCluster": _aks_managed_cluster,
    "azure-native:containerservice:AgentPool": _aks_agent_pool,
    # aws
    "aws:iam/role:Role": _iam("role", "uniqueId", "AROA"),
    "aws:iam/policy:Policy": _iam("policy", "policyId", "ANPA"),
    "aws:iam/rolePolicy:RolePolicy": _iam_role_policy,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _iam_oidc_provider,
    "aws:kms/key:Key": _kms_key,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _ec2("subnet", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": _ec2("internet-gateway", "igw"),
    "aws:ec2/routeTable:RouteTable": _ec2("route-table", "rtb"),
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/securityGroup:SecurityGroup": _security_group,
    "aws:eks/cluster:Cluster": _aws_eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
    "aws:eks/addon:Addon": _eks_addon,
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
    # pulumi-eks (a remote component: one opaque registration under mocks)
    "eks:index:Cluster": _pulumi_eks_cluster,
    # command, helm
    "command:local:Command": _local_command,
    "kubernetes:helm.sh/v3:Release": _helm_release,
}
"""Resource type token -> function of the registration returning computed outputs."""

INVOKES: dict[str, Any] = {
    "azure-native:containerservice:listManagedClusterUserCredentials": _aks_user_credentials,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
}
"""Invoke token -> function of the invoke's arguments returning its result."""
