"""The tailnet policy merged from the components' pieces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import json5
import pytest

from components.tailnet.policy import (
    ADMINS,
    MEMBERS,
    RECORDER_TAG,
    People,
    PolicyError,
    PolicyPiece,
    Rule,
    check_lockout,
    dump_policy,
    render_policy,
)

VPC_CIDR = "10.60.0.0/16"
SERVICE = "tag:service"
FUNNEL = "tag:funnel"
ROUTER = "tag:subnet-router"
WORKER = "tag:gpu-worker"

PEOPLE = People(admins=("zoe@example.com", "admin@example.com"), members=("family@example.com",))

PIECES = (
    PolicyPiece(owner="service photos", tags=(SERVICE,), ports=(443,)),
    PolicyPiece(owner="service mqtt", tags=(SERVICE,), ports=(1883,)),
    PolicyPiece(owner="service home", tags=(SERVICE,), ports=(443,), reaches=((SERVICE, 1883),)),
    PolicyPiece(owner="service quiz", tags=(SERVICE, FUNNEL), ports=(443,), funnel=True),
    PolicyPiece(
        owner="subnet router", tags=(ROUTER,), routes=(VPC_CIDR,), exit_node=True, ssh=True
    ),
    PolicyPiece(owner="gpu workers", tags=(WORKER,), ports=(443,), ssh=True),
)


def strings_in(value: Any) -> Iterator[str]:
    """Every string anywhere in the document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def tags_in(policy: dict[str, Any]) -> set[str]:
    """Every tag the policy names, with ``tag:x:port`` destinations read as ``tag:x``."""
    return {
        match.group(0)
        for text in strings_in(policy)
        for match in [re.match(r"tag:[a-z0-9-]+", text)]
        if match
    }


@pytest.fixture
def policy() -> dict[str, Any]:
    return render_policy(PEOPLE, PIECES)


def test_every_tag_used_anywhere_has_an_owner(policy):
    assert tags_in(policy) == set(policy["tagOwners"])
    assert all(owners == [ADMINS] for owners in policy["tagOwners"].values())


def test_the_recorder_tag_is_owned_when_a_recorder_exists():
    recorder = PolicyPiece(owner="recorder", tags=(RECORDER_TAG,))
    policy = render_policy(PEOPLE, (*PIECES, recorder))
    assert tags_in(policy) == set(policy["tagOwners"])
    (rule,) = policy["ssh"]
    assert rule["recorder"] == [RECORDER_TAG]
    assert rule["enforceRecorder"] is True


def test_advertised_routes_and_the_exit_node_are_approved_for_the_router(policy):
    assert policy["autoApprovers"] == {"routes": {VPC_CIDR: [ROUTER]}, "exitNode": [ROUTER]}


def test_every_advertised_cidr_is_approved_for_the_tags_that_advertise_it():
    pieces = (
        PolicyPiece(owner="router a", tags=(ROUTER,), routes=(VPC_CIDR, "10.61.0.0/16")),
        PolicyPiece(owner="router b", tags=("tag:lan-router",), routes=("192.168.1.0/24",)),
    )
    approvers = render_policy(PEOPLE, pieces)["autoApprovers"]
    assert approvers == {
        "routes": {
            VPC_CIDR: [ROUTER],
            "10.61.0.0/16": [ROUTER],
            "192.168.1.0/24": ["tag:lan-router"],
        }
    }


def test_no_exit_node_is_approved_unless_asked():
    router = PolicyPiece(owner="subnet router", tags=(ROUTER,), routes=(VPC_CIDR,))
    assert render_policy(PEOPLE, (router,))["autoApprovers"] == {"routes": {VPC_CIDR: [ROUTER]}}
    service = PolicyPiece(owner="service photos", tags=(SERVICE,), ports=(443,))
    assert "autoApprovers" not in render_policy(PEOPLE, (service,))


def test_funnel_is_granted_only_to_public_tags(policy):
    # The public service also carries tag:service, which private services share: only
    # tag:funnel, carried by public devices alone, may receive the funnel attribute.
    assert policy["nodeAttrs"] == [{"target": [FUNNEL], "attr": ["funnel"]}]


def test_no_funnel_attribute_without_a_public_service():
    private = [piece for piece in PIECES if not piece.funnel]
    assert "nodeAttrs" not in render_policy(PEOPLE, private)


def test_a_public_service_without_a_tag_of_its_own_is_refused():
    pieces = (
        PolicyPiece(owner="service photos", tags=(SERVICE,), ports=(443,)),
        PolicyPiece(owner="service quiz", tags=(SERVICE,), ports=(443,), funnel=True),
    )
    with pytest.raises(PolicyError, match="service quiz"):
        render_policy(PEOPLE, pieces)


def test_ssh_to_tagged_nodes_is_for_admins_in_check_mode(policy):
    assert policy["ssh"] == [
        {
            "action": "check",
            "src": [ADMINS],
            "dst": [WORKER, ROUTER],
            "users": ["autogroup:nonroot", "root"],
        }
    ]
    assert policy["sshTests"] == [
        {"src": "admin@example.com", "dst": [WORKER, ROUTER], "check": ["root"]}
    ]


