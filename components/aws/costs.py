"""Estimate what the AWS part of the lab costs, from the dated price table beside this file.

Pure functions over ``prices.json``. Always-on costs are monthly (730 hours). A GPU worker's
instance, root volume and address cost money only while it runs, so they are hourly; a parked
worker pays only for its models in S3, monthly. A NAT gateway is priced for comparison: it is
what this design avoids.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

HOURS_PER_MONTH = 730
PRICES = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class RouterCost:
    """The subnet router: always on."""

    monthly_usd: float
    instance_monthly_usd: float
    public_ipv4_monthly_usd: float
    storage_monthly_usd: float


@dataclass(frozen=True)
class WorkerCost:
    """A GPU worker: everything while it runs, its models in S3 always."""

    running_hourly_usd: float
    """Spot estimate (capped at the worker's maximum price), its root volume and its public
    IPv4 address, if it has one."""
    max_hourly_usd: float
    """The most an hour can cost: the maximum spot price, the root volume and the address."""
    parked_monthly_usd: float
    """Its models in S3: all a parked worker costs."""


@dataclass(frozen=True)
class NatGatewayCost:
    """What one NAT gateway would cost instead, before any data through it."""

    monthly_usd: float
    per_gib_usd: float


@cache
def _table() -> dict[str, Any]:
    return json.loads(PRICES.read_text())


def price_date() -> str:
    """When the price table's figures were taken."""
    return _table()["asOf"]


def priced_regions() -> list[str]:
    """The regions the price table covers."""
    return sorted(_table()["regions"])


def _region(region: str) -> dict[str, Any] | None:
    return _table()["regions"].get(region)


def router_cost(region: str, instance_type: str, root_gib: int) -> RouterCost | None:
    """The router's monthly cost, or None where the table has no price for it."""
    prices = _region(region)
    if prices is None or instance_type not in prices["onDemandHour"]:
        return None
    instance = prices["onDemandHour"][instance_type] * HOURS_PER_MONTH
    address = prices["publicIpv4Hour"] * HOURS_PER_MONTH
    storage = prices["ebsGp3GibMonth"] * root_gib
    return RouterCost(
        monthly_usd=round(instance + address + storage, 2),
        instance_monthly_usd=round(instance, 2),
        public_ipv4_monthly_usd=round(address, 2),
        storage_monthly_usd=round(storage, 2),
    )


def worker_cost(
    region: str,
    instance_type: str,
    max_spot_price: float,
    root_gib: int,
    models_gib: int,
    *,
    public_ipv4: bool = True,
) -> WorkerCost | None:
    """A worker's hourly cost while it runs and its monthly cost parked, or None if unpriced."""
    prices = _region(region)
    if prices is None:
        return None
    spot = prices["spotEstimateHour"].get(instance_type)
    if spot is None:
        return None
    # The root volume lives and dies with the instance.
    extras = prices["ebsGp3GibMonth"] * root_gib / HOURS_PER_MONTH
    if public_ipv4:
        extras += prices["publicIpv4Hour"]
    return WorkerCost(
        running_hourly_usd=round(min(spot, max_spot_price) + extras, 4),
        max_hourly_usd=round(max_spot_price + extras, 4),
        parked_monthly_usd=round(prices["s3StandardGibMonth"] * models_gib, 2),
    )


def nat_gateway_cost(region: str) -> NatGatewayCost | None:
    """One NAT gateway and its Elastic IP, the design this stack avoids."""
    prices = _region(region)
    if prices is None:
        return None
    hourly = prices["natGatewayHour"] + prices["publicIpv4Hour"]
    return NatGatewayCost(
        monthly_usd=round(hourly * HOURS_PER_MONTH, 2), per_gib_usd=prices["natGatewayGib"]
    )


def as_output(cost: object | None) -> dict[str, Any] | None:
    """A cost as a stack output: camelCase keys, or None where unpriced."""
    if cost is None:
        return None
    return {_camel(key): value for key, value in asdict(cost).items()}  # type: ignore[call-overload]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
