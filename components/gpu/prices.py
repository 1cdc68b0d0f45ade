"""The dated GPU node price table (``prices.yaml`` beside this module) and lookups into it.

Pure data access: no network. Live spot refresh lives in ``components.gpu.cost``, which the ``mlp cost``
command uses to override the table's spot column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import yaml

from components.gpu.catalog import Cloud

PRICES_FILE: Final = Path(__file__).resolve().parent / "prices.yaml"


class PriceNotFound(LookupError):
    """No price for a machine type in a region."""


@dataclass(frozen=True)
class NodePrice:
    """Hourly prices of one machine type in one region (USD per node-hour)."""

    on_demand: float
    spot: float


@dataclass(frozen=True)
class PriceTable:
    """The price table with its provenance.

    Attributes:
        as_of: Date the table was compiled (ISO).
        currency: Currency of every price.
        hours_per_month: Hours used to turn hourly into monthly figures.
        spot_estimate: Whether the spot column holds point-in-time estimates.
        prices: cloud -> region -> machine type -> price.
        source: Where the table came from (file path or "live").

    """

    as_of: str
    currency: str
    hours_per_month: float
    spot_estimate: bool
    prices: dict[str, dict[str, dict[str, NodePrice]]]
    source: str

    def price(self, cloud: Cloud, region: str, machine: str) -> NodePrice:
        """The price of ``machine`` in ``cloud``/``region``.

        Raises:
            PriceNotFound: Naming what is known, so the table can be extended.

        """
        regions = self.prices.get(cloud, {})
        if region not in regions:
            raise PriceNotFound(
                f"no {cloud} prices for region '{region}' (known: {', '.join(sorted(regions)) or 'none'}); "
                f"add it to {PRICES_FILE.name}"
            )
        machines = regions[region]
        for name, price in machines.items():
            if name.lower() == machine.lower():
                return price
        raise PriceNotFound(f"no price for {machine} in {cloud}/{region}; add it to {PRICES_FILE.name}")

    def with_spot(self, cloud: Cloud, region: str, spot: dict[str, float]) -> PriceTable:
        """A copy whose spot prices for the given machines are replaced (e.g. by a live refresh)."""
        prices = {c: {r: dict(m) for r, m in regions.items()} for c, regions in self.prices.items()}
        machines = prices.setdefault(cloud, {}).setdefault(region, {})
        for name, value in spot.items():
            current = machines.get(name)
            if current is None:
                raise PriceNotFound(
                    f"no on-demand price for {name} in {cloud}/{region} to go with its spot price"
                )
            machines[name] = NodePrice(on_demand=current.on_demand, spot=value)
        return PriceTable(
            as_of=self.as_of,
            currency=self.currency,
            hours_per_month=self.hours_per_month,
            spot_estimate=False,
            prices=prices,
            source=f"{self.source} + live spot",
        )


def parse_table(data: dict[str, Any], source: str) -> PriceTable:
    """Validate and convert the YAML document of a price table.

    Raises:
        ValueError: When a field is missing or a price is not a non-negative number.

    """
    try:
        clouds = data["clouds"]
        prices: dict[str, dict[str, dict[str, NodePrice]]] = {}
        for cloud, regions in clouds.items():
            for region, machines in regions.items():
                for machine, entry in machines.items():
                    on_demand, spot = float(entry["on_demand"]), float(entry["spot"])
                    if on_demand < 0 or spot < 0:
                        raise ValueError(f"{cloud}/{region}/{machine}: prices must be >= 0")
                    prices.setdefault(cloud, {}).setdefault(region, {})[machine] = NodePrice(on_demand, spot)
        return PriceTable(
            as_of=str(data["as_of"]),
            currency=str(data["currency"]),
            hours_per_month=float(data["hours_per_month"]),
            spot_estimate=bool(data.get("spot_estimate", False)),
            prices=prices,
            source=source,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"price table {source} is malformed: {exc}") from None


@lru_cache(maxsize=4)
def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """Load a price table (the repository's by default)."""
    return parse_table(yaml.safe_load(path.read_text()), path.name)
