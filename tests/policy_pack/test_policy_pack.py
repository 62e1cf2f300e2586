"""The policy pack (policy/) over the offline plan: silent on the dev stack, and each deliberately
broken resource gives the violation it should, under the policy it should.

The pack's policies run in this process through :func:`offline.policy_pack.check`, which hands
them each recorded resource as the engine hands it to an analyzer. The last tests start the pack
as the Pulumi CLI does (``python -m pulumi.policy``), a local analyzer server, and talk to it over
gRPC, so the pack itself, its entry file and its enforcement levels are proven too.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import re
import subprocess
import sys
from collections.abc import Callable

import grpc
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_tailscale as tailscale
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from offline.engine import Recording, Registration, Secret, Unknown, record
from offline.policy_pack import check
from policy.invariants import PACK_NAME, POLICIES
from tests.conftest import ROOT
from tests.policy_pack.programs import (
    GOOD_INSTANCE,
    PROTECTED,
    gpu_template,
    group,
    group_from,
    instance,
    mixed_policy,
    one,
    security_group,
)


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def dev(request) -> Recording:
    from offline.engine import run_project
    from offline.project import read_project

    return run_project(ROOT, read_project(ROOT, "dev"), preview=request.param)


def test_every_policy_is_mandatory_and_named_once():
    names = [policy.name for policy in POLICIES]
    assert len(names) == len(set(names))
    assert all(policy.enforcement_level == EnforcementLevel.MANDATORY for policy in POLICIES)
    assert any(isinstance(policy, StackValidationPolicy) for policy in POLICIES)
    assert any(isinstance(policy, ResourceValidationPolicy) for policy in POLICIES)


def test_the_dev_stack_breaks_no_policy(dev):
    report = check(dev)

    assert report.violations == []


def test_in_up_mode_every_policy_could_check_every_resource(dev):
    report = check(dev)

    if not any(isinstance(value, Unknown) for r in dev.resources for value in r.inputs.values()):
        assert report.unknown == []


# --- Deliberately broken resources -----------------------------------------------------------


BROKEN = [
    pytest.param(
        security_group(protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"]),
        "no-open-ingress",
        "ingress[0] lets 0.0.0.0/0 in on tcp 22-22",
        id="ssh-from-anywhere",
    ),
    pytest.param(
        security_group(protocol="-1", from_port=0, to_port=0, ipv6_cidr_blocks=["::/0"]),
        "no-open-ingress",
        "::/0",
        id="everything-from-anywhere-over-ipv6",
    ),
    pytest.param(
        security_group(protocol="tcp", from_port=41641, to_port=41641, cidr_blocks=["0.0.0.0/0"]),
        "no-open-ingress",
        "tcp 41641",
        id="tailscale-port-over-tcp",
    ),
    pytest.param(
        one(
            lambda: aws.vpc.SecurityGroupIngressRule(
                "https",
                security_group_id="sg-1",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4="0.0.0.0/0",
            )
        ),
        "no-open-ingress",
        "the rule lets 0.0.0.0/0 in",
        id="separate-ingress-rule",
    ),
    pytest.param(
        one(
            lambda: aws.ec2.SecurityGroupRule(
                "web",
                type="ingress",
                security_group_id="sg-1",
                protocol="tcp",
                from_port=80,
                to_port=80,
                cidr_blocks=["0.0.0.0/0"],
            )
        ),
        "no-open-ingress",
        "the rule lets 0.0.0.0/0 in",
        id="security-group-rule",
    ),
    pytest.param(
        instance(metadata_options=None),
        "imdsv2-required",
        "httpTokens must be 'required'",
        id="instance-without-metadata-options",
    ),
    pytest.param(
        instance(metadata_options={"http_tokens": "optional"}),
        "imdsv2-required",
        "IMDSv2",
        id="instance-with-imdsv1",
    ),
    pytest.param(
        one(gpu_template(True, metadata_options={"http_tokens": "optional"})),
        "imdsv2-required",
        "IMDSv2",
        id="launch-template-with-imdsv1",
    ),
    pytest.param(
        one(lambda: aws.ebs.Volume("models", availability_zone="a", size=10, opts=PROTECTED)),
        "encrypted-volumes",
        "the volume must be encrypted",
        id="unencrypted-volume",
    ),
    pytest.param(
        instance(root_block_device={"encrypted": False}),
        "encrypted-volumes",
        "rootBlockDevice must be encrypted",
        id="unencrypted-root-device",
    ),
    pytest.param(
        instance(root_block_device=None),
        "encrypted-volumes",
        "rootBlockDevice (not set",
        id="root-device-left-to-the-account",
    ),
    pytest.param(
        one(
            gpu_template(
                True,
                block_device_mappings=[{"device_name": "/dev/sdf", "ebs": {"encrypted": "false"}}],
            )
        ),
        "encrypted-volumes",
        "blockDeviceMappings[0].ebs must be encrypted",
        id="unencrypted-launch-template-disk",
    ),
    pytest.param(
        one(lambda: aws.ec2.NatGateway("nat", subnet_id="subnet-1", allocation_id="eipalloc-1")),
        "no-nat-gateway",
        "a NAT gateway costs",
        id="nat-gateway",
    ),
    pytest.param(
        one(lambda: tailscale.TailnetKey("key", reusable=False, preauthorized=True)),
        "tailscale-devices-tagged",
        "the auth key carries no tags",
        id="untagged-auth-key",
    ),
    pytest.param(
        one(lambda: tailscale.OauthClient("client", scopes=["auth_keys"])),
        "tailscale-devices-tagged",
        "mints device keys but carries no tags",
        id="untagged-oauth-client",
    ),
    pytest.param(
        one(lambda: tailscale.TailnetKey("key", tags=["svc-photos"])),
        "tailscale-devices-tagged",
        "not tag:<name>",
        id="tag-without-its-prefix",
    ),
    pytest.param(
        one(
            lambda: docker.Container(
                "sidecar",
                image="tailscale/tailscale:v1.88.3",
                envs=["TS_HOSTNAME=photos", "TS_EXTRA_ARGS=--ssh"],
            )
        ),
        "tailscale-containers-tagged",
        "TS_EXTRA_ARGS without --advertise-tags",
        id="sidecar-without-tags",
    ),
    pytest.param(
        instance(user_data="#!/bin/sh\ntailscale up --auth-key=file:/k --ssh\n"),
        "tailscale-devices-tagged",
        "runs tailscale up or login without --advertise-tags",
        id="instance-joining-untagged",
    ),
    pytest.param(
        one(
            gpu_template(
                True,
                user_data=base64.b64encode(b"#!/bin/sh\ntailscale up --ssh\n").decode(),
            )
        ),
        "tailscale-devices-tagged",
        "runs tailscale up or login without --advertise-tags",
        id="launch-template-joining-untagged",
    ),
    pytest.param(
        instance(instance_type="g4dn.xlarge"),
        "gpu-workers-on-spot",
        "g4dn.xlarge has a GPU: it must run on spot",
        id="on-demand-gpu-instance",
    ),
    pytest.param(
        one(gpu_template(False)),
        "gpu-templates-on-spot",
        "the launch template must ask for spot",
        id="on-demand-gpu-launch-template",
    ),
    pytest.param(
        group_from(gpu_template(False)),
        "gpu-templates-on-spot",
        "g4dn.xlarge has a GPU: the group starts them on demand",
        id="group-from-an-on-demand-template",
    ),
    pytest.param(
        group_from(gpu_template(False), on_demand=50),
        "gpu-templates-on-spot",
        "starts GPU instances on demand",
        id="mixed-group-half-on-demand",
    ),
    pytest.param(
        one(lambda: docker.Volume("photos-volume-library", name="photos-library")),
        "stateful-resources-protected",
        "it holds data: protect it",
        id="unprotected-data-volume",
    ),
    pytest.param(
        one(lambda: docker.Volume("unnamed")),
        "stateful-resources-protected",
        "protect it",
        id="unprotected-volume-without-a-name",
    ),
    pytest.param(
        one(
            lambda: aws.ebs.Volume(
                "models", availability_zone="eu-central-1a", size=100, encrypted=True
            )
        ),
        "stateful-resources-protected",
        "protect it",
        id="unprotected-models-volume",
    ),
    pytest.param(
        one(lambda: aws.s3.Bucket("models")),
        "stateful-resources-protected",
        "protect it",
        id="unprotected-models-bucket",
    ),
]


@pytest.mark.parametrize(("program", "policy", "fragment"), BROKEN)
def test_a_broken_resource_breaks_exactly_its_policy(program, policy, fragment):
    report = check(record(program))

    assert {violation.policy for violation in report.violations} == {policy}, report.violations
    assert any(fragment in violation.message for violation in report.violations), [
        violation.message for violation in report.violations
    ]
    assert all(violation.urn.startswith("urn:pulumi:") for violation in report.violations)


def test_the_pack_config_can_allow_a_nat_gateway():
    recording = record(one(lambda: aws.ec2.NatGateway("nat", subnet_id="subnet-1")))

    report = check(recording, config={"no-nat-gateway": {"allowNatGateway": True}})

    assert report.violations == []


def _redesigned_worker() -> None:
    """A GPU worker as a spot launch template in a group of at most one, models in a bucket."""
    template = gpu_template(True)()
    aws.autoscaling.Group(
        "worker",
        min_size=0,
        max_size=1,
        availability_zones=["eu-central-1a"],
        launch_template={"id": template.id, "version": "$Latest"},
    )
    aws.s3.Bucket("worker-models", opts=PROTECTED)
    docker.Volume("photos-volume-certs", name="photos-certs")  # scratch: no protection needed


def test_the_launch_template_form_of_a_worker_breaks_no_policy():
    assert check(record(_redesigned_worker)).violations == []


def test_the_tailscale_port_alone_is_open_to_the_world():
    program = security_group(
        protocol="udp", from_port=41641, to_port=41641, cidr_blocks=["0.0.0.0/0"]
    )

    assert check(record(program)).violations == []


def test_the_scratch_volumes_are_exactly_the_unprotected_ones(dev):
    from policy.invariants import DOCKER_VOLUME, is_stateful

    for volume in dev.of_type(DOCKER_VOLUME):
        assert is_stateful(volume.type, volume.inputs) == volume.protect, volume.urn


def test_unknown_values_in_a_preview_are_not_passes():
    def program() -> None:
        network = docker.Network("net", name="net")
        aws.ec2.Instance("node", **GOOD_INSTANCE, instance_type="g4dn.xlarge", user_data=network.id)

    report = check(record(program, preview=True))

    assert ("tailscale-devices-tagged", "string value at .userData") in {
        (unknown.policy, unknown.message[: len("string value at .userData")])
        for unknown in report.unknown
    }
    assert {violation.policy for violation in report.violations} == {"gpu-workers-on-spot"}


# --- The pack as the Pulumi CLI runs it ------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer():
    """The pack started as the CLI starts it: a local analyzer server on a free port."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "pulumi.policy",
            "unused-engine-address",
            str(ROOT / "policy"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=30)


