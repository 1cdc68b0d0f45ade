"""``mlp cost``: what a stack's GPU pools cost, on-demand vs spot, and what scale-to-zero saves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from components.gpu.cost import DEFAULT_IDLE_FRACTION
from mlp.common import BadInput, NotFound, emit_json, json_option, stack_option

if TYPE_CHECKING:
    from components.gpu.cost import CostReport


def print_report(report: CostReport) -> None:
    """Render the report as tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cur = "$" if report.currency == "USD" else f"{report.currency} "

    def money(value: float) -> str:
        return f"{cur}{value:,.2f}"

    console.print(
        f"[bold]GPU cost of stack '{report.stack}'[/] ({report.cloud} {report.region}), "
        f"prices {report.prices_source} as of {report.prices_as_of}, {report.hours_per_month:g} h/month"
    )
    if not report.pools:
        for note in report.notes:
            console.print(f"note: {note}")
        return
    sizes = Table(title="Per pool: cost at min and max size (min-max)")
    for column in ("pool", "machine", "nodes", "capacity"):
        sizes.add_column(column)
    for column in ("node $/h od / spot", "on-demand /h", "spot /h", "on-demand /month", "spot /month"):
        sizes.add_column(column, justify="right")
    for p in report.pools:
        sizes.add_row(
            p.pool.name,
            p.pool.machine,
            f"{p.pool.min_nodes}-{p.pool.max_nodes}",
            p.capacity,
            f"{money(p.pool.on_demand_hourly)} / {money(p.pool.spot_hourly)} (-{p.spot_discount:.0%})",
            f"{money(p.on_demand.hourly_min)}-{money(p.on_demand.hourly_max)}",
            f"{money(p.spot.hourly_min)}-{money(p.spot.hourly_max)}",
            f"{money(p.on_demand.monthly_min)}-{money(p.on_demand.monthly_max)}",
            f"{money(p.spot.monthly_min)}-{money(p.spot.monthly_max)}",
        )
    console.print(sizes)

    s2z = Table(title=f"Scale-to-zero at {report.idle_fraction:.0%} idle (per month)")
    for column in (
        "pool",
        "capacity",
        "warm nodes",
        "always on",
        "with scale-to-zero",
        "saves",
        "pool scales to zero",
    ):
        s2z.add_column(column, justify="left" if column in ("pool", "capacity") else "right")
    for p in report.pools:
        s = p.chosen_scale_to_zero
        s2z.add_row(
            p.pool.name,
            p.capacity,
            str(s.warm_nodes),
            money(s.monthly_always_on),
            money(s.monthly_with_scale_to_zero),
            money(s.monthly_savings),
            "yes" if s.enabled else "no (minCount > 0)",
        )
    console.print(s2z)
    totals = report.totals
    console.print(
        f"Total at configured capacity: {money(totals['hourly_min'])}-{money(totals['hourly_max'])}/h, "
        f"up to {money(totals['monthly_max'])}/month (all on-demand: {money(totals['monthly_max_on_demand'])}); "
        f"scale-to-zero saves {money(totals['scale_to_zero_monthly_savings'])}/month"
    )
    for p in report.pools:
        console.print(
            f"  {p.pool.name}: {money(p.chosen.per_gpu_hour)} per GPU-hour, "
            f"{money(p.chosen.per_slot_hour)} per schedulable GPU slot-hour ({p.pool.shares_per_gpu} per GPU)"
        )
    for note in report.notes:
        console.print(f"note: {note}")


@click.command("cost")
@stack_option(help="Stack whose Pulumi.<stack>.yaml describes the GPU pools.")
@click.option(
    "--idle-fraction",
    type=click.FloatRange(0, 1),
    default=DEFAULT_IDLE_FRACTION,
    show_default=True,
    help="Share of the month the GPU pools have no work (for scale-to-zero savings).",
)
@click.option(
    "--refresh-spot",
    is_flag=True,
    help="Fetch live spot prices (EC2 spot price history with your AWS credentials; Azure Retail Prices API).",
)
@json_option
def cost(stack: str, idle_fraction: float, refresh_spot: bool, as_json: bool) -> None:
    """GPU pool cost per stack: on-demand vs spot at min and max size, and scale-to-zero savings.

    Prices come from components/gpu/prices.yaml (dated, source noted there); nothing is fetched
    unless --refresh-spot is given. Exit status: 0 on success, 2 when the stack file is missing or
    invalid, 4 when a pool's machine has no price in the table.
    """
    from components.gpu.cost import RefreshError, report_to_dict
    from components.gpu.prices import PriceNotFound, load_prices
    from stacks.config import ConfigError, load_stack_file
    from stacks.cost import build_report, live_spot_table

    table = load_prices()
    try:
        if refresh_spot:
            cfg = load_stack_file(stack)
            if cfg.target in ("aks", "eks"):
                try:
                    table = live_spot_table(cfg, table)
                except RefreshError as exc:
                    click.echo(f"warning: live spot prices unavailable, using the table: {exc}", err=True)
        report = build_report(stack, idle_fraction=idle_fraction, table=table)
    except (ConfigError, FileNotFoundError) as exc:
        raise BadInput(str(exc)) from None
    except PriceNotFound as exc:
        raise NotFound(str(exc)) from None
    if as_json:
        emit_json(report_to_dict(report))
    else:
        print_report(report)
