"""The Tailnet component under the mock engine."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.tailnet.tailnet import JOIN_OPTIONS, Identity, Tailnet, TailnetArgs
from offline.engine import Secret

POLICY = json.dumps({"acls": [{"action": "accept", "src": ["group:admins"], "dst": ["*:*"]}]})
IDENTITIES = [
    Identity("photos", ("tag:svc-photos",)),
    Identity("router", ("tag:subnet-router",)),
    Identity("recorder", ("tag:recorder",), credential="auth-key"),
]


@pytest.fixture
def recording(record_program):
    return record_program(
        lambda: Tailnet(
            "tailnet",
            TailnetArgs(
                policy=POLICY,
                identities=IDENTITIES,
                split_dns={"eu-central-1.compute.internal": ["10.60.0.2"]},
            ),
        )
    )


def test_policy_is_one_acl_that_never_overwrites_a_hand_made_policy(recording):
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    assert acl.inputs["acl"] == POLICY, acl.urn
    assert acl.inputs["overwriteExistingContent"] is False, acl.urn
    assert acl.inputs["resetAclOnDestroy"] is False, acl.urn


def test_each_device_gets_an_oauth_client_limited_to_its_own_tags(recording):
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    clients = {c.name: c for c in recording.of_type("tailscale:index/oauthClient:OauthClient")}
    assert set(clients) == {"tailnet-photos-client", "tailnet-router-client"}
    router = clients["tailnet-router-client"]
    assert router.inputs["tags"] == ["tag:subnet-router"], router.urn
    assert router.inputs["scopes"] == ["auth_keys"], router.urn
    assert acl.urn in router.depends_on, router.urn


def test_a_device_that_cannot_use_a_client_secret_gets_a_single_use_auth_key(recording):
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    (key,) = recording.of_type("tailscale:index/tailnetKey:TailnetKey")
    assert key.name == "tailnet-recorder-key"
    assert key.inputs["tags"] == ["tag:recorder"], key.urn
    assert key.inputs["reusable"] is False, key.urn
    assert key.inputs["preauthorized"] is True, key.urn
    assert key.inputs["expiry"] == 90 * 24 * 3600, key.urn
    assert key.inputs["recreateIfInvalid"] == "always", key.urn
    assert acl.urn in key.depends_on, key.urn


def test_adopting_an_existing_policy_is_a_deliberate_choice(record_program):
    recording = record_program(
        lambda: Tailnet(
            "tailnet", TailnetArgs(policy=POLICY, identities=[], adopt_existing_policy=True)
        )
    )
    (acl,) = recording.of_type("tailscale:index/acl:Acl")
    assert acl.inputs["overwriteExistingContent"] is True, acl.urn


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
        tailnet = Tailnet("tailnet", TailnetArgs(policy=POLICY, identities=IDENTITIES))
        pulumi.export("keys", tailnet.auth_keys)

    keys = record_program(program).outputs["keys"]
    assert set(keys) == {"photos", "router", "recorder"}
    assert all(isinstance(value, Secret) for value in keys.values()), keys
    # A client secret joins as a lasting, pre-approved node.
    assert keys["router"].value.startswith("tskey-client-")
    assert keys["router"].value.endswith(JOIN_OPTIONS)
