"""``mlp gpu drill``: what happens on a spot interruption, read from a stack's own program.

The drill takes the resources a run of the stack's program registered (under mocks, as the offline
plan does) and its exports, and describes the interruption path they make up: which handler runs
where, which queue and rules or which metadata endpoint feed it, which GPU pools it covers, how a
node is drained and in what order, the grace periods, and how training resumes. Nothing here is
written per stack: a stack without a handler reads "no interruption handling".

Component facts (type tokens, chart values) are read from the registrations; this module does not
import ``components``. The drain order and grace periods come from the workload modules that
implement them (:mod:`workloads.gpu.spot_drain`, :mod:`workloads.pipelines.interrupt`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from workloads.gpu.spot_drain import DRAIN_EVENT_TYPES, EVENTS_URL, RETRY_SECONDS
from workloads.pipelines.interrupt import CHECKPOINT_GRACE_SECONDS, EXIT_ON_SIGTERM

NTH_CHART: Final = "aws-node-termination-handler"
SPOT_DRAIN_MODULE: Final = "workloads.gpu.spot_drain"
POOL_LABEL: Final = "mlplatform.io/gpu-pool"
EVENT_MEANINGS: Final = {
    "Preempt": "spot eviction: NotBefore at least 30 s ahead",
    "Terminate": "the VM is being deleted (notice as configured on the scale set, if any)",
}
DEFAULT_POD_GRACE_SECONDS: Final = 30
"""Kubernetes' default ``terminationGracePeriodSeconds``."""