def _struct(inputs: dict) -> struct_pb2.Struct:
    def wire(value):
        if isinstance(value, Secret):
            return {rpc._special_sig_key: rpc._special_secret_sig, "value": wire(value.value)}
        if isinstance(value, Unknown):
            return rpc.UNKNOWN
        if isinstance(value, dict):
            return {key: wire(item) for key, item in value.items()}
        if isinstance(value, list):
            return [wire(item) for item in value]
        return value

    struct = struct_pb2.Struct()
    struct.update(wire(inputs))
    return struct


def _request(resource: Registration) -> analyzer_pb2.AnalyzeRequest:
    return analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        urn=resource.urn,
        name=resource.name,
        properties=_struct(resource.inputs),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect),
    )


def test_the_started_pack_declares_its_policies_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())

    assert info.name == PACK_NAME
    assert {policy.name for policy in info.policies} == {policy.name for policy in POLICIES}
    assert {policy.enforcementLevel for policy in info.policies} == {
        analyzer_pb2.EnforcementLevel.MANDATORY
    }


def test_the_started_pack_passes_the_dev_stack_and_stops_a_broken_group(analyzer, dev):
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=r.type,
            urn=r.urn,
            name=r.name,
            properties=_struct(r.inputs),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
            parent=r.parent,
            dependencies=r.depends_on,
        )
        for r in dev.resources
    ]
    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    findings = [
        d
        for r in dev.resources
        for d in analyzer.Analyze(_request(r)).diagnostics
        if "can't run policy" not in d.message  # unknown in a preview: not checked, not failed
    ]
    assert list(stack.diagnostics) == []
    assert findings == []

    broken = record(
        security_group(protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"])
    )
    (group,) = broken.resources
    (diagnostic,) = analyzer.Analyze(_request(group)).diagnostics
    assert diagnostic.policyName == "no-open-ingress"
    assert diagnostic.enforcementLevel == analyzer_pb2.EnforcementLevel.MANDATORY
    assert "lets 0.0.0.0/0 in on tcp 22-22" in diagnostic.message


def _template_in_a_spot_group_and_a_plain_one() -> None:
    template = gpu_template(False)()
    group("spot-workers", mixed_instances_policy=mixed_policy(template, 0))
    group("extra", launch_template={"id": template.id, "version": "$Latest"})


def test_the_started_pack_follows_a_template_to_each_group_that_uses_it(analyzer):
    # The CLI gives stack policies no id offline-style: templates are found by dependency.
    recording = record(_template_in_a_spot_group_and_a_plain_one, preview=True)
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=r.type,
            urn=r.urn,
            name=r.name,
            properties=_struct(r.inputs),
            dependencies=r.depends_on,
        )
        for r in recording.resources
    ]

    stack = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))

    (diagnostic,) = stack.diagnostics
    assert diagnostic.policyName == "gpu-templates-on-spot"
    assert diagnostic.urn.endswith("::extra")


