"""Data survives: every stateful resource of the dev stack is listed here by name, is protected and
retained on delete, and no change to a service's image, version or proxy settings (nor to a
worker's size, price or state) touches one of them.

What counts as stateful is decided by type, as the policy pack decides it (Docker volumes other
than a sidecar's socket and certificate volumes, EBS volumes, S3 buckets, databases), not by
whether a resource happens to be protected: an unprotected data volume fails here rather than
slipping out of the list.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import dev_config_objects

from offline.engine import Recording
from policy.invariants import STATEFUL_TYPES, is_stateful

DEV_STATEFUL = {
    # Immich: photos, its PostgreSQL database, its machine-learning models; the sidecar's node.
    "photos-volume-library",
    "photos-volume-database",
    "photos-volume-model-cache",
    "photos-volume-tailscale-state",
    "home-volume-config",
    "home-volume-tailscale-state",
    "media-volume-config",
    "media-volume-cache",
    "media-volume-media",
    "media-volume-tailscale-state",
    "quiz-volume-data",
    "quiz-volume-tailscale-state",
    "mqtt-volume-data",
    "mqtt-volume-tailscale-state",
    # The session recordings and the recorder's node state.
    "tequila-recorder-data",
    # The GPU workers' models.
    "ollama-models",
    "fooocus-models",
}
"""Every resource of the dev stack that holds data, by name."""


def stateful(recording: Recording) -> dict[str, dict[str, Any]]:
    """Name -> everything about a stateful resource that a change could touch."""
    return {
        r.name: {
            "urn": r.urn,
            "type": r.type,
            "parent": r.parent,
            "provider": r.provider,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "ignoreChanges": r.ignore_changes,
            "inputs": json.dumps(r.inputs, sort_keys=True, default=repr),
        }
        for r in recording.resources
        if r.type in STATEFUL_TYPES and is_stateful(r.type, r.inputs)
    }


@pytest.fixture(scope="module")
def before() -> Recording:
    from conftest import ROOT

    from offline.engine import run_project
    from offline.project import read_project

    return run_project(ROOT, read_project(ROOT, "dev"), preview=False)


def test_every_stateful_resource_is_listed(before):
    assert set(stateful(before)) == DEV_STATEFUL


def test_every_stateful_resource_is_protected_and_retained_on_delete(before):
    for resource in stateful(before).values():
        assert resource["protect"], resource["urn"]
        assert resource["retainOnDelete"], resource["urn"]


def test_what_is_not_listed_holds_no_data(before):
    """The volumes left out are scratch: a socket and certificates issued again on demand."""
    for resource in before.resources:
        if resource.type in STATEFUL_TYPES and resource.name not in DEV_STATEFUL:
            assert resource.name.endswith(("-tailscale-socket", "-certs")), resource.urn
            assert not resource.protect, resource.urn


def _service(path: str, **changes: Any):
    def edit(objects: dict[str, Any]) -> None:
        node = objects["hosts"]["tequila"]["services"][path]
        for key, value in changes.items():
            if value is None:
                node.pop(key, None)
            else:
                node[key] = value

    return edit


def _worker(name: str, **changes: Any):
    def edit(objects: dict[str, Any]) -> None:
        objects["aws"]["workers"][name].update(changes)

    return edit


def _host(**changes: Any):
    def edit(objects: dict[str, Any]) -> None:
        objects["hosts"]["tequila"].update(changes)

    return edit


CHANGES = [
    pytest.param(_service("photos", version="v2.1.0"), id="photos-version"),
    pytest.param(_service("photos", proxy="serve"), id="photos-proxy"),
    pytest.param(_service("photos", userspace=True), id="photos-userspace"),
    pytest.param(_service("home", version="2025.11.1"), id="home-version"),
    pytest.param(_service("home", proxy="serve"), id="home-proxy"),
    pytest.param(_service("media", version="10.11.0"), id="media-version"),
    pytest.param(_service("media", proxy="serve"), id="media-proxy"),
    pytest.param(_service("media", userspace=True, gpu=False), id="media-userspace-no-gpu"),
    pytest.param(_service("quiz", image="ghcr.io/example/quiz:2.0.0"), id="quiz-image"),
    pytest.param(_service("quiz", public=False, proxy="nginx"), id="quiz-private-behind-nginx"),
    pytest.param(_service("quiz", port=3000), id="quiz-port"),
    pytest.param(_service("mqtt", version="2.0.21"), id="mqtt-version"),
    pytest.param(_service("mqtt", userspace=True, lanPorts=None), id="mqtt-userspace"),
    pytest.param(_host(kind="linux", dns=["192.168.1.1"]), id="host-kind-and-resolvers"),
    pytest.param(
        _worker("ollama", instanceType="g5.xlarge", maxSpotPrice=0.6), id="worker-type-and-price"
    ),
    pytest.param(_worker("fooocus", state="stopped", idleMinutes=60), id="worker-state"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_of_image_version_or_proxy_touches_no_stateful_resource(run_stack, before, change):
    objects = copy.deepcopy(dev_config_objects())
    change(objects)

    after = run_stack({"hosts": objects["hosts"], "aws": objects["aws"]})

    assert stateful(after) == stateful(before)
    # The change reached the plan: the comparison above is not vacuous.
    changed = {
        r.urn for r in after.resources if r.inputs != _inputs_of(before).get(r.urn, r.inputs)
    }
    changed |= {r.urn for r in after.resources} ^ {r.urn for r in before.resources}
    assert changed, "the change did not reach any resource"


def _inputs_of(recording: Recording) -> dict[str, Any]:
    return {r.urn: r.inputs for r in recording.resources}
