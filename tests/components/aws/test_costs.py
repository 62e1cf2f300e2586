"""Cost estimates from the dated price table."""

from __future__ import annotations

import pytest

from components.aws.costs import (
    HOURS_PER_MONTH,
    nat_gateway_cost,
    price_date,
    priced_regions,
    router_cost,
    worker_cost,
)

ALWAYS_ON_TARGET_USD = 8.0


@pytest.mark.parametrize("region", priced_regions())
def test_the_default_router_stays_under_the_always_on_target(region):
    cost = router_cost(region, "t4g.nano", root_gib=8)
    assert cost is not None
    assert cost.monthly_usd < ALWAYS_ON_TARGET_USD
    parts = cost.instance_monthly_usd + cost.public_ipv4_monthly_usd + cost.storage_monthly_usd
    assert cost.monthly_usd == pytest.approx(parts, abs=0.01)


def test_the_router_pays_for_its_public_address_every_hour():
    cost = router_cost("us-east-1", "t4g.nano", root_gib=8)
    assert cost is not None
    assert cost.public_ipv4_monthly_usd == round(0.005 * HOURS_PER_MONTH, 2)


@pytest.mark.parametrize("region", priced_regions())
def test_a_nat_gateway_costs_more_than_the_router(region):
    nat = nat_gateway_cost(region)
    router = router_cost(region, "t4g.nano", root_gib=8)
    assert nat is not None
    assert router is not None
    assert nat.monthly_usd > 4 * router.monthly_usd


def test_a_worker_never_costs_more_an_hour_than_its_maximum_spot_price_root_and_address():
    cheap = worker_cost("eu-central-1", "g4dn.xlarge", 0.10, root_gib=100, models_gib=100)
    assert cheap is not None
    root_hourly = 0.0952 * 100 / HOURS_PER_MONTH
    assert cheap.running_hourly_usd == pytest.approx(0.10 + root_hourly + 0.005, abs=1e-4)
    assert cheap.max_hourly_usd == pytest.approx(cheap.running_hourly_usd)


def test_a_worker_behind_a_nat_instance_pays_for_no_address():
    public = worker_cost("us-east-1", "g4dn.xlarge", 0.35, root_gib=100, models_gib=20)
    private = worker_cost(
        "us-east-1", "g4dn.xlarge", 0.35, root_gib=100, models_gib=20, public_ipv4=False
    )
    assert public is not None
    assert private is not None
    assert public.running_hourly_usd - private.running_hourly_usd == pytest.approx(0.005)


def test_a_parked_worker_pays_for_its_models_in_s3_and_nothing_else():
    cost = worker_cost("us-east-1", "g4dn.xlarge", 0.35, root_gib=100, models_gib=150)
    assert cost is not None
    assert cost.parked_monthly_usd == pytest.approx(0.023 * 150)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: router_cost("ap-south-2", "t4g.nano", 8), id="unpriced-region"),
        pytest.param(lambda: router_cost("us-east-1", "c7g.large", 8), id="unpriced-router"),
        pytest.param(
            lambda: worker_cost("us-east-1", "p5.48xlarge", 9, 100, 100), id="unpriced-gpu"
        ),
        pytest.param(lambda: nat_gateway_cost("ap-south-2"), id="unpriced-nat"),
    ],
)
def test_what_the_table_does_not_price_is_none_not_a_guess(call):
    assert call() is None


def test_the_table_is_dated():
    assert len(price_date()) >= 7
