"""GPU pool cost: on-demand vs spot at min and max size, and what scale-to-zero saves.

Pure arithmetic over plain inputs (``stacks.cost`` resolves a stack's prices and pool sizes), plus
two optional live spot-price sources:

* EC2: ``describe_spot_price_history`` through boto3 (needs AWS credentials);
* Azure: the unauthenticated Retail Prices API (``prices.azure.com``).

Definitions used throughout:

* hourly cost at a size = node price × nodes;
* monthly cost = hourly × ``hours_per_month`` (730 by default);
* scale-to-zero: a pool that cannot scale to zero keeps ``max(min_nodes, 1)`` nodes warm all
  month; scaling to zero stops paying for them while the pool is idle, so with an idle fraction
  ``f`` it saves ``warm nodes × price × hours × f`` per month.
"""

from __future__ import annotations

import json
import statistics
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

Capacity = Literal["spot", "on-demand"]
AZURE_PRICES_URL: Final = "https://prices.azure.com/api/retail/prices"
AZURE_API_VERSION: Final = "2023-01-01-preview"
HTTP_TIMEOUT_S: Final = 20


DEFAULT_IDLE_FRACTION: Final = 0.75
"""Share of the month GPU pools are assumed to have no work, for the scale-to-zero saving."""


class RefreshError(RuntimeError):
    """A live price source could not be read (no network, no credentials, bad answer)."""


@dataclass(frozen=True)
class PoolCostInput:
    """What the cost of one GPU pool depends on.

    Attributes:
        name: Pool name.
        machine: VM size / instance type priced.
        gpus_per_node: GPUs per node.
        min_nodes: Minimum pool size.
        max_nodes: Maximum pool size.
        spot: Whether the pool runs on spot capacity.
        on_demand_hourly: On-demand price per node-hour.
        spot_hourly: Spot price per node-hour.
        shares_per_gpu: Pods one GPU holds under time-slicing or MPS (1 without sharing).

    """

    name: str
    machine: str
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    spot: bool
    on_demand_hourly: float
    spot_hourly: float
    shares_per_gpu: int = 1


@dataclass(frozen=True)
class SizeCost:
    """Cost of a pool at its min and max size for one capacity type."""

    hourly_min: float
    hourly_max: float
    monthly_min: float
    monthly_max: float
    per_gpu_hour: float
    per_slot_hour: float


@dataclass(frozen=True)
class ScaleToZero:
    """What scaling to zero saves per month at a given idle fraction.

    Attributes:
        idle_fraction: Share of the month the pool has no GPU work.
        warm_nodes: Nodes kept running without scale-to-zero (``max(min_nodes, 1)``).
        monthly_always_on: Cost of keeping them all month.
        monthly_with_scale_to_zero: Cost when they run only while there is work.
        monthly_savings: The difference.
        enabled: Whether the pool already scales to zero (``min_nodes == 0``).

    """

    idle_fraction: float
    warm_nodes: int
    monthly_always_on: float
    monthly_with_scale_to_zero: float
    monthly_savings: float
    enabled: bool


@dataclass(frozen=True)
class PoolCost:
    """The cost figures of one pool."""

    pool: PoolCostInput
    capacity: Capacity
    on_demand: SizeCost
    spot: SizeCost
    scale_to_zero_on_demand: ScaleToZero
    scale_to_zero_spot: ScaleToZero

    @property
    def spot_discount(self) -> float:
        """Fraction saved by spot over on-demand (0 when on-demand is free or unknown)."""
        od = self.pool.on_demand_hourly
        return 0.0 if od <= 0 else 1 - self.pool.spot_hourly / od

    @property
    def chosen(self) -> SizeCost:
        """Figures for the capacity the pool is configured with."""
        return self.spot if self.capacity == "spot" else self.on_demand

    @property
    def chosen_scale_to_zero(self) -> ScaleToZero:
        """Scale-to-zero figures for the configured capacity."""
        return self.scale_to_zero_spot if self.capacity == "spot" else self.scale_to_zero_on_demand


