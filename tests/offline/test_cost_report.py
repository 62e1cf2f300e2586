"""The cost report at the end of the plan: totals only where every part has a price."""

from __future__ import annotations

from offline.plan import cost_lines

ROUTER = {"monthlyUsd": 7.92}
NAT = {"monthlyUsd": 41.61, "perGibUsd": 0.052}


def worker(parked: float) -> dict[str, float]:
    return {"runningHourlyUsd": 0.278, "maxHourlyUsd": 0.368, "parkedMonthlyUsd": parked}


def report(router, workers, nat=NAT) -> str:
    costs = {"priceDate": "2025-06", "router": router, "workers": workers, "natGatewayInstead": nat}
    return "\n".join(cost_lines(costs))


def test_the_total_adds_the_router_and_every_parked_worker():
    text = report(ROUTER, {"ollama": worker(0.73), "fooocus": worker(0.37)})
    assert "every month, workers parked  $9.02" in text
    assert "a NAT gateway instead        $41.61/month plus $0.052/GiB" in text


def test_an_unpriced_worker_leaves_the_total_unknown_not_short():
    text = report(ROUTER, {"ollama": worker(0.73), "big": None})
    assert "worker big                   no price data for its instance type" in text
    assert "unknown: some parts have no price" in text
    assert "$8.65" not in text


def test_an_unpriced_router_type_is_not_mistaken_for_an_unpriced_region():
    text = report(None, {"ollama": worker(0.73)})
    assert "router, always on            no price data for its instance type" in text
    assert "no price data for this region" not in text
    assert "$41.61/month" in text


def test_an_unpriced_region_says_so_once():
    text = report(None, {"ollama": None}, nat=None)
    assert text.count("no price data") == 1
    assert "no price data for this region" in text


def test_a_stack_without_aws_has_no_report():
    assert cost_lines(None) == []


def test_a_stopped_worker_says_it_never_runs_and_still_counts_parked():
    stopped = {**worker(0.73), "state": "stopped"}
    text = report(ROUTER, {"ollama": stopped, "fooocus": worker(0.37)})
    assert "worker ollama                stopped: no instance runs; parked $0.73/month" in text
    assert "every month, workers parked  $9.02" in text
