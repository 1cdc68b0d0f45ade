"""Run the real Pulumi program under mocks and record every registration.

Pulumi's mock monitor answers each registration with whatever ``Mocks.new_resource`` returns;
this module adds what the plan and the component tests need on top of it:

* every registration is recorded with its parent, whether it is custom, its inputs and outputs;
* provider-computed outputs (names, ARNs, kubeconfigs, random passwords) and invokes are filled
  from ``stacks.plan.mock_outputs`` so inputs that depend on them do not silently disappear;
* the monitor does not advertise resource references, which made runs fail with "Future attached
  to a different loop" or hang (pulumi/pulumi#6561); references are passed as URNs/IDs instead;
* a ``Call`` handler exists, so component methods do not crash the stock monitor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import provider_pb2, resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

SECRET_SIG = rpc._special_sig_key  # noqa: SLF001 - the wire marker of a secret value
SECRET_VALUE_SIG = rpc._special_secret_sig  # noqa: SLF001


@dataclass
class Registration:
    """One resource the program registered.

    Attributes:
        urn: Its URN.
        type: Type token, e.g. ``kubernetes:core/v1:Namespace``.
        name: Logical name.
        parent: Logical name of its parent, or ``None`` for children of the stack.
        parent_urn: URN of its parent ("" for the stack).
        custom: True for custom resources, False for components.
        inputs: Inputs as the program gave them (secrets still wrapped).
        outputs: What the mocks answered.
        provider: Provider reference, if any.

    """

    urn: str
    type: str
    name: str
    parent: str | None
    parent_urn: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    provider: str = ""


ComputeFn = Callable[[pulumi_mocks.MockResourceArgs], Mapping[str, Any]]
InvokeFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs, add provider-computed outputs, and answer known invokes."""

    def __init__(
        self,
        computed: Mapping[str, ComputeFn] | None = None,
        invokes: Mapping[str, InvokeFn] | None = None,
    ) -> None:
        from stacks.plan import mock_outputs

        self.computed = dict(mock_outputs.COMPUTED if computed is None else computed)
        self.invokes = dict(mock_outputs.INVOKES if invokes is None else invokes)
        self.unanswered_invokes: list[str] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Echo the inputs and add what the real provider would compute."""
        outputs = dict(args.inputs)
        compute = self.computed.get(args.typ)
        if compute is not None:
            outputs.update(compute(args))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Answer an invoke or a component method call."""
        handler = self.invokes.get(args.token)
        if handler is None:
            self.unanswered_invokes.append(args.token)
            return {}, []
        return dict(handler(args.args)), []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that records registrations and avoids resource references."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Advertise the stock features minus resource references (pulumi/pulumi#6561)."""
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]  # pulumi's mock is untyped
        features = [
            f
            for f in info.supportedFeatures
            if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def SupportsFeature(self, request: Any) -> Any:  # noqa: N802
        """Deny resource references and output values; allow the rest."""
        has_support = request.id not in ("outputValues", "resourceReferences")
        return type("SupportsFeatureResponse", (object,), {"hasSupport": has_support})

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802
        """Record the registration (with its parent) and answer through the mocks."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        urn = response.urn
        with self._lock:
            self._names[urn] = request.name
            self.registrations.append(
                Registration(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=self._names.get(request.parent) if request.parent else None,
                    parent_urn=request.parent,
                    custom=bool(request.custom),
                    inputs=dict(inputs),
                    outputs=dict(self.resources[urn].state) if urn in self.resources else {},
                    provider=request.provider,
                )
            )
        return response

    def Call(self, request: Any) -> Any:  # noqa: N802
        """Answer component method calls through the mocks' ``call``."""
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        args = rpc.deserialize_properties(request.args)
        ret, _ = self.mocks.call(pulumi_mocks.MockCallArgs(token=request.tok, args=args, provider=""))
        ret_proto = _sync_await(rpc.serialize_properties(ret, {}))
        return provider_pb2.CallResponse(**{"return": ret_proto})


@dataclass
class ProgramRun:
    """What one run of a program under mocks produced."""

    registrations: list[Registration]
    exports: dict[str, Any]
    secret_exports: set[str]
    unanswered_invokes: list[str]


def run_program(
    program: Callable[[], None],
    *,
    stack: str,
    config: Mapping[str, Any] | None = None,
    project: str = "mlplatform",
    mocks: RecordingMocks | None = None,
) -> ProgramRun:
    """Run ``program`` under recording mocks, wait for every output, return what it registered.

    Args:
        program: The Pulumi program (what ``__main__`` would run).
        stack: Stack name reported by ``pulumi.get_stack()``.
        config: Full config keys (``mlplatform:target`` ...) and their values; objects are passed
            as JSON strings, as the Pulumi engine does.
        project: Project name.
        mocks: Mocks to use; defaults to ``RecordingMocks()``.

    Returns:
        The registrations in order, and the resolved stack exports.

    """
    import json

    mocks = mocks or RecordingMocks()
    monitor = RecordingMonitor(mocks)
    # A fresh event loop and fresh runtime state for each run, so runs in one process are isolated.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}, []
    )
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    exports: dict[str, Any] = {}
    secret_exports: set[str] = set()

    async def resolve_exports() -> None:
        root = settings.get_root_resource()
        for key, value in getattr(root, "outputs", {}).items():
            out = pulumi.Output.from_input(value)
            exports[key] = await out.future(with_unknowns=True)
            if await out.is_secret():
                secret_exports.add(key)

    def main() -> Any:
        program()
        return None

    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(main))
        _sync_await(resolve_exports())
    finally:
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)
    return ProgramRun(
        registrations=list(monitor.registrations),
        exports=exports,
        secret_exports=secret_exports,
        unanswered_invokes=list(mocks.unanswered_invokes),
    )


def is_secret(value: Any) -> bool:
    """Whether a deserialized value is a wrapped secret."""
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE_SIG


def clean(value: Any, *, reveal: bool = False) -> Any:
    """Make a recorded value plain data.

    Secrets become ``"[secret]"`` (or their value with ``reveal``), unknowns ``"[unknown]"``,
    floats that are whole numbers become ints (mocks turn 2 into 2.0), resources their URN.
    """
    if is_secret(value):
        inner = value.get("value")
        if reveal:
            return clean(inner, reveal=reveal)
        # A secret map (e.g. a Secret's stringData) keeps its keys so the object stays valid.
        return {key: "[secret]" for key in inner} if isinstance(inner, dict) else "[secret]"
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == rpc._special_resource_sig:  # noqa: SLF001
            return value.get("urn", "[resource]")
        return {k: clean(v, reveal=reveal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v, reveal=reveal) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is rpc.UNKNOWN or type(value).__name__ == "Unknown":
        return "[unknown]"
    return value
