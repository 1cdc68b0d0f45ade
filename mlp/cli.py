"""Entry point of the ``mlp`` command.

Subcommands live in ``mlp.commands.<name>`` and are imported only when invoked, so ``mlp --help``
stays fast and one area's heavy imports (Pulumi SDKs, torch, MLflow) never slow another's.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

# name -> (module, attribute, one-line help). The help is the command's own short help (the first
# line of its docstring), repeated here so `mlp --help` does not import every command module;
# tests/unit/test_cli_help.py keeps the two equal.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": (
        "mlp.commands.plan",
        "plan",
        "Run a stack's real program under Pulumi mocks, render and validate every object.",
    ),
    "crds": (
        "mlp.commands.crds",
        "crds",
        "Manage the official CRD schemas used to validate custom resources offline.",
    ),
    "config": ("mlp.commands.config", "config", "Check stack configuration without Pulumi."),
    "cost": (
        "mlp.commands.cost",
        "cost",
        "GPU pool cost per stack: on-demand vs spot at min and max size, and scale-to-zero savings.",
    ),
    "bench": ("mlp.commands.bench", "bench", "Benchmarks; results go to build/bench/ as JSON and plots."),
    "gpu": ("mlp.commands.gpu", "gpu", "GPU scheduling workloads for a stack's GPU pools."),
    "demo": (
        "mlp.commands.demo",
        "demo",
        "Run the ML lifecycle locally: tune -> pipeline -> register, then summarize.",
    ),
    "pipeline": (
        "mlp.commands.pipeline",
        "pipeline",
        "Compile and run the training pipeline (preprocess -> train -> evaluate -> register).",
    ),
    "tune": ("mlp.commands.tune", "tune", "Hyperparameter tuning from one search-space definition."),
    "lineage": ("mlp.commands.lineage", "lineage", "Show the lineage of a registered model version."),
    "rag": ("mlp.commands.rag", "rag", "Ask the lab's docs and experiment results, with cited answers."),
    "serve": (
        "mlp.commands.serve",
        "serve",
        "Serve the registry's champion and challenger: locally on loopback, or on a stack's KServe.",
    ),
    "vectordb": (
        "mlp.commands.vectordb",
        "vectordb",
        "Vector database operations: snapshot runs in object storage, restore.",
    ),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: D102
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: D102
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, short_help = COMMANDS[cmd_name]
        if ctx.resilient_parsing or _listing_help(ctx):
            return click.Command(cmd_name, short_help=short_help, help=short_help)
        from mlp.common import guard_outputs

        module = importlib.import_module(module_name)
        command: click.Command = getattr(module, attr)
        return guard_outputs(command)


def _listing_help(ctx: click.Context) -> bool:
    """True while click renders the group's own ``--help`` page."""
    return bool(ctx.meta.get("mlp.listing"))


DEBUG_ENV = "MLP_DEBUG"


class _Main(LazyGroup):
    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; no exception escapes as a traceback (unless ``MLP_DEBUG=1``).

        Bad input files and invalid stack configuration exit 2 with their message; a service out of
        reach, a damaged local database or a file that cannot be used exit 1 saying what to check;
        anything else exits 1 with a one-line message and a hint to rerun with ``MLP_DEBUG=1``.
        """
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as error:  # noqa: BLE001 - the one place that turns crashes into messages
            raise _as_click_error(error) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["mlp.listing"] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx.meta["mlp.listing"] = False


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlplatform")
def main() -> None:
    """A GPU-ready ML platform as code.

    Provision with `pulumi up --stack dev|aks|eks`; check a stack offline with `mlp plan`;
    run the ML lifecycle on embedded engines with `mlp demo`, or against a stack's outputs
    with `--target <stack>` on the workload commands.
    """


def _as_click_error(error: Exception) -> click.ClickException:
    """The CLI error for an exception no command handled (re-raised under ``MLP_DEBUG=1``)."""
    from mlp.common import BadInput, Failed
    from stacks.config import ConfigError
    from stacks.files import InputFileError

    if isinstance(error, InputFileError | ConfigError):
        return BadInput(str(error))
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        raise error
    known = _known_failure(error)
    if known:
        return Failed(known)
    first = (str(error).strip().splitlines() or [""])[0]
    return Failed(
        f"unexpected {type(error).__name__}: {first[:300]} (rerun with {DEBUG_ENV}=1 for the traceback)"
    )


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it wraps (``__cause__``/``__context__``, SQLAlchemy's ``orig``)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return seen


def _known_failure(error: Exception) -> str:
    """A plain message for a failure the user can act on (empty when ``error`` is none of these).

    Recognised: a service out of reach, a damaged local SQLite database, a file that cannot be used.
    """
    import sqlite3

    from workloads.target import TargetError

    if isinstance(error, TargetError):  # a stack, its outputs or the local state cannot be used
        return str(error)
    for item in _chain(error):
        name = type(item).__name__
        if type(item) is sqlite3.DatabaseError:  # "malformed", "file is not a database"
            from workloads.target import default_home

            return (
                f"a local SQLite database is damaged ({item}); the local state is in {default_home()}: "
                "move the damaged file (usually mlflow.db) aside, or start from empty local state "
                "with `mlp demo --reset`"
            )
        if isinstance(item, ConnectionError | TimeoutError) or name in _CONNECTION_ERRORS:
            return (
                f"cannot reach a service: {str(item).strip() or name}; check that it runs and that the "
                "endpoint (stack outputs, --outputs-file or the --*-endpoint option) is right"
            )
    if isinstance(error, OSError) and error.filename:
        return f"cannot use {error.filename}: {error.strerror or error}"
    return ""


_CONNECTION_ERRORS = frozenset(
    {
        "EndpointConnectionError",  # botocore
        "ConnectTimeoutError",  # botocore, urllib3
        "ConnectionError",  # requests
        "ConnectError",  # httpx
        "ConnectTimeout",  # httpx, requests
        "NewConnectionError",  # urllib3
        "MaxRetryError",  # urllib3
        "ResponseHandlingException",  # qdrant-client (wraps the httpx error)
    }
)
"""Exception class names of the HTTP/S3/vector-database clients that mean "could not connect"."""