def test_no_ssh_rule_when_no_piece_asks_for_ssh():
    pieces = [piece for piece in PIECES if not piece.ssh]
    policy = render_policy(PEOPLE, pieces)
    assert "ssh" not in policy
    assert "sshTests" not in policy


def test_admins_reach_everything_and_the_tests_prove_it(policy):
    assert policy["acls"][0] == {"action": "accept", "src": [ADMINS], "dst": ["*:*"]}
    assert policy["groups"][ADMINS] == ["admin@example.com", "zoe@example.com"]
    admin_tests = [test for test in policy["tests"] if test["src"] == "admin@example.com"]
    assert admin_tests == [
        {
            "src": "admin@example.com",
            "accept": [
                f"{FUNNEL}:443",
                f"{WORKER}:22",
                f"{WORKER}:443",
                f"{SERVICE}:1883",
                f"{SERVICE}:443",
                f"{ROUTER}:22",
            ],
        }
    ]


def test_members_reach_the_served_ports_and_not_the_router(policy):
    (member_acl,) = [acl for acl in policy["acls"] if acl["src"] == [MEMBERS]]
    assert member_acl["action"] == "accept"
    assert set(member_acl["dst"]) == {
        f"{FUNNEL}:443",
        f"{WORKER}:443",
        f"{SERVICE}:1883",
        f"{SERVICE}:443",
    }
    (member_test,) = [test for test in policy["tests"] if test["src"] == "family@example.com"]
    assert f"{ROUTER}:22" in member_test["deny"]
    assert set(member_test["accept"]) == set(member_acl["dst"])


def test_a_piece_reaches_only_what_it_asks_for(policy):
    assert {"action": "accept", "src": [SERVICE], "dst": [f"{SERVICE}:1883"]} in policy["acls"]
    assert len(policy["acls"]) == 3


def test_the_same_pieces_in_any_order_give_the_same_bytes():
    forward = dump_policy(render_policy(PEOPLE, PIECES))
    backward = dump_policy(render_policy(PEOPLE, tuple(reversed(PIECES))))
    shuffled = dump_policy(render_policy(PEOPLE, PIECES[3:] + PIECES[:3]))
    people = People(admins=tuple(reversed(PEOPLE.admins)), members=PEOPLE.members)
    assert forward == backward == shuffled == dump_policy(render_policy(people, PIECES))


def test_a_tailnet_without_admins_is_refused():
    with pytest.raises(PolicyError, match="admin"):
        render_policy(People(admins=()), PIECES)


def test_reaching_a_tag_no_device_carries_is_refused():
    home = PolicyPiece(owner="service home", tags=(SERVICE,), reaches=(("tag:printer", 631),))
    with pytest.raises(PolicyError, match="tag:printer"):
        render_policy(PEOPLE, (home,))


def test_the_dumped_policy_parses_as_hujson(policy):
    text = dump_policy(policy)
    assert json5.loads(text) == policy
    assert json.loads(text) == policy
    assert text.endswith("}\n")


def test_user_rules_are_merged_after_the_stacks_own():
    rule = Rule(src=("group:members",), dst=(f"{ROUTER}:22",))
    policy = render_policy(PEOPLE, PIECES, [rule])
    assert policy["acls"][-1] == {
        "action": "accept",
        "src": ["group:members"],
        "dst": [f"{ROUTER}:22"],
    }
    # The rule opens the router to members: its SSH port leaves the member deny test, which
    # keeps everything else.
    (member_test,) = [test for test in policy["tests"] if test["src"] == "family@example.com"]
    assert f"{ROUTER}:22" not in member_test["deny"]
    assert f"{WORKER}:22" in member_test["deny"]
    assert member_test["accept"]


@pytest.mark.parametrize(
    ("rule", "path", "fragment"),
    [
        pytest.param(
            Rule(src=("tag:nobody",), dst=(f"{ROUTER}:22",)),
            "rules[0].src[0]",
            "not carried by any device",
            id="unowned-tag-in-src",
        ),
        pytest.param(
            Rule(src=("group:members",), dst=("tag:nobody:443",)),
            "rules[0].dst[0]",
            "not carried by any device",
            id="unowned-tag-in-dst",
        ),
        pytest.param(
            Rule(src=("group:members",), dst=(ROUTER,)),
            "rules[0].dst[0]",
            "not host:ports",
            id="dst-without-ports",
        ),
        pytest.param(
            Rule(src=("group:friends",), dst=(f"{ROUTER}:22",)),
            "rules[0].src[0]",
            "not a group of the tailnet",
            id="unknown-group",
        ),
    ],
)
def test_a_rule_naming_what_the_stack_does_not_have_is_refused(rule, path, fragment):
    with pytest.raises(PolicyError) as raised:
        render_policy(PEOPLE, PIECES, [rule])
    assert raised.value.path == path
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("breakage", "fragment"),
    [
        pytest.param(lambda p: p["groups"].update({ADMINS: []}), "is empty", id="no-admins"),
        pytest.param(lambda p: p["acls"].pop(0), "reach every device", id="no-admin-rule"),
        pytest.param(
            lambda p: p["tagOwners"].update({ROUTER: ["group:members"]}),
            "not owned by group:admins",
            id="tag-owned-by-others",
        ),
        pytest.param(lambda p: p["tests"].pop(0), "no policy test proves", id="untested-tag"),
    ],
)
def test_a_policy_that_would_lock_the_admins_out_is_refused(policy, breakage, fragment):
    breakage(policy)
    with pytest.raises(PolicyError) as raised:
        check_lockout(policy)
    assert fragment in str(raised.value)


