"""What every ``mlp`` command shares: exit codes, errors, option bundles and JSON output.

Exit codes have one meaning each, for every command:

==  ===============  =================================================================
0   ``OK``           the command did what it was asked
1   ``FAILED``       an operation failed while running (service unreachable, engine error,
                     unexpected error)
2   ``BAD_INPUT``    usage error or bad input: unknown option, malformed or missing file,
                     invalid stack configuration given to a command that needs a valid one
3   ``CHECK_FAILED`` the command ran a check and it did not pass (plan or config findings,
                     quality gate, restore count, crash test, stale question set)
4   ``NOT_FOUND``    the thing named does not exist (model version, snapshot run, collection)
==  ===============  =================================================================
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

if TYPE_CHECKING:
    from workloads.target import StackOutputs, Target

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    """Process exit status of every ``mlp`` command (one meaning each; see the module docstring)."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    CHECK_FAILED = 3
    NOT_FOUND = 4


class Failed(click.ClickException):
    """An operation failed while running (exit 1)."""

    exit_code = ExitCode.FAILED


class BadInput(click.ClickException):
    """Bad input: a malformed, missing or invalid file or value (exit 2, no usage text)."""

    exit_code = ExitCode.BAD_INPUT


class CheckFailed(click.ClickException):
    """A check the command exists to perform did not pass (exit 3)."""

    exit_code = ExitCode.CHECK_FAILED


class NotFound(click.ClickException):
    """What the user named does not exist (exit 4)."""

    exit_code = ExitCode.NOT_FOUND


def exit_with(code: ExitCode) -> None:
    """End the command with ``code`` (for commands that printed their own findings)."""
    raise SystemExit(int(code))


# ---------------------------------------------------------------------------------------------
# Options


def option_group(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options and arguments as one decorator; ``--help`` lists them in this order."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def bundle(argument: str, bundle_type: type[Any], *options: Callable[[F], F]) -> Callable[[F], F]:
    """Add ``options`` to a command and hand it their values as one dataclass, ``argument``.

    The values of the parameters named like fields of ``bundle_type`` go into it; the others pass
    through. ``--help`` is unchanged: the options appear where the decorator stands.
    """
    names = [f.name for f in dataclasses.fields(bundle_type)]

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names if name in kwargs}
            return command(*args, **kwargs, **{argument: bundle_type(**values)})

        return option_group(*options)(cast(F, run))

    return decorate


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
"""``--json``: the command receives ``as_json`` and prints with :func:`emit_json`."""

bench_out_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build/bench"),
    show_default=True,
)
"""``--out``: the directory a benchmark writes its JSON report and plot to (parameter ``out_dir``)."""


def stack_option(
    *, required: bool = True, multiple: bool = False, help: str | None = None
) -> Callable[[F], F]:
    """``--stack``: a stack name (``Pulumi.<stack>.yaml``); with ``multiple`` the parameter is ``stacks``."""
    text = help or "Stack whose Pulumi.<stack>.yaml to use (dev, aks, eks...)."
    if multiple:
        return click.option("--stack", "stacks", multiple=True, help=text)
    return click.option("--stack", "stack", required=required, help=text)


def target_options(command: F) -> F:
    """``--target`` and ``--outputs-file``: where a workload runs (see :mod:`workloads.target`).

    The decorated command receives ``target`` (str) and ``outputs_file`` (path or None); pass
    them to :func:`resolve_target`.
    """
    from workloads.target import LOCAL, OUTPUTS_FILE_ENV, TARGET_ENV

    command = click.option(
        "--outputs-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=OUTPUTS_FILE_ENV,
        help="Read stack outputs from this JSON file (from `pulumi stack output --json --show-secrets`).",
    )(command)
    command = click.option(
        "--target",
        default=LOCAL,
        show_default=True,
        envvar=TARGET_ENV,
        help="`local` for embedded engines, or a Pulumi stack name whose outputs locate the platform.",
    )(command)
    return command


def resolve_target(target: str | None = None, outputs_file: str | Path | None = None) -> Target:
    """:func:`workloads.target.load_target` for commands: its errors become clean CLI errors.

    Returns:
        The :class:`workloads.target.Target`.

    Raises:
        BadInput: An unusable outputs file (exit 2).
        Failed: The stack's outputs could not be read (exit 1).
    """
    from workloads.target import LOCAL, OutputsFileError, TargetError, load_target

    try:
        return load_target(target or LOCAL, outputs_file=outputs_file)
    except OutputsFileError as error:
        raise BadInput(str(error)) from None
    except TargetError as error:
        raise Failed(str(error)) from None


