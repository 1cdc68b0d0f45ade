"""The CrossGuard policy pack: the rules of :mod:`policy.rules`, run by ``pulumi preview --policy-pack policy``.

Pulumi starts this file in the pack's own virtualenv (``PulumiPolicy.yaml``, ``requirements.txt``).
Constructing ``PolicyPack`` starts the analyzer server and never returns, so it happens only here,
never at import of :mod:`policy.rules`.

Policy config (``pulumi preview --policy-pack-config <file>``) may set, for the whole pack,
``{"all": "mandatory"}`` as usual, and per stack ``{"eks-endpoint-not-public":
{"allowPublicApiServer": true}}`` (the same opt-in as the stack's ``allowPublicApiServer``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy.rules import RULES, PolicyConfig, Rule  # noqa: E402

LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
ALLOW_PUBLIC = "allowPublicApiServer"


def _config(args: Any) -> PolicyConfig:
    return PolicyConfig(allow_public_api_server=bool((args.get_config() or {}).get(ALLOW_PUBLIC, False)))


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = {"type": args.resource_type, "name": args.name, "inputs": args.props}
        for message in rule.check(resource, _config(args)) if rule.check else []:
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        enforcement_level=LEVELS[rule.enforcement],
        validate=validate,
        config_schema=PolicyConfigSchema(properties={ALLOW_PUBLIC: {"type": "boolean"}}),
    )


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [{"type": r.resource_type, "name": r.name, "inputs": r.props} for r in args.resources]
        for name, message in rule.check_stack(resources, _config(args)) if rule.check_stack else []:
            report_violation(f"{name}: {message}", None)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        enforcement_level=LEVELS[rule.enforcement],
        validate=validate,
    )


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every rule wrapped for CrossGuard."""
    return [_stack_policy(r) if r.check_stack else _resource_policy(r) for r in RULES]


if __name__ == "__main__":
    PolicyPack(name="mlplatform", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
