"""Typed helpers around ``pulumi.Output`` where the SDK's own annotations mislead mypy."""

from __future__ import annotations

from typing import TypeVar

import pulumi

T = TypeVar("T")


def secret(value: pulumi.Output[T]) -> pulumi.Output[T]:
    """Mark an existing output as secret, keeping its value type.

    ``pulumi.Output.secret`` takes ``Input[U]`` (``U | Awaitable[U] | Output[U]``); given an
    ``Output[dict[str, Any]]`` mypy solves ``U`` to ``Never`` and rejects the call. The value
    passes through unchanged; only the static type is restored.

    Args:
        value: The output to mark secret.

    Returns:
        The same value as a secret output.
    """
    return pulumi.Output.secret(value)
