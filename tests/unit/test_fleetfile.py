"""The fleet file: a good file parses to plain values; each broken file gets exactly the errors
expected (file, line, field, value), all at once; the JSON Schema agrees with the parser."""

from __future__ import annotations

import json
import textwrap

import pytest

from orchestrator.core.fleetfile import (
    FleetFileInvalid,
    json_schema,
    parse_fleet_file,
)
from orchestrator.core.units import parse_size

KEY = "x" * 42 + "A="
OTHER = "y" * 42 + "A="

GOOD = f"""\
version: 1
nodes:
  node1: {{address: 198.18.0.10, tunnel_network: 198.19.1.0/24, port: 51820, implementation: userspace}}
  node2: {{}}
plans:
  basic: {{quota: 10GiB, reset: monthly, anchor_day: 5, price: "4.99"}}
  big: {{quota: 1TB}}
accounts:
  ops: {{device_id: ops-laptop}}
configurations:
  - name: site-berlin
    account: ops
    nodes: [node2, node1]
    public_key: "{KEY}"
  - name: ops-1
    account: ops
    nodes: [node1]
    public_key: "{OTHER}"
    plan: basic
    enabled: false
policies:
  keys: {{node_max_age_days: 90, grace: 2d}}
  usage: {{retention_days: 400}}
  sync_interval: 60s
"""


def test_a_good_file_parses_to_plain_values() -> None:
    fleet = parse_fleet_file(GOOD, "fleet.yml")
    assert [n.name for n in fleet.nodes] == ["node1", "node2"]
    assert fleet.nodes[0].port == 51820 and fleet.nodes[0].implementation == "userspace"
    assert [(p.name, p.quota_bytes, p.reset, p.anchor_day) for p in fleet.plans] == [
        ("basic", 10 * 2**30, "monthly", 5),
        ("big", 10**12, "never", 1),
    ]
    site, ops = fleet.configurations
    assert (site.nodes, site.quota_bytes, site.enabled) == (("node1", "node2"), None, True)
    assert (ops.plan, ops.enabled) == ("basic", False)
    assert fleet.policies.keys == {"node_max_age_days": 90, "grace": "2d"}
    assert fleet.policies.sync_interval == "60s"


BROKEN = [
    ("", ["fleet.yml:1: version: None: missing"]),
    ("version: 2\n", ["fleet.yml:1: version: 2: must be 1"]),
    (
        "version: 1\nnodse: {}\n",
        [
            "fleet.yml:2: nodse: 'nodse': unknown field (known: accounts, configurations, dns, inventory, ipv6, nodes, plans, policies, version)"
        ],
    ),
    ("version: 1\nversion: 1\n", ["fleet.yml:2: version: 'version': given twice"]),
    ("version: 1\nnodes: [a]\n", ["fleet.yml:2: nodes: ['a']: expected a mapping"]),
    (
        "version: 1\nnodes:\n  Node1: {}\n",
        [
            "fleet.yml:3: nodes.Node1: 'Node1': a node name is 1-63 lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit, and not all, ungrouped or localhost"
        ],
    ),
    (
        "version: 1\nnodes:\n  n1: {port: 70000}\n",
        ["fleet.yml:3: nodes.n1.port: 70000: at most 65535"],
    ),
    (
        "version: 1\nnodes:\n  n1:\n    address: 10.0.0.300\n",
        ["fleet.yml:4: nodes.n1.address: '10.0.0.300': expected an IPv4 address"],
    ),
    (
        "version: 1\nnodes:\n  n1:\n    tunnel_network: 198.19.1.1/24\n",
        ["fleet.yml:4: nodes.n1.tunnel_network: '198.19.1.1/24': 198.19.1.1/24 has host bits set"],
    ),
    (
        "version: 1\nnodes:\n  n1: {implementation: bpf}\n",
        ["fleet.yml:3: nodes.n1.implementation: 'bpf': one of kernel, userspace"],
    ),
    (
        "version: 1\nplans:\n  basic: {reset: monthly}\n",
        ["fleet.yml:3: plans.basic.quota: None: missing"],
    ),
    (
        "version: 1\nplans:\n  basic:\n    quota: lots\n",
        [
            "fleet.yml:4: plans.basic.quota: 'lots': a size such as 10GiB, 500MB or a number of bytes"
        ],
    ),
    (
        "version: 1\nplans:\n  basic:\n    quota: 1GiB\n    anchor_day: 31\n",
        ["fleet.yml:5: plans.basic.anchor_day: 31: at most 28"],
    ),
    (
        "version: 1\nplans:\n  basic:\n    quota: 1GiB\n    price: 4,99\n",
        ["fleet.yml:5: plans.basic.price: '4,99': a decimal amount such as 4.99"],
    ),
    ("version: 1\naccounts:\n  ops: {}\n", ["fleet.yml:3: accounts.ops.device_id: None: missing"]),
    ("version: 1\nconfigurations: {}\n", ["fleet.yml:2: configurations: {}: expected a list"]),
    (
        "version: 1\naccounts:\n  ops: {device_id: d}\nconfigurations:\n  - name: a\n    account: ops\n    nodes: []\n    public_key: nope\n",
        [
            "fleet.yml:7: configurations.a.nodes: []: a list of node names",
            "fleet.yml:8: configurations.a.public_key: 'nope': not a WireGuard public key",
        ],
    ),
    (
        f"version: 1\nconfigurations:\n  - name: a\n    account: ghost\n    nodes: [n1]\n    public_key: {KEY}\n    plan: gold\n",
        [
            "fleet.yml:4: configurations.a.account: 'ghost': no such account in this file",
            "fleet.yml:7: configurations.a.plan: 'gold': no such plan in this file",
        ],
    ),
    (
        f"version: 1\naccounts:\n  ops: {{device_id: d}}\nconfigurations:\n  - {{name: a, account: ops, nodes: [n1], public_key: {KEY}}}\n  - {{name: a, account: ops, nodes: [n1], public_key: {KEY}}}\n",
        [
            "fleet.yml:6: configurations.a.name: 'a': given twice",
            f"fleet.yml:6: configurations.a.public_key: '{KEY}': used by another configuration",
        ],
    ),
    (
        f"version: 1\nnodes:\n  n1: {{}}\naccounts:\n  ops: {{device_id: d}}\nconfigurations:\n  - {{name: a, account: ops, nodes: [n2], public_key: {KEY}}}\n",
        ["fleet.yml:7: configurations.a.nodes: 'n2': no such node in this file"],
    ),
    (
        "version: 1\npolicies:\n  keys: {grace: 1w}\n",
        ["fleet.yml:3: policies.keys.grace: '1w': a duration such as 30s, 15m, 12h or 7d"],
    ),
    (
        "version: 1\npolicies:\n  usage: {retention_days: 7}\n",
        ["fleet.yml:3: policies.usage.retention_days: 7: at least 31"],
    ),
    (
        "version: 1\nnodes: {a: {port: 0}\n",
        ["fleet.yml:3: (file): '': not YAML: did not find expected ',' or '}'"],
    ),
]


