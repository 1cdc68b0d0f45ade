"""GPU cost report: figures against hand-computed values, live spot sources (moto, recorded API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from components.gpu.catalog import MACHINE_TYPES
from components.gpu.cost import (
    PoolCostInput,
    RefreshError,
    azure_price_query,
    azure_vm_prices,
    ec2_spot_prices,
    pool_cost,
    report_to_dict,
)
from components.gpu.prices import PRICES_FILE, PriceNotFound, load_prices
from mlp.commands.cost import cost
from stacks.config import load_stack_file
from stacks.cost import build_report, live_spot_table

DATA = Path(__file__).parent / "data"


def pools_by_name(stack: str, **kwargs: Any) -> dict[str, Any]:
    report = build_report(stack, **kwargs)
    return {p.pool.name: p for p in report.pools}


def test_price_table_is_dated_and_sourced() -> None:
    table = load_prices()
    assert table.as_of and table.currency == "USD" and table.hours_per_month == 730
    text = PRICES_FILE.read_text()
    assert "Sources:" in text and "as_of:" in text


def test_every_stack_machine_has_a_price() -> None:
    table = load_prices()
    for stack in ("aks", "eks"):
        cfg = load_stack_file(stack)
        region = cfg.aks.location if stack == "aks" else cfg.eks.region
        for pool in cfg.gpu_pools:
            for machine in [pool.vm_size] if pool.vm_size else pool.instance_types or []:
                price = table.price(stack, region, machine)  # type: ignore[arg-type]
                assert 0 < price.spot < price.on_demand
                assert MACHINE_TYPES[machine].gpu_count >= 1


def test_aks_figures_match_hand_computation() -> None:
    # Table: NC4as_T4_v3 $0.594 on-demand / $0.1307 spot; NV36ads_A10_v5 $3.65 / $0.73; 730 h/month.
    report = build_report("aks", idle_fraction=0.75)
    pools = {p.pool.name: p for p in report.pools}
    t4, a10 = pools["t4"], pools["a10"]
    assert (t4.pool.min_nodes, t4.pool.max_nodes, t4.capacity) == (0, 4, "spot")
    assert t4.on_demand.hourly_min == 0
    assert t4.on_demand.hourly_max == pytest.approx(2.376)  # 4 x 0.594
    assert t4.on_demand.monthly_max == pytest.approx(1734.48)  # 2.376 x 730
    assert t4.spot.hourly_max == pytest.approx(0.5228)  # 4 x 0.1307
    assert t4.spot.monthly_max == pytest.approx(381.644)  # 0.5228 x 730
    assert t4.spot.per_slot_hour == pytest.approx(0.032675)  # 0.1307 / 4 time-slices
    assert t4.spot_discount == pytest.approx(1 - 0.1307 / 0.594)
    s = t4.scale_to_zero_spot
    assert s.warm_nodes == 1 and s.enabled
    assert s.monthly_always_on == pytest.approx(95.411)  # 0.1307 x 730
    assert s.monthly_savings == pytest.approx(71.55825)  # x 0.75
    assert s.monthly_with_scale_to_zero == pytest.approx(23.85275)
    assert t4.scale_to_zero_on_demand.monthly_savings == pytest.approx(325.215)  # 0.594 x 730 x 0.75
    assert a10.on_demand.hourly_max == pytest.approx(7.30)
    assert a10.on_demand.monthly_max == pytest.approx(5329.0)
    assert a10.spot.monthly_max == pytest.approx(1065.8)
    assert a10.spot.per_slot_hour == pytest.approx(0.365)  # MPS, 2 clients
    assert a10.scale_to_zero_spot.monthly_savings == pytest.approx(399.675)  # 0.73 x 730 x 0.75
    # The MIG pool: NC24ads_A100_v4 $4.22 / $0.844, 0..1 nodes, spot.
    a100 = pools["a100mig"]
    assert a100.spot.monthly_max == pytest.approx(616.12)  # 0.844 x 730
    totals = report.totals
    assert totals["hourly_max"] == pytest.approx(1.9828 + 0.844)
    assert totals["monthly_max"] == pytest.approx(1447.444 + 616.12)
    assert totals["monthly_max_on_demand"] == pytest.approx(7063.48 + 3080.6)  # + 4.22 x 730
    assert totals["scale_to_zero_monthly_savings"] == pytest.approx(
        471.23325 + 462.09
    )  # + 0.844 x 730 x 0.75


def test_eks_figures_match_hand_computation() -> None:
    # Table: g4dn.xlarge $0.526 / $0.2104; g6.xlarge $0.8048 / $0.3219.
    report = build_report("eks", idle_fraction=0.5)
    pools = {p.pool.name: p for p in report.pools}
    t4, l4 = pools["t4"], pools["l4"]
    assert t4.pool.machine == "g4dn.xlarge" and l4.pool.machine == "g6.xlarge"
    assert t4.on_demand.monthly_max == pytest.approx(1535.92)  # 4 x 0.526 x 730
    assert t4.spot.hourly_max == pytest.approx(0.8416)
    assert t4.spot.monthly_max == pytest.approx(614.368)
    assert l4.on_demand.hourly_max == pytest.approx(1.6096)
    assert l4.on_demand.monthly_max == pytest.approx(1175.008)
    assert l4.spot.monthly_max == pytest.approx(469.974)  # 2 x 0.3219 x 730
    assert t4.scale_to_zero_spot.monthly_savings == pytest.approx(76.796)  # 0.2104 x 730 x 0.5
    assert l4.scale_to_zero_spot.monthly_savings == pytest.approx(117.4935)  # 0.3219 x 730 x 0.5
    # + the MIG pool: p4d.24xlarge spot $8.7832, 0..1 nodes.
    assert report.totals["monthly_max"] == pytest.approx(1084.342 + 6411.736)
    assert any("g4dn.2xlarge" in note for note in report.notes)


@pytest.mark.parametrize(("idle", "saved"), [(0.0, 0.0), (1.0, 2 * 1.0 * 730), (0.25, 2 * 1.0 * 730 * 0.25)])
def test_scale_to_zero_keeps_min_nodes_warm(idle: float, saved: float) -> None:
    pool = PoolCostInput(
        "x", "m", gpus_per_node=4, min_nodes=2, max_nodes=3, spot=False, on_demand_hourly=1.0, spot_hourly=0.4
    )
    result = pool_cost(pool, idle)
    s = result.scale_to_zero_on_demand
    assert s.warm_nodes == 2 and not s.enabled
    assert s.monthly_savings == pytest.approx(saved)
    assert result.on_demand.per_gpu_hour == pytest.approx(0.25)
    assert result.on_demand.monthly_min == pytest.approx(2 * 730)
    assert result.capacity == "on-demand" and result.chosen is result.on_demand


def test_idle_fraction_is_checked() -> None:
    pool = PoolCostInput("x", "m", 1, 0, 1, True, 1.0, 0.5)
    with pytest.raises(ValueError, match="idle fraction"):
        pool_cost(pool, 1.5)


def test_unknown_region_or_machine_says_how_to_fix() -> None:
    table = load_prices()
    with pytest.raises(PriceNotFound, match="add it to prices.yaml"):
        table.price("aks", "eastus2", "Standard_NC4as_T4_v3")
    with pytest.raises(PriceNotFound, match="p5.48xlarge"):
        table.price("eks", "us-west-2", "p5.48xlarge")


@pytest.mark.slow
def test_ec2_spot_prices_with_moto() -> None:
    with mock_aws():
        client = boto3.client("ec2", region_name="us-west-2")
        prices = ec2_spot_prices(["g4dn.xlarge", "g6.xlarge"], "us-west-2", client=client)
        assert set(prices) == {"g4dn.xlarge", "g6.xlarge"}
        assert all(p > 0 for p in prices.values())
        cfg = load_stack_file("eks")
        table = live_spot_table(cfg, load_prices(), ec2_client=client)
    report = build_report("eks", table=table)
    t4 = next(p for p in report.pools if p.pool.name == "t4")
    assert t4.pool.spot_hourly == pytest.approx(prices["g4dn.xlarge"])
    assert t4.pool.on_demand_hourly == pytest.approx(0.526)  # on-demand stays from the table
    assert not report.spot_estimate and "live spot" in report.prices_source


def test_ec2_without_credentials_is_a_refresh_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import NoCredentialsError

    class NoCreds:
        def get_paginator(self, name: str) -> Any:
            raise NoCredentialsError()

    with pytest.raises(RefreshError, match="unavailable"):
        ec2_spot_prices(["g4dn.xlarge"], "us-west-2", client=NoCreds())


def recorded_fetch(urls: list[str]) -> Any:
    pages = {
        "first": json.loads((DATA / "azure_retail_prices_page1.json").read_text()),
        "second": json.loads((DATA / "azure_retail_prices_page2.json").read_text()),
    }

    def fetch(url: str) -> dict[str, Any]:
        urls.append(url)
        return pages["second"] if "skip=100" in url else pages["first"]

    return fetch


def test_azure_retail_prices_parse_linux_spot_and_on_demand() -> None:
    urls: list[str] = []
    found = azure_vm_prices(
        ["Standard_NC4as_T4_v3", "Standard_NV36ads_A10_v5"], "westeurope", fetch=recorded_fetch(urls)
    )
    # Windows and Low Priority meters are ignored; the next page is followed.
    assert found["Standard_NC4as_T4_v3"] == {"on_demand": 0.594, "spot": 0.1188}
    assert found["Standard_NV36ads_A10_v5"] == {"on_demand": 3.65, "spot": 0.803}
    assert len(urls) == 2
    assert "armRegionName%20eq%20%27westeurope%27" in urls[0]
    assert "Standard_NC4as_T4_v3" in azure_price_query("westeurope", ["Standard_NC4as_T4_v3"])


def test_azure_refresh_feeds_the_report() -> None:
    cfg = load_stack_file("aks")
    # The recorded API pages hold the T4 and A10 meters only; leave the A100 MIG pool out.
    cfg = cfg.model_copy(update={"gpu_pools": [p for p in cfg.gpu_pools if p.name in ("t4", "a10")]})
    table = live_spot_table(cfg, load_prices(), fetch=recorded_fetch([]))
    pools = pools_by_name("aks", table=table, idle_fraction=0.75)
    assert pools["t4"].spot.monthly_max == pytest.approx(4 * 0.1188 * 730)
    assert pools["a10"].scale_to_zero_spot.monthly_savings == pytest.approx(0.803 * 730 * 0.75)


def test_azure_missing_spot_meter_is_an_error() -> None:
    def fetch(url: str) -> dict[str, Any]:
        return {"Items": [], "NextPageLink": None}

    with pytest.raises(RefreshError, match="no Linux spot price"):
        azure_vm_prices(["Standard_NC4as_T4_v3"], "westeurope", fetch=fetch)


def test_cli_json_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(cost, ["--stack", "aks", "--json", "--idle-fraction", "0.75"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["prices"]["as_of"] == load_prices().as_of
    t4 = next(p for p in data["pools"] if p["name"] == "t4")
    assert t4["spot"]["monthly_max"] == pytest.approx(381.644)
    assert t4["node_price"]["on_demand_hourly"] == 0.594
    assert data["totals"]["scale_to_zero_monthly_savings"] == pytest.approx(471.2333 + 462.09, abs=1e-4)
    text = runner.invoke(cost, ["--stack", "eks"])
    assert text.exit_code == 0, text.output
    assert "Scale-to-zero" in text.output and "g4dn.xlarge" in text.output


def test_cli_refresh_failure_falls_back_to_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import components.gpu.cost as cost_module

    def offline(url: str) -> dict[str, Any]:
        raise RefreshError("network unreachable")

    monkeypatch.setattr(cost_module, "http_get_json", offline)
    result = CliRunner().invoke(cost, ["--stack", "aks", "--refresh-spot", "--json"])
    assert result.exit_code == 0, result.output
    assert "live spot prices unavailable" in result.output
    assert '"spot_estimate": true' in result.output


def test_cli_unknown_stack_is_bad_input() -> None:
    result = CliRunner().invoke(cost, ["--stack", "nope"])
    assert result.exit_code == 2
    assert "no stack file" in result.output


def test_dev_stack_has_no_cloud_prices() -> None:
    report = build_report("dev")
    assert report.pools == () and report_to_dict(report)["notes"]