@dataclass
class Drill:
    """The interruption path of one stack.

    Attributes:
        stack: The stack.
        handler: ``aws-node-termination-handler``, ``scheduled-events drain`` or ``none``.
        summary: One sentence on how a notice reaches the node.
        handler_details: Where the handler runs and how it is configured.
        notices: The notices it acts on (rule or event type and what it means).
        queue: EKS: the interruption queue (name, retention); empty otherwise.
        hooks: EKS: lifecycle hooks per GPU pool.
        pools: Spot GPU pools and whether the handler covers each.
        drain: The drain steps in order.
        pods: What happens to each kind of pod, with its grace period.
        gaps: What the path does not cover.

    """

    stack: str
    handler: str
    summary: str
    handler_details: dict[str, Any] = field(default_factory=dict)
    notices: list[dict[str, str]] = field(default_factory=list)
    queue: dict[str, Any] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    drain: list[str] = field(default_factory=list)
    pods: list[dict[str, str]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return asdict(self)


def _of_type(registrations: Sequence[Mapping[str, Any]], type_: str) -> list[Mapping[str, Any]]:
    return [r for r in registrations if r.get("type") == type_]


def _pool_asgs(registrations: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Auto Scaling group name -> GPU pool, from the EKS node groups' registered outputs."""
    result = {}
    for group in _of_type(registrations, "aws:eks/nodeGroup:NodeGroup"):
        pool = (group.get("inputs", {}).get("labels") or {}).get(POOL_LABEL)
        for resource in group.get("outputs", {}).get("resources") or []:
            for asg in resource.get("autoscalingGroups") or []:
                if pool:
                    result[str(asg["name"])] = pool
    return result


def _pod_outcomes(handler_grace: str) -> list[dict[str, str]]:
    return [
        {
            "pods": "GPU training: Katib trials, `mlp gpu` Jobs",
            "grace": f"{CHECKPOINT_GRACE_SECONDS} s (terminationGracePeriodSeconds)",
            "outcome": (
                f"SIGTERM -> finish the epoch, write a checkpoint, exit {EXIT_ON_SIGTERM}; a Katib trial "
                "is then a failed trial (restartPolicy Never), not resumed"
            ),
        },
        {
            "pods": "KFP train step",
            "grace": f"{DEFAULT_POD_GRACE_SECONDS} s (Kubernetes default: KFP sets no grace period)",
            "outcome": (
                f"SIGTERM -> checkpoint and exit {EXIT_ON_SIGTERM} if the epoch finishes within the grace; "
                "the step's retry policy starts it again and it resumes from the checkpoint"
            ),
        },
        {
            "pods": "KServe predictors with minReplicas >= 1",
            "grace": "their own",
            "outcome": "PodDisruptionBudget maxUnavailable 1: evicted one at a time, replacements scheduled elsewhere",
        },
        {
            "pods": "DaemonSet pods (GPU operator or device plugin, DCGM exporter, any drain DaemonSet)",
            "grace": "-",
            "outcome": "left alone",
        },
        {
            "pods": "everything else",
            "grace": handler_grace,
            "outcome": "evicted; rescheduled by its controller",
        },
    ]


def _eks(stack: str, registrations: Sequence[Mapping[str, Any]], spot_pools: list[str]) -> Drill | None:
    releases = [
        r
        for r in _of_type(registrations, "kubernetes:helm.sh/v3:Release")
        if r["inputs"].get("chart") == NTH_CHART
    ]
    if not releases:
        return None
    release = releases[0]["inputs"]
    values = release.get("values") or {}
    queues = _of_type(registrations, "aws:sqs/queue:Queue")
    queue_urls = {q.get("outputs", {}).get("url"): q for q in queues}
    queue = queue_urls.get(values.get("queueURL"))
    queue_arn = (queue or {}).get("outputs", {}).get("arn")
    rules = {
        r.get("outputs", {}).get("name"): r
        for r in _of_type(registrations, "aws:cloudwatch/eventRule:EventRule")
    }
    notices = []
    for target in _of_type(registrations, "aws:cloudwatch/eventTarget:EventTarget"):
        if target["inputs"].get("arn") != queue_arn:
            continue
        rule = rules.get(target["inputs"].get("rule"))
        if rule is None:
            continue
        pattern = json.loads(rule["inputs"]["eventPattern"])
        notices.append(
            {
                "rule": str(rule["name"]),
                "source": ", ".join(pattern.get("source", [])),
                "detailType": ", ".join(pattern.get("detail-type", [])),
            }
        )
    asgs = _pool_asgs(registrations)
    hooks = []
    for hook in _of_type(registrations, "aws:autoscaling/lifecycleHook:LifecycleHook"):
        inputs = hook["inputs"]
        hooks.append(
            {
                "pool": asgs.get(str(inputs.get("autoscalingGroupName")), "?"),
                "autoScalingGroup": inputs.get("autoscalingGroupName"),
                "transition": inputs.get("lifecycleTransition"),
                "heartbeatSeconds": inputs.get("heartbeatTimeout"),
                "defaultResult": inputs.get("defaultResult"),
            }
        )
    hooked = {h["pool"] for h in hooks}
    node_grace = values.get("nodeTerminationGracePeriod")
    pod_grace = values.get("podTerminationGracePeriod")
    handler_grace = "their own" if pod_grace in (-1, None) else f"{pod_grace} s (handler override)"
    return Drill(
        stack=stack,
        handler=NTH_CHART,
        summary=(
            "EC2/Auto Scaling notice -> EventBridge rule -> SQS queue -> the handler (queue mode) "
            "cordons and drains the node, then completes the lifecycle action"
        ),
        handler_details={
            "chart": f"{release.get('chart')} {release.get('version')}",
            "namespace": release.get("namespace"),
            "mode": "queue processor (one Deployment)"
            if values.get("enableSqsTerminationDraining")
            else "IMDS",
            "runsOn": values.get("nodeSelector") or {},
            "serviceAccountRole": (values.get("serviceAccount") or {})
            .get("annotations", {})
            .get("eks.amazonaws.com/role-arn"),
            "drainsOnlyTagged": values.get("managedTag") if values.get("checkTagBeforeDraining") else None,
            "nodeTerminationGraceSeconds": node_grace,
        },
        notices=notices,
        queue={
            "name": (queue or {}).get("outputs", {}).get("name"),
            "url": values.get("queueURL"),
            "retentionSeconds": (queue or {}).get("inputs", {}).get("messageRetentionSeconds"),
        },
        hooks=hooks,
        pools=[{"pool": p, "covered": p in hooked} for p in spot_pools],
        drain=[
            "the notice arrives on the queue (a spot warning two minutes before reclaim)",
            "the handler cordons the node (no new pods)",
            "it evicts every pod on the node at once through the Eviction API, honouring PodDisruptionBudgets "
            f"and each pod's own grace period; DaemonSet pods stay; it gives up after {node_grace} s",
            "for a lifecycle notice it completes the lifecycle action and the instance terminates",
        ],
        pods=_pod_outcomes(handler_grace),
        gaps=[
            "KFP pipeline pods keep the 30 s default grace (no KFP field sets it)",
            "a Katib trial interrupted mid-run is not resumed",
            "described from the program under mocks; not exercised against a live cluster",
        ],
    )


def _aks(stack: str, registrations: Sequence[Mapping[str, Any]], spot_pools: list[str]) -> Drill | None:
    sets = [
        d
        for d in _of_type(registrations, "kubernetes:apps/v1:DaemonSet")
        if SPOT_DRAIN_MODULE
        in ((d["inputs"].get("spec") or {}).get("template", {}).get("spec", {}).get("containers") or [{}])[
            0
        ].get("command", [])
    ]
    if not sets:
        return None
    daemonset = sets[0]["inputs"]
    pod = daemonset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    terms = (
        pod.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
    )
    watched: list[str] = []
    for term in terms.get("nodeSelectorTerms", []):
        for expression in term.get("matchExpressions", []):
            if expression.get("key") == POOL_LABEL and expression.get("operator") == "In":
                watched += expression.get("values", [])
    command = container.get("command", [])
    interval = command[command.index("--interval") + 1] if "--interval" in command else "2"
    roles = [
        r
        for r in _of_type(registrations, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
        if (r["inputs"].get("metadata") or {}).get("name") == pod.get("serviceAccountName")
    ]
    rules = roles[0]["inputs"].get("rules", []) if roles else []
    return Drill(
        stack=stack,
        handler="scheduled-events drain",
        summary=(
            "Azure Scheduled Events (Preempt) in the VM's metadata service -> the drain pod on that node "
            "cordons it and evicts its pods"
        ),
        handler_details={
            "daemonset": f"{daemonset['metadata'].get('namespace')}/{daemonset['metadata'].get('name')}",
            "image": container.get("image"),
            "command": " ".join(command),
            "pollsEverySeconds": interval,
            "endpoint": EVENTS_URL,
            "tolerations": pod.get("tolerations", []),
            "permissions": [
                f"{','.join(r.get('verbs', []))} {','.join(r.get('resources', []))}" for r in rules
            ],
        },
        notices=[
            {"eventType": t, "meaning": EVENT_MEANINGS.get(t, "the VM goes away")}
            for t in sorted(DRAIN_EVENT_TYPES)
        ],
        pools=[{"pool": p, "covered": p in watched} for p in spot_pools],
        drain=[
            f"the pod on the node sees a Scheduled {'/'.join(sorted(DRAIN_EVENT_TYPES))} event naming its VM (poll every {interval} s)",
            "it cordons the node (spec.unschedulable)",
            "it evicts pods that request GPUs first (they need the notice to checkpoint), then the rest, "
            "each group by namespace and name; DaemonSet, mirror and terminating pods stay",
            f"an eviction refused by a PodDisruptionBudget is retried every {RETRY_SECONDS:g} s until NotBefore",
            "Azure preempts the VM at NotBefore; the node does not come back (no uncordon)",
        ],
        pods=_pod_outcomes("their own"),
        gaps=[
            f"a Preempt notice can be as short as 30 s: a {CHECKPOINT_GRACE_SECONDS} s grace is cut off "
            "when the VM goes, so only an epoch that ends within the notice is checkpointed",
            "the event is not acknowledged (Azure waits until NotBefore)",
            "KFP pipeline pods keep the 30 s default grace (no KFP field sets it)",
            "described from the program under mocks; not exercised against a live cluster",
        ],
    )


def build_drill(stack: str, registrations: Sequence[Mapping[str, Any]], exports: Mapping[str, Any]) -> Drill:
    """The drill of one stack from its program's registrations (plain data) and exports.

    Args:
        stack: The stack name.
        registrations: Each registration as ``{type, name, inputs, outputs}`` with plain values.
        exports: The stack outputs (``gpuPools`` gives the spot pools).

    """
    spot_pools = [str(p["name"]) for p in exports.get("gpuPools") or [] if p.get("spot")]
    drill = _eks(stack, registrations, spot_pools) or _aks(stack, registrations, spot_pools)
    if drill is not None:
        return drill
    return Drill(
        stack=stack,
        handler="none",
        summary=(
            "no interruption handler is declared: a reclaimed node's pods are killed with it"
            if spot_pools
            else "no spot GPU pools and no interruption handler: nothing here is reclaimed"
        ),
        pools=[{"pool": p, "covered": False} for p in spot_pools],
        pods=_pod_outcomes("their own"),
        gaps=["no handler"] if spot_pools else [],
    )


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return lines


def to_markdown(drill: Drill) -> str:
    """The drill as Markdown for a pull request."""
    lines = [
        f"# Interruption drill: stack `{drill.stack}`",
        "",
        f"**Handler:** {drill.handler}",
        "",
        drill.summary,
        "",
    ]
    if drill.handler_details:
        lines += ["## Handler", ""]
        lines += [
            f"- {k}: `{json.dumps(v) if not isinstance(v, str) else v}`"
            for k, v in drill.handler_details.items()
        ]
        lines.append("")
    if drill.notices:
        lines += ["## Notices acted on", "", *_table(drill.notices), ""]
    if drill.queue:
        lines += ["## Queue", "", *[f"- {k}: `{v}`" for k, v in drill.queue.items()], ""]
    if drill.hooks:
        lines += ["## Lifecycle hooks", "", *_table(drill.hooks), ""]
    lines += ["## Spot GPU pools", "", *_table(drill.pools), ""]
    if drill.drain:
        lines += ["## Drain, in order", "", *[f"{i}. {step}" for i, step in enumerate(drill.drain, 1)], ""]
    lines += ["## Pods", "", *_table(drill.pods), ""]
    if drill.gaps:
        lines += ["## Not covered", "", *[f"- {gap}" for gap in drill.gaps], ""]
    return "\n".join(lines)
