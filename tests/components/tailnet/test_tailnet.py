"""The Tailnet component under the mock engine."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.tailnet.tailnet import JoinRole, Tailnet, TailnetArgs
from offline.engine import Secret

POLICY = json.dumps({"acls": [{"action": "accept", "src": ["group:admins"], "dst": ["*:*"]}]})
ROLES = [JoinRole("service", ("tag:service",)), JoinRole("router", ("tag:subnet-router",))]


@pytest.fixture
def recording(record_program):
    return record_program(
        lambda: Tailnet(
            "tailnet",
            TailnetArgs(
                policy=POLICY,
                roles=ROLES,
                split_dns={"eu-central-1.compute.internal": ["10.60.0.2"]},
                join_key_expiry_days=90,
            ),
        )
    )


def test_policy_is_one_acl_that_never_overwrites_a_hand_made_policy(recording):
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    assert acl.inputs["acl"] == POLICY, acl.urn
    assert acl.inputs["overwriteExistingContent"] is False, acl.urn
    assert acl.inputs["resetAclOnDestroy"] is False, acl.urn


def test_each_role_gets_a_tagged_reusable_key_created_after_the_policy(recording):
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    keys = {key.name: key for key in recording.of_type("tailscale:index/tailnetKey:TailnetKey")}
    assert set(keys) == {"tailnet-service-key", "tailnet-router-key"}
    router = keys["tailnet-router-key"]
    assert router.inputs["tags"] == ["tag:subnet-router"], router.urn
    assert router.inputs["reusable"] is True, router.urn
    assert router.inputs["preauthorized"] is True, router.urn
    assert router.inputs["expiry"] == 90 * 24 * 3600, router.urn
    assert acl.urn in router.depends_on, router.urn


def test_split_dns_sends_the_vpc_zone_to_its_resolver(recording):
    (dns,) = recording.of_type("tailscale:index/dnsConfiguration:DnsConfiguration")
    assert dns.inputs["magicDns"] is True, dns.urn
    assert dns.inputs["splitDns"] == [
        {"domain": "eu-central-1.compute.internal", "nameservers": [{"address": "10.60.0.2"}]}
    ], dns.urn


def test_settings_turn_on_https_certificates(recording):
    (settings,) = recording.of_type("tailscale:index/tailnetSettings:TailnetSettings")
    assert settings.inputs["httpsEnabled"] is True, settings.urn
    assert settings.inputs["devicesKeyDurationDays"] == 180, settings.urn


def test_every_child_is_parented_to_the_component(recording):
    (component,) = recording.of_type("homelab:tailnet:Tailnet")
    children = [r for r in recording.resources if r is not component]
    assert children
    assert all(child.parent == component.urn for child in children)


def test_join_keys_stay_secret_in_the_outputs(record_program):
    def program():
        tailnet = Tailnet("tailnet", TailnetArgs(policy=POLICY, roles=ROLES))
        pulumi.export("keys", tailnet.join_keys)

    keys = record_program(program).outputs["keys"]
    assert set(keys) == {"service", "router"}
    assert all(isinstance(value, Secret) for value in keys.values()), keys