@dataclass(frozen=True)
class CostReport:
    """Every pool's cost plus totals at the configured capacities."""

    stack: str
    cloud: str
    region: str
    idle_fraction: float
    hours_per_month: float
    currency: str
    prices_as_of: str
    prices_source: str
    spot_estimate: bool
    pools: tuple[PoolCost, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def totals(self) -> dict[str, float]:
        """Sums over pools, each at its configured capacity (spot or on-demand)."""
        chosen = [p.chosen for p in self.pools]
        s2z = [p.chosen_scale_to_zero for p in self.pools]
        return {
            "hourly_min": sum(c.hourly_min for c in chosen),
            "hourly_max": sum(c.hourly_max for c in chosen),
            "monthly_min": sum(c.monthly_min for c in chosen),
            "monthly_max": sum(c.monthly_max for c in chosen),
            "monthly_max_on_demand": sum(p.on_demand.monthly_max for p in self.pools),
            "monthly_max_spot": sum(p.spot.monthly_max for p in self.pools),
            "scale_to_zero_monthly_savings": sum(s.monthly_savings for s in s2z),
        }


def size_cost(price: float, pool: PoolCostInput, hours_per_month: float) -> SizeCost:
    """Hourly and monthly cost of ``pool`` at min and max size for one node price."""
    gpus = max(pool.gpus_per_node, 1)
    return SizeCost(
        hourly_min=price * pool.min_nodes,
        hourly_max=price * pool.max_nodes,
        monthly_min=price * pool.min_nodes * hours_per_month,
        monthly_max=price * pool.max_nodes * hours_per_month,
        per_gpu_hour=price / gpus,
        per_slot_hour=price / gpus / max(pool.shares_per_gpu, 1),
    )


def scale_to_zero(
    price: float, pool: PoolCostInput, idle_fraction: float, hours_per_month: float
) -> ScaleToZero:
    """Scale-to-zero savings of ``pool`` at one node price (see the module docstring)."""
    if not 0 <= idle_fraction <= 1:
        raise ValueError(f"idle fraction must be within [0, 1], got {idle_fraction}")
    warm = max(pool.min_nodes, 1)
    always_on = price * warm * hours_per_month
    return ScaleToZero(
        idle_fraction=idle_fraction,
        warm_nodes=warm,
        monthly_always_on=always_on,
        monthly_with_scale_to_zero=always_on * (1 - idle_fraction),
        monthly_savings=always_on * idle_fraction,
        enabled=pool.min_nodes == 0,
    )


def pool_cost(pool: PoolCostInput, idle_fraction: float, hours_per_month: float = 730) -> PoolCost:
    """All figures for one pool."""
    return PoolCost(
        pool=pool,
        capacity="spot" if pool.spot else "on-demand",
        on_demand=size_cost(pool.on_demand_hourly, pool, hours_per_month),
        spot=size_cost(pool.spot_hourly, pool, hours_per_month),
        scale_to_zero_on_demand=scale_to_zero(pool.on_demand_hourly, pool, idle_fraction, hours_per_month),
        scale_to_zero_spot=scale_to_zero(pool.spot_hourly, pool, idle_fraction, hours_per_month),
    )


def report_to_dict(report: CostReport, digits: int = 4) -> dict[str, Any]:
    """The report as JSON-ready data (money rounded to ``digits``)."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, digits)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return value

    pools = []
    for p in report.pools:
        pools.append(
            {
                "name": p.pool.name,
                "machine": p.pool.machine,
                "gpus_per_node": p.pool.gpus_per_node,
                "min_nodes": p.pool.min_nodes,
                "max_nodes": p.pool.max_nodes,
                "capacity": p.capacity,
                "shares_per_gpu": p.pool.shares_per_gpu,
                "node_price": {
                    "on_demand_hourly": p.pool.on_demand_hourly,
                    "spot_hourly": p.pool.spot_hourly,
                    "spot_discount": p.spot_discount,
                },
                "on_demand": asdict(p.on_demand),
                "spot": asdict(p.spot),
                "scale_to_zero": {
                    "on_demand": asdict(p.scale_to_zero_on_demand),
                    "spot": asdict(p.scale_to_zero_spot),
                },
            }
        )
    data = {
        "stack": report.stack,
        "cloud": report.cloud,
        "region": report.region,
        "currency": report.currency,
        "idle_fraction": report.idle_fraction,
        "hours_per_month": report.hours_per_month,
        "prices": {
            "as_of": report.prices_as_of,
            "source": report.prices_source,
            "spot_estimate": report.spot_estimate,
        },
        "pools": pools,
        "totals": report.totals,
        "notes": list(report.notes),
    }
    result: dict[str, Any] = rounded(data)
    return result


# --- Live spot prices ------------------------------------------------------------------------


def ec2_spot_prices(
    instance_types: Sequence[str], region: str, client: Any | None = None
) -> dict[str, float]:
    """Current EC2 Linux spot prices: per type, the mean over AZs of each AZ's latest price.

    Args:
        instance_types: Instance types to price.
        region: AWS region.
        client: A boto3 EC2 client (a default one for ``region`` when omitted).

    Raises:
        RefreshError: Without credentials or network, or when a type has no price.

    """
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise RefreshError(f"boto3 is not installed: {exc}") from None
    try:
        ec2 = client or boto3.client("ec2", region_name=region)
        latest: dict[tuple[str, str], tuple[datetime, float]] = {}
        pages = ec2.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=list(instance_types),
            ProductDescriptions=["Linux/UNIX"],
            StartTime=datetime.now(UTC) - timedelta(hours=6),
        )
        for page in pages:
            for item in page.get("SpotPriceHistory", []):
                if not str(item.get("ProductDescription", "")).startswith("Linux/UNIX"):
                    continue
                key = (item["InstanceType"], item["AvailabilityZone"])
                stamp, price = item["Timestamp"], float(item["SpotPrice"])
                if key not in latest or stamp > latest[key][0]:
                    latest[key] = (stamp, price)
    except (BotoCoreError, ClientError) as exc:
        raise RefreshError(f"EC2 spot price history unavailable in {region}: {exc}") from None
    prices: dict[str, float] = {}
    for instance_type in instance_types:
        per_az = [price for (kind, _), (_, price) in latest.items() if kind == instance_type]
        if not per_az:
            raise RefreshError(f"no spot price history for {instance_type} in {region}")
        prices[instance_type] = statistics.fmean(per_az)
    return prices


FetchJson = Callable[[str], dict[str, Any]]


def http_get_json(url: str) -> dict[str, Any]:
    """GET a URL and parse JSON (the default fetcher for the Azure Retail Prices API)."""
    if not url.startswith("https://"):
        raise RefreshError(f"refusing non-https URL {url}")
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 - https only
            data: dict[str, Any] = json.loads(response.read().decode())
            return data
    except (OSError, ValueError) as exc:
        raise RefreshError(f"GET {url.split('?')[0]} failed: {exc}") from None


def azure_price_query(region: str, vm_sizes: Iterable[str]) -> str:
    """The Retail Prices API URL selecting the consumption meters of ``vm_sizes`` in ``region``."""
    sizes = " or ".join(f"armSkuName eq '{size}'" for size in vm_sizes)
    query = (
        f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' "
        f"and armRegionName eq '{region}' and ({sizes})"
    )
    return f"{AZURE_PRICES_URL}?api-version={AZURE_API_VERSION}&$filter={urllib.parse.quote(query)}"


def azure_vm_prices(
    vm_sizes: Sequence[str], region: str, fetch: FetchJson = http_get_json, max_pages: int = 20
) -> dict[str, dict[str, float]]:
    """Linux on-demand and spot prices of Azure VM sizes from the Retail Prices API.

    Returns:
        ``{vm_size: {"on_demand": ..., "spot": ...}}`` for each size found (keys present only when
        the API lists that meter).

    Raises:
        RefreshError: When the API cannot be read, or a size has no spot meter.

    """
    url: str | None = azure_price_query(region, vm_sizes)
    items: list[dict[str, Any]] = []
    pages = 0
    while url and pages < max_pages:
        page = fetch(url)
        items.extend(page.get("Items", []))
        url = page.get("NextPageLink")
        pages += 1
    wanted = {size.lower(): size for size in vm_sizes}
    found: dict[str, dict[str, float]] = {}
    for item in items:
        size = wanted.get(str(item.get("armSkuName", "")).lower())
        if size is None or item.get("unitOfMeasure") != "1 Hour" or item.get("type") != "Consumption":
            continue
        if str(item.get("productName", "")).endswith("Windows"):
            continue
        sku = str(item.get("skuName", ""))
        if sku.endswith(" Low Priority"):
            continue
        kind = "spot" if sku.endswith(" Spot") else "on_demand"
        found.setdefault(size, {})[kind] = float(item["retailPrice"])
    missing = [size for size in vm_sizes if "spot" not in found.get(size, {})]
    if missing:
        raise RefreshError(
            f"the Azure Retail Prices API lists no Linux spot price for {', '.join(missing)} in {region}"
        )
    return found
