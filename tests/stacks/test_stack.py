"""The whole program (__main__.py) with the dev stack's config, in up and preview mode."""

from __future__ import annotations

import dataclasses
import json

import pytest

from offline.engine import Secret, Unknown, run_project
from offline.plan import build_plan, render_text
from stacks.load import ConfigError
from tests.conftest import ROOT, assert_no_output_placeholders

COMPONENTS = {
    "homelab:tailnet:Tailnet": 1,
    "homelab:docker:DockerHost": 1,
    "homelab:docker:SidecarService": 5,
    "homelab:aws:SubnetRouter": 1,
    "homelab:aws:GpuWorker": 2,
}


@pytest.fixture(params=[False, True], ids=["up", "preview"])
def dev(request, run_stack):
    return run_stack(preview=request.param)


def test_dev_stack_builds_all_four_component_kinds(dev):
    for token, count in COMPONENTS.items():
        assert len(dev.of_type(token)) == count, token


def test_every_resource_is_parented_to_a_component(dev):
    components = {r.urn for r in dev.resources if not r.custom}
    for resource in dev.resources:
        if resource.type.startswith("homelab:"):
            continue
        assert resource.parent in components, resource.urn


def test_stack_outputs_name_every_service_and_worker(dev):
    urls = dev.outputs["urls"]
    assert urls["photos"] == "https://photos.tail4e2c1.ts.net"
    assert urls["mqtt"] == "tcp://mqtt.tail4e2c1.ts.net"
    assert set(urls) == {"photos", "home", "media", "quiz", "mqtt", "ollama", "fooocus"}
    assert dev.outputs["vpcResolver"] == "10.60.0.2"
    assert dev.outputs["workerGroups"] == {
        "ollama": "homelab-dev-ollama",
        "fooocus": "homelab-dev-fooocus",
    }


def test_images_are_looked_up_once_per_stack_not_per_worker(dev):
    assert dev.calls["aws:ssm/getParameter:getParameter"] == 2
    assert dev.calls["aws:index/getAvailabilityZones:getAvailabilityZones"] == 1


def test_tailnet_policy_covers_the_stack(dev):
    (acl,) = dev.of_type("tailscale:index/acl:Acl")
    policy = json.loads(acl.inputs["acl"])
    assert policy["autoApprovers"]["routes"] == {"10.60.0.0/16": ["tag:subnet-router"]}
    assert policy["autoApprovers"]["exitNode"] == ["tag:subnet-router"]
    # Funnel for the public quiz only; Home Assistant reaches MQTT and nothing else.
    assert policy["nodeAttrs"] == [{"target": ["tag:svc-quiz"], "attr": ["funnel"]}]
    home_rules = [rule for rule in policy["acls"] if rule["src"] == ["tag:svc-home"]]
    assert home_rules == [
        {
            "action": "accept",
            "src": ["tag:svc-home"],
            "dst": ["tag:svc-mqtt:1883", "tag:svc-mqtt:8883"],
        }
    ]
    # SSH to servers is checked, recorded, and refused when it cannot be recorded.
    (ssh,) = policy["ssh"]
    assert ssh["action"] == "check"
    assert ssh["recorder"] == ["tag:recorder"]
    assert ssh["enforceRecorder"] is True
    assert {"action": "accept", "src": ["tag:subnet-router"], "dst": ["tag:recorder:80"]} in (
        policy["acls"]
    )


def test_split_dns_points_the_region_at_the_vpc_resolver(dev):
    (dns,) = dev.of_type("tailscale:index/dnsConfiguration:DnsConfiguration")
    assert dns.inputs["splitDns"] == [
        {"domain": "eu-central-1.compute.internal", "nameservers": [{"address": "10.60.0.2"}]}
    ], dns.urn


def test_no_output_was_formatted_into_a_string(dev):
    assert_no_output_placeholders(dev)