def test_the_started_pack_refuses_a_nat_gateway_unless_allowed_by_a_boolean(analyzer):
    nat = record(one(lambda: aws.ec2.NatGateway("nat", subnet_id="subnet-1"))).resources[0]

    def configure(allow: object) -> list[str]:
        properties = struct_pb2.Struct()
        properties.update({"allowNatGateway": allow})
        config = analyzer_pb2.PolicyConfig(
            enforcementLevel=analyzer_pb2.EnforcementLevel.MANDATORY, properties=properties
        )
        analyzer.Configure(
            analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"no-nat-gateway": config})
        )
        return [d.policyName for d in analyzer.Analyze(_request(nat)).diagnostics]

    try:
        # A CLI validates the config first; a string reaching the pack still allows nothing.
        assert configure("false") == ["no-nat-gateway"]
        assert configure("true") == ["no-nat-gateway"]
        assert configure(True) == []
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest())


def test_a_mixed_group_with_no_on_demand_capacity_may_use_a_plain_template():
    # AWS refuses market options in a template that a mixed instances policy uses.
    program = group_from(gpu_template(False), on_demand=0)

    assert check(record(program)).violations == []


def _broken(recording: Recording, name: str, change: Callable[[Registration], None]) -> Recording:
    """The recording with one of its resources changed (a copy: the fixture stays intact)."""
    resources = []
    for resource in recording.resources:
        resource = dataclasses.replace(resource, inputs=copy.deepcopy(resource.inputs))
        if resource.name == name:
            change(resource)
        resources.append(resource)
    return dataclasses.replace(recording, resources=resources)