@pytest.mark.parametrize(("text", "errors"), BROKEN, ids=[str(i) for i in range(len(BROKEN))])
def test_broken_files_get_exactly_the_expected_errors(text: str, errors: list[str]) -> None:
    with pytest.raises(FleetFileInvalid) as raised:
        parse_fleet_file(text, "fleet.yml")
    assert [str(e) for e in raised.value.errors] == errors


def test_every_error_is_reported_at_once() -> None:
    text = textwrap.dedent("""\
        version: 1
        nodes:
          n1: {port: 0}
        plans:
          p: {quota: -1}
        policies:
          sync_interval: soon
        """)
    with pytest.raises(FleetFileInvalid) as raised:
        parse_fleet_file(text, "f.yml")
    assert [e.line for e in raised.value.errors] == [3, 5, 7]


@pytest.mark.parametrize(
    ("text", "size"), [(0, 0), ("512", 512), ("10GiB", 10 * 2**30), ("5 MB", 5 * 10**6)]
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_the_schema_is_json_and_describes_every_section() -> None:
    schema = json.loads(json.dumps(json_schema()))
    assert schema["required"] == ["version"]
    assert set(schema["properties"]) == {
        "version",
        "inventory",
        "nodes",
        "plans",
        "accounts",
        "configurations",
        "policies",
        "ipv6",
        "dns",
    }
    item = schema["properties"]["configurations"]["items"]
    assert item["required"] == ["name", "account", "nodes", "public_key"]
    assert item["additionalProperties"] is False


def test_validate_names_every_error_and_exits_2(tmp_path, capsys) -> None:
    from orchestrator.cli import main

    broken = tmp_path / "fleet.yml"
    broken.write_text("version: 1\nnodes:\n  n1: {port: 0}\nplans:\n  p: {quota: x}\n")
    assert main(["validate", "-f", str(broken)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"wgfleet: error: {broken}:3: nodes.n1.port: 0: at least 1",
        f"wgfleet: error: {broken}:5: plans.p.quota: 'x': a size such as 10GiB, 500MB or a number of bytes",
    ]
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    assert main(["--json", "validate", "-f", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["configurations"] == 2
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "wgfleet fleet file"


def test_the_dns_section_sets_the_resolver_upstream() -> None:
    from orchestrator.core.fleetplan import policy_values

    text = (
        'version: 1\ndns:\n  forwarders: ["198.18.0.53@853#dns.example.net"]\n  forward_tls: true\n'
    )
    fleet = parse_fleet_file(text, "fleet.yml")
    assert fleet.policies.dns == {
        "forwarders": ["198.18.0.53@853#dns.example.net"],
        "forward_tls": True,
    }
    assert policy_values(fleet.policies) == {
        "dns.forwarders": ["198.18.0.53@853#dns.example.net"],
        "dns.forward_tls": True,
    }


@pytest.mark.parametrize(
    ("dns", "error"),
    [
        (
            "{forwarders: [dns.example.net]}",
            "fleet.yml:2: dns.forwarders: ['dns.example.net']: 'dns.example.net': an IP address, "
            "ADDRESS@PORT or ADDRESS@PORT#TLS-NAME",
        ),
        ("{forward_tls: true}", "fleet.yml:2: dns.forward_tls: True: needs dns.forwarders"),
        ("{forward_tls: maybe}", "fleet.yml:2: dns.forward_tls: 'maybe': expected true or false"),
    ],
)
def test_a_bad_dns_section_names_line_field_and_value(dns: str, error: str) -> None:
    with pytest.raises(FleetFileInvalid) as raised:
        parse_fleet_file(f"version: 1\ndns: {dns}\n", "fleet.yml")
    assert [str(e) for e in raised.value.errors] == [error]