def stack_outputs(
    stack: str | None, outputs_file: Path | None, *, deployed: bool, plan_fallback: bool = False
) -> StackOutputs:
    """The outputs a command renders or applies a stack's objects with, from the first source that applies.

    1. ``outputs_file``: for rendering (not ``deployed``), values masked as ``[secret]`` are left
       out, since rendering needs no secret;
    2. when ``deployed``: the deployed stack, through the Pulumi CLI. With ``plan_fallback``, a
       stack that cannot be read is noted on stderr and the offline plan used instead;
    3. the stack's offline plan (its program under mocks; secret outputs left out).

    Raises:
        workloads.target.TargetError: The outputs cannot be read (an :class:`OutputsFileError` for
            a bad file).
        FileNotFoundError: The offline plan's ``Pulumi.<stack>.yaml`` does not exist.
    """
    from stacks.plan.plan import planned_exports
    from workloads.target import TargetError, parse_outputs, read_outputs_file, read_stack_outputs

    if outputs_file is not None:
        return read_outputs_file(outputs_file, drop_masked=not deployed)
    if stack is None:
        raise TargetError("give --target <stack> or --outputs-file FILE")
    if deployed:
        try:
            return read_stack_outputs(stack)
        except TargetError as error:
            if not plan_fallback:
                raise
            click.echo(f"note: {error}; using the offline plan", err=True)
    return parse_outputs(planned_exports(stack), source=f"offline plan of stack {stack!r}")


def emit_json(data: Any, *, sort_keys: bool = False) -> None:
    """Print ``data`` as indented JSON on stdout (anything not JSON-native as its ``str``)."""
    click.echo(json.dumps(data, indent=2, sort_keys=sort_keys, default=str))


class NonBlank(click.ParamType[str, Any]):
    """Text that must hold something besides whitespace (a question, a query, a name)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:  # noqa: D102
        text = str(value)
        if not text.strip():
            self.fail("must not be empty", param, ctx)
        return text


NON_BLANK = NonBlank()


# ---------------------------------------------------------------------------------------------
# Output paths

OUTPUT_OPTIONS = frozenset({"--out", "--out-dir", "--output", "-o", "--dest"})
"""Option names under which a command writes files; their paths are checked before it runs."""


def output_path_problem(path: Path, *, directory: bool | None) -> str:
    """Why ``path`` cannot be written to (empty when it can).

    Args:
        path: A file or directory the command will write, which may not exist yet.
        directory: True when ``path`` must be a directory, False when a file, None when either.
    """
    try:
        if path.exists():
            if directory is True and not path.is_dir():
                return f"{path} exists and is not a directory"
            if directory is False and path.is_dir():
                return f"{path} is a directory; name a file"
            if not os.access(path, os.W_OK):
                return f"{path} is not writable (permission denied)"
            return ""
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return f"{parent} is a file, so {path} cannot be created under it"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot create {path}: {parent} is not writable (permission denied)"
    except OSError as error:
        return f"cannot use {path}: {error.strerror or error}"
    return ""


def _check_output(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if isinstance(value, str | os.PathLike) and str(value) != "-":
        kind = param.type if isinstance(param.type, click.Path) else None
        directory = None if kind is None or kind.file_okay == kind.dir_okay else kind.dir_okay
        problem = output_path_problem(Path(value), directory=directory)
        if problem:
            raise click.BadParameter(f"{problem}; choose a writable path", ctx=ctx, param=param)
    return value


def guard_outputs(command: click.Command) -> click.Command:
    """Make ``command`` (and, for a group, every subcommand it loads) refuse an unwritable output path.

    Every option named in :data:`OUTPUT_OPTIONS` gets its path checked while the command line is
    parsed, before the command does any work: a path that cannot be written ends the command with
    a usage error (exit 2) naming the option and the reason. Idempotent.
    """
    if getattr(command, "_mlp_outputs_guarded", False):
        return command
    command._mlp_outputs_guarded = True  # type: ignore[attr-defined]
    for param in command.params:
        if isinstance(param, click.Option) and OUTPUT_OPTIONS.intersection(param.opts):
            _chain_callback(param)
    if isinstance(command, click.Group):
        load = command.get_command

        def get_command(ctx: click.Context, name: str) -> click.Command | None:
            sub = load(ctx, name)
            return guard_outputs(sub) if sub is not None else None

        command.get_command = get_command  # type: ignore[method-assign,assignment]
    return command


def _chain_callback(param: click.Parameter) -> None:
    original = param.callback

    def callback(ctx: click.Context, p: click.Parameter, value: Any) -> Any:
        value = _check_output(ctx, p, value)
        return original(ctx, p, value) if original is not None else value

    param.callback = callback
