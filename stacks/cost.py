"""GPU pool cost of a stack: its config's pools priced from the dated table (or live spot prices).

This composes the stack's validated config (``stacks.config``) with the GPU catalog and price table
(``components.gpu``) with the cost math beside them (``components.gpu.cost``); ``mlp cost`` only parses options and
prints what this returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.gpu.cost import DEFAULT_IDLE_FRACTION
from components.gpu.sharing import shares_per_device
from stacks.config import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from components.gpu.cost import CostReport, FetchJson
    from components.gpu.prices import PriceTable
    from stacks.config import PlatformConfig


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
        key = "aks.location" if cfg.target == "aks" else "eks.region"
        raise ConfigError(
            [ConfigIssue(key, f"the {cfg.target} stack sets no region", f"set mlplatform:{key}")]
        )
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
        components.gpu.cost.RefreshError: When the live source cannot be read.

    """
    from components.gpu import cost

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
    from components.gpu.cost import CostReport, PoolCost, PoolCostInput, pool_cost
    from components.gpu.prices import load_prices
    from stacks.cluster_builders import sharing_from_config
    from stacks.config import load_stack_file

    cfg = load_stack_file(stack, root)
    prices = table or load_prices()

    def report(cloud: str, region: str, pools: tuple[PoolCost, ...], notes: tuple[str, ...]) -> CostReport:
        """The report of ``pools``, with the stack, idle fraction and price table of this call."""
        return CostReport(
            stack=stack,
            cloud=cloud,
            region=region,
            idle_fraction=idle_fraction,
            hours_per_month=prices.hours_per_month,
            currency=prices.currency,
            prices_as_of=prices.as_of,
            prices_source=prices.source,
            spot_estimate=prices.spot_estimate,
            pools=pools,
            notes=notes,
        )

    notes: list[str] = []
    if cfg.target == "dev":
        return report("dev", "local", (), ("a local cluster has no cloud GPU prices",))
    region = region_of(cfg)
    by_name = {pool.name: pool for pool in cfg.gpu_pools}
    costs = []
    for name, priced, machines in pool_machines(cfg):
        pool = by_name[name]
        size = machine_type(priced)
        price = prices.price(cfg.target, region, priced)
        sharing = pool.sharing
        shares = shares_per_device(sharing_from_config(sharing))
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
                prices.hours_per_month,
            )
        )
    if prices.spot_estimate:
        notes.append(
            f"spot prices are estimates from the table dated {prices.as_of}; use --refresh-spot for live ones"
        )
    return report(cfg.target, region, tuple(costs), tuple(notes))