def _set(path: str, value: object) -> Callable[[Registration], None]:
    def change(resource: Registration) -> None:
        *parents, last = path.split(".")
        node = resource.inputs
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return change


def _unprotect(resource: Registration) -> None:
    resource.protect = False


def _changes(*changes: Callable[[Registration], None]) -> Callable[[Registration], None]:
    def change(resource: Registration) -> None:
        for one_change in changes:
            one_change(resource)

    return change


def _drop(key: str) -> Callable[[Registration], None]:
    def change(resource: Registration) -> None:
        del resource.inputs[key]

    return change


def _env_name(entry: object) -> str:
    value = entry.value if isinstance(entry, Secret) else entry
    return str(value).split("=", 1)[0]


def _without_env(name: str) -> Callable[[Registration], None]:
    def change(resource: Registration) -> None:
        envs = resource.inputs["envs"]
        assert any(_env_name(entry) == name for entry in envs)
        resource.inputs["envs"] = [entry for entry in envs if _env_name(entry) != name]

    return change


def _plain_group(resource: Registration) -> None:
    """The worker's group launching straight from its template, without the mixed policy."""
    mixed = resource.inputs.pop("mixedInstancesPolicy")
    template = mixed["launchTemplate"]["launchTemplateSpecification"]["launchTemplateId"]
    resource.inputs["launchTemplate"] = {"id": template, "version": "$Latest"}


def _untagged_join(resource: Registration) -> None:
    """The worker's user data (base64, as a launch template takes it) without its tags."""
    text = base64.b64decode(resource.inputs["userData"]).decode()
    assert "--advertise-tags=" in text
    text = re.sub(r" --advertise-tags=\S+", "", text)
    resource.inputs["userData"] = base64.b64encode(text.encode()).decode()