def test_immich_password_reaches_both_containers_as_a_secret(dev):
    server = dev.named("photos-server")
    database = dev.named("photos-database")
    for container, key in ((server, "DB_PASSWORD"), (database, "POSTGRES_PASSWORD")):
        secrets = [e.value for e in container.inputs["envs"] if isinstance(e, Secret)]
        assert any(value.startswith(f"{key}=") for value in secrets), container.urn


def test_a_stack_without_aws_builds_only_the_tailnet_and_hosts(run_stack):
    recording = run_stack({"aws": None})
    types = {r.type for r in recording.resources}
    assert "homelab:aws:SubnetRouter" not in types
    assert "homelab:docker:DockerHost" in types
    assert "vpcId" not in recording.outputs


def _owned_tags(recording) -> set[str]:
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    return set(json.loads(acl.inputs["acl"])["tagOwners"])


def _credentials(recording):
    return recording.of_type("tailscale:index/oauthClient:OauthClient") + recording.of_type(
        "tailscale:index/tailnetKey:TailnetKey"
    )


def test_every_device_joins_with_a_credential_for_owned_tags_only(dev):
    credentials = {c.name: c for c in _credentials(dev)}
    devices = {"photos", "home", "media", "quiz", "mqtt", "recorder", "router", "ollama", "fooocus"}
    assert set(credentials) == {
        f"tailnet-{device}-{'key' if device == 'recorder' else 'client'}" for device in devices
    }
    for credential in credentials.values():
        assert set(credential.inputs["tags"]) <= _owned_tags(dev), credential.urn


def test_each_service_sidecar_advertises_its_own_tag(dev):
    sidecar = dev.named("home-tailscale")
    assert "TS_EXTRA_ARGS=--advertise-tags=tag:svc-home" in sidecar.inputs["envs"], sidecar.urn


def test_a_stack_without_aws_or_recorder_makes_only_the_credentials_it_uses(run_stack):
    from tests.conftest import dev_config_objects

    objects = dev_config_objects()
    objects["hosts"]["tequila"]["sessionRecorder"] = False
    recording = run_stack({"aws": None, "hosts": objects["hosts"]})
    names = sorted(c.name for c in _credentials(recording))
    assert names == [
        f"tailnet-{service}-client" for service in ("home", "media", "mqtt", "photos", "quiz")
    ]
    for credential in _credentials(recording):
        assert set(credential.inputs["tags"]) <= _owned_tags(recording), credential.urn
    assert "ssh" not in json.loads(recording.of_type("tailscale:index/acl:Acl")[0].inputs["acl"])


def test_preview_shows_ids_of_resources_to_be_created_as_unknown(run_stack):
    recording = run_stack(preview=True)
    server = recording.named("photos-server")
    assert isinstance(server.inputs["networkMode"], Unknown), server.urn


def _run_with(dev_project, changes: dict[str, str]):
    config = {**dev_project.config, **changes}
    return run_project(ROOT, dataclasses.replace(dev_project, config=config), preview=False)


def test_a_newline_in_a_key_is_shown_escaped_on_one_line(dev_project):
    objects = json.loads(dev_project.config["homelab:hosts"])
    objects["tequila"]["services"]["qu\niz"] = {"app": "web"}
    with pytest.raises(ConfigError) as raised:
        _run_with(dev_project, {"homelab:hosts": json.dumps(objects)})
    assert "qu\\niz" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_plan_reports_what_the_aws_part_costs(dev, dev_project):
    costs = dev.outputs["costs"]
    assert costs["router"]["monthlyUsd"] < 8
    assert set(costs["workers"]) == {"ollama", "fooocus"}
    assert costs["natGatewayInstead"]["monthlyUsd"] > costs["router"]["monthlyUsd"]
    text = render_text(build_plan(dev_project, dev, preview=False))
    assert "Estimated AWS cost" in text
    assert f"router, always on            ${costs['router']['monthlyUsd']:.2f}/month" in text
    parked = sum(worker["parkedMonthlyUsd"] for worker in costs["workers"].values())
    assert 0 < parked < 2, "the dev workers' models in S3"
    assert f"every month, workers parked  ${costs['router']['monthlyUsd'] + parked:.2f}" in text
    assert "a NAT gateway instead" in text
