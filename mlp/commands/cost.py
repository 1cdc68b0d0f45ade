"""``mlp cost``: what a stack's GPU pools cost, on-demand vs spot, and what scale-to-zero saves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlp.common import BadInput, NotFound, emit_json, json_option, stack_option

if TYPE_CHECKING:
    from components.gpu.prices import PriceTable
    from stacks.config import PlatformConfig
    from workloads.cost import CostReport, FetchJson

DEFAULT_IDLE_FRACTION = 0.75


def pool_machines(cfg: PlatformConfig) -> list[tuple[str, str, list[str]]]:
    """(pool name, priced machine, every machine the pool may use) for each GPU pool of a cloud stack."""
    rows = []
    for pool in cfg.gpu_pools:
        machines = [pool.vm_size] if cfg.target == "aks" and pool.vm_size else list(pool.instance_types or [])
        if machines:
            rows.append((pool.name, machines[0], machines))
    return rows


def region_of(cfg: PlatformConfig) -> str:
    """The stack's cloud region."""
    region = cfg.aks.location if cfg.target == "aks" else cfg.eks.region
    if not region:
        raise BadInput(f"the {cfg.target} stack sets no region")
    return region


def live_spot_table(
    cfg: PlatformConfig,
    table: PriceTable,
    *,
    ec2_client: Any | None = None,
    fetch: FetchJson | None = None,
) -> PriceTable:
    """The table with live spot prices for the stack's priced machines.

    Raises:
        workloads.cost.RefreshError: When the live source cannot be read.

    """
    from workloads import cost

    region = region_of(cfg)
    machines = sorted({priced for _, priced, _ in pool_machines(cfg)})
    if cfg.target == "eks":
        spot = cost.ec2_spot_prices(machines, region, client=ec2_client)
    else:
        found = cost.azure_vm_prices(machines, region, fetch=fetch or cost.http_get_json)
        spot = {size: prices["spot"] for size, prices in found.items()}
    return table.with_spot(cfg.target, region, spot)  # type: ignore[arg-type]


def build_report(
    stack: str,
    *,
    idle_fraction: float = DEFAULT_IDLE_FRACTION,
    table: PriceTable | None = None,
    root: Path | None = None,
) -> CostReport:
    """The cost report of ``stack``'s GPU pools from its stack file and a price table.

    Raises:
        stacks.config.ConfigError: When the stack file is invalid.
        components.gpu.prices.PriceNotFound: When a pool's machine has no price.

    """
    from components.gpu.catalog import machine_type
    from components.gpu.prices import load_prices
    from stacks.config import load_stack_file
    from workloads.cost import CostReport, PoolCostInput, pool_cost

    cfg = load_stack_file(stack, root)
    table = table or load_prices()
    notes: list[str] = []
    if cfg.target == "dev":
        return CostReport(
            stack=stack,
            cloud="dev",
            region="local",
            idle_fraction=idle_fraction,
            hours_per_month=table.hours_per_month,
            currency=table.currency,
            prices_as_of=table.as_of,
            prices_source=table.source,
            spot_estimate=table.spot_estimate,
            pools=(),
            notes=("a local cluster has no cloud GPU prices",),
        )
    region = region_of(cfg)
    by_name = {pool.name: pool for pool in cfg.gpu_pools}
    costs = []
    for name, priced, machines in pool_machines(cfg):
        pool = by_name[name]
        size = machine_type(priced)
        price = table.price(cfg.target, region, priced)  # type: ignore[arg-type]
        sharing = pool.sharing
        shares = (
            sharing.time_slicing.replicas
            if sharing.time_slicing
            else sharing.mps.replicas
            if sharing.mps
            else 1
        )
        if len(machines) > 1:
            notes.append(
                f"{name}: priced as {priced}; the node group may also launch {', '.join(machines[1:])}"
            )
        if sharing.mig:
            notes.append(
                f"{name}: MIG instances per GPU depend on the profile; per-slot cost counts whole GPUs"
            )
        costs.append(
            pool_cost(
                PoolCostInput(
                    name=name,
                    machine=priced,
                    gpus_per_node=size.gpu_count if size else 1,
                    min_nodes=pool.min_count,
                    max_nodes=pool.max_count,
                    spot=pool.spot,
                    on_demand_hourly=price.on_demand,
                    spot_hourly=price.spot,
                    shares_per_gpu=shares,
                ),
                idle_fraction,
                table.hours_per_month,
            )
        )
    if table.spot_estimate:
        notes.append(
            f"spot prices are estimates from the table dated {table.as_of}; use --refresh-spot for live ones"
        )
    return CostReport(
        stack=stack,
        cloud=cfg.target,
        region=region,
        idle_fraction=idle_fraction,
        hours_per_month=table.hours_per_month,
        currency=table.currency,
        prices_as_of=table.as_of,
        prices_source=table.source,
        spot_estimate=table.spot_estimate,
        pools=tuple(costs),
        notes=tuple(notes),
    )


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
    from components.gpu.prices import PriceNotFound, load_prices
    from stacks.config import ConfigError, load_stack_file
    from workloads.cost import RefreshError, report_to_dict

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