def test_each_kind_of_device_is_denied_something_it_did_not_declare(policy):
    sources = {test["src"] for test in policy["tests"] if "deny" in test}
    assert {SERVICE, ROUTER, WORKER} <= sources


def test_a_rule_for_a_device_moves_its_deny_test_to_a_host_the_rule_leaves_closed():
    pieces = [
        PolicyPiece(owner="service a", tags=("tag:svc-a",), ports=(443,)),
        PolicyPiece(owner="service b", tags=("tag:svc-b",), ports=(443,)),
        PolicyPiece(owner="service c", tags=("tag:svc-c",), ports=(443,)),
    ]
    rule = Rule(src=("tag:svc-a",), dst=("tag:svc-b:443",))
    policy = render_policy(PEOPLE, pieces, [rule])
    (a_test,) = [test for test in policy["tests"] if test["src"] == "tag:svc-a"]
    assert a_test["deny"] == ["tag:svc-c:443"]


def test_a_rule_from_the_tailnets_addresses_opens_ssh_for_members_too():
    rule = Rule(src=("100.64.0.0/10",), dst=(f"{SERVICE}:22",))
    policy = render_policy(PEOPLE, PIECES, [rule])
    for test in policy["tests"]:
        assert f"{SERVICE}:22" not in test.get("deny", []), test


def test_a_rule_naming_a_member_in_other_case_still_counts():
    member = sorted(PEOPLE.members)[0]
    rule = Rule(src=(member.upper(),), dst=(f"{SERVICE}:22",))
    (member_test,) = [
        test for test in render_policy(PEOPLE, PIECES, [rule])["tests"] if test["src"] == member
    ]
    assert f"{SERVICE}:22" not in member_test.get("deny", [])


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(Rule(src=("*",), dst=(f"{ROUTER}:22",)), id="everyone-to-the-router"),
        pytest.param(Rule(src=(SERVICE,), dst=("*:443",)), id="a-service-to-everything"),
        pytest.param(
            Rule(src=("autogroup:tagged",), dst=(f"{WORKER}:443",)), id="tagged-to-workers"
        ),
    ],
)
def test_wildcard_rules_never_leave_a_deny_test_they_contradict(rule):
    policy = render_policy(PEOPLE, PIECES, [rule])
    host = rule.dst[0].rpartition(":")[0]
    for test in policy["tests"]:
        applies = (
            "*" in rule.src
            or test["src"] in rule.src
            or ("autogroup:tagged" in rule.src and test["src"].startswith("tag:"))
        )
        if not applies:
            continue
        for denied in test.get("deny", []):
            assert host != "*", (test, rule)
            assert not denied.startswith(f"{host}:"), (test, rule)


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        pytest.param(Rule(src=("nas",), dst=(f"{ROUTER}:22",)), "no host names", id="bare-host"),
        pytest.param(
            Rule(src=("autogroup:bogus",), dst=(f"{ROUTER}:22",)),
            "not an autogroup",
            id="autogroup",
        ),
        pytest.param(
            Rule(src=(MEMBERS,), dst=("10.60.0.5:70000",)), "not host:ports", id="port-too-big"
        ),
        pytest.param(
            Rule(src=(MEMBERS,), dst=("10.60.0.5:443-80",)), "not host:ports", id="reversed-range"
        ),
        pytest.param(
            Rule(src=(MEMBERS,), dst=("bob@example.com:22",)), "not a destination", id="login-dst"
        ),
        pytest.param(
            Rule(src=("*",), dst=("10.60.0.5:\u00b2",)), "not host:ports", id="superscript"
        ),
        pytest.param(
            Rule(src=("*",), dst=("10.60.0.5:\uff11\uff18\uff18\uff13",)),
            "not host:ports",
            id="full-width-digits",
        ),
    ],
)
def test_rule_entries_tailscale_would_refuse_are_refused_here(rule, fragment):
    with pytest.raises(PolicyError) as raised:
        render_policy(PEOPLE, PIECES, [rule])
    assert fragment in str(raised.value)


def test_addresses_and_cidrs_are_valid_rule_entries():
    rule = Rule(src=("192.168.1.0/24", MEMBERS), dst=("10.60.0.5:22,80-90", "autogroup:internet:*"))
    assert render_policy(PEOPLE, PIECES, [rule])["acls"][-1]["src"] == ["192.168.1.0/24", MEMBERS]