DEV_BREAKS = [
    pytest.param(
        "router-nodes",
        _set(
            "ingress",
            [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}],
        ),
        "no-open-ingress",
        id="router-group-open-to-ssh",
    ),
    pytest.param(
        "router-instance",
        _set("metadataOptions.httpTokens", "optional"),
        "imdsv2-required",
        id="router-with-imdsv1",
    ),
    pytest.param(
        "ollama-template",
        _set("metadataOptions.httpTokens", "optional"),
        "imdsv2-required",
        id="worker-template-with-imdsv1",
    ),
    pytest.param(
        "ollama-template",
        _set("blockDeviceMappings.0.ebs.encrypted", "false"),
        "encrypted-volumes",
        id="worker-disk-unencrypted",
    ),
    pytest.param(
        "ollama-group",
        _set("mixedInstancesPolicy.instancesDistribution.onDemandPercentageAboveBaseCapacity", 100),
        "gpu-templates-on-spot",
        id="worker-group-on-demand",
    ),
    pytest.param("ollama-models", _unprotect, "stateful-resources-protected", id="models-bucket"),
    pytest.param(
        "photos-volume-database", _unprotect, "stateful-resources-protected", id="database"
    ),
    pytest.param(
        "tailnet-quiz-client", _set("tags", []), "tailscale-devices-tagged", id="untagged-client"
    ),
    pytest.param(
        "ollama-template", _untagged_join, "tailscale-devices-tagged", id="worker-joins-untagged"
    ),
    pytest.param(
        "router-nodes",
        _set(
            "ingress",
            [
                {
                    "protocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"],
                }
            ],
        ),
        "no-open-ingress",
        id="router-group-open-in-two-halves",
    ),
    pytest.param(
        "router-instance",
        _changes(_set("launchTemplate", {"id": "lt-0123456789abcdef0"}), _drop("metadataOptions")),
        "imdsv2-required-at-launch",
        id="router-from-a-template-outside-the-stack",
    ),
    pytest.param(
        "ollama-template",
        _set("blockDeviceMappings", []),
        "encrypted-volumes",
        id="worker-template-without-disks",
    ),
    pytest.param("ollama-group", _plain_group, "gpu-templates-on-spot", id="worker-group-plain"),
    pytest.param(
        "tailnet-quiz-client",
        _changes(_set("scopes", ["all"]), _set("tags", [])),
        "tailscale-devices-tagged",
        id="client-with-every-scope-untagged",
    ),
    pytest.param(
        "home-tailscale",
        _without_env("TS_EXTRA_ARGS"),
        "tailscale-containers-tagged",
        id="sidecar-without-extra-args",
    ),
    pytest.param(
        "photos-server",
        _set("mounts.0.source", "photos-libary"),
        "container-volumes-declared",
        id="server-mounts-a-misspelt-volume",
    ),
]


@pytest.mark.parametrize(("name", "change", "policy"), DEV_BREAKS)
def test_breaking_one_resource_of_the_dev_stack_is_caught(name, change, policy):
    dev_up = _dev_up()
    assert name in {r.name for r in dev_up.resources}

    report = check(_broken(dev_up, name, change))

    assert {(v.policy, v.urn.rsplit("::", 1)[-1]) for v in report.violations} == {(policy, name)}


def _unknown_env(name: str) -> Callable[[Registration], None]:
    """The entry ``name`` of a container's environment not known yet, as in a real preview."""

    def change(resource: Registration) -> None:
        envs = resource.inputs["envs"]
        resource.inputs["envs"] = [Unknown() if _env_name(e) == name else e for e in envs]

    return change


def test_a_recorder_whose_key_is_not_known_yet_is_judged_by_its_dependencies():
    report = check(_broken(_dev_up(), "tequila-recorder", _unknown_env("TS_AUTHKEY")))

    assert report.violations == []
    assert report.unknown == []


def test_a_sidecar_whose_tags_are_not_known_yet_is_not_checked_rather_than_passed():
    report = check(_broken(_dev_up(), "home-tailscale", _unknown_env("TS_EXTRA_ARGS")))

    assert report.violations == []
    assert [u.policy for u in report.unknown] == ["tailscale-containers-tagged"]


@functools.cache
def _dev_up() -> Recording:
    from offline.engine import run_project
    from offline.project import read_project

    return run_project(ROOT, read_project(ROOT, "dev"), preview=False)


def test_the_types_the_plan_diff_guards_are_types_the_pack_protects():
    from offline.diff import STATEFUL_TYPES as GUARDED_BY_THE_DIFF
    from policy.invariants import STATEFUL_TYPES

    assert set(GUARDED_BY_THE_DIFF) <= set(STATEFUL_TYPES)


def test_the_plan_diff_and_the_pack_agree_on_scratch_volumes():
    from offline.diff.compare import SCRATCH_VOLUME_SUFFIXES as SCRATCH_IN_THE_DIFF
    from policy.invariants import SCRATCH_VOLUME_SUFFIXES

    assert SCRATCH_IN_THE_DIFF == SCRATCH_VOLUME_SUFFIXES
