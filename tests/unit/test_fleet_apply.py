"""`plan`, `apply -f` and `export` against a real SQLite store (the lab test pushes for real).

The nodes here (the `settings` fixture of tests/unit/conftest.py) are registered in the store
but unreachable on purpose: an apply must still change the store exactly as planned, keep the
nodes pending for the next run, and exit 1 naming them.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.models import Configuration, DisabledReason
from orchestrator.core.schedule import cron_step, crontab, systemd_units
from orchestrator.service import fleet_file
from orchestrator.service.context import open_fleet
from orchestrator.service.push import pending_nodes
from orchestrator.settings import Settings

SITE = base64.b64encode(b"s" * 32).decode()
OPS = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
CUSTOMER = base64.b64encode(b"c" * 32).decode()


FILE = f"""\
version: 1
plans:
  site: {{quota: 1TiB, price: "0"}}
  pass30: {{quota: 10GiB, validity_days: 30, valid_until: 2027-06-30}}
policies:
  keys: {{grace: 1d, peer_max_age_days: 90}}
  usage: {{warn_percent: 90}}
  sync_interval: 2m
accounts:
  ops: {{device_id: noc-laptop, contact: noc@example.invalid}}
configurations:
  - {{name: site-berlin, account: ops, nodes: [node1, node2], public_key: "{SITE}", plan: site}}
  - {{name: ops-access, account: ops, nodes: [node2], public_key: "{OPS}", quota: 50GiB}}
"""


NODES = "nodes:\n"


def write(tmp_path: Path, text: str, name: str = "fleet.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(*argv: str) -> int:
    return main(list(argv))


def test_plan_exits_2_apply_makes_exactly_that_plan_exits_0(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, FILE)
    assert run("plan", "-f", str(path)) == 2
    shown = capsys.readouterr().out
    assert "+ configuration site-berlin (add)" in shown and "9 change(s)" in shown

    # The nodes cannot be reached: the store takes the change, the nodes stay pending.
    assert run("apply", "-f", str(path), "--yes") == 1
    assert "push failed on node1" in capsys.readouterr().err
    with open_fleet(settings, write=True) as fleet:
        site = fleet.store.configuration("site-berlin")
        assert site.nodes == ("node1", "node2") and site.plan == "site"
        assert site.psk_ref is None  # a static configuration brings its key, no PSK
        assert fleet.store.account("ops").password_hash == "!"
        (pass30,) = [p for p in fleet.store.plans() if p.name == "pass30"]
        assert (pass30.validity_days, str(pass30.valid_until)) == (30, "2027-06-30")
        assert fleet.store.configuration("ops-access").quota_bytes == 50 * 2**30
        assert pending_nodes(fleet) == ["node1", "node2"]
        # The file's policies now win over the settings file, for every command.
        assert fleet.settings.keys.grace == "1d"
        assert fleet.settings.keys.peer_max_age_days == 90
        assert fleet.settings.usage.warn_percent == 90
        assert fleet.settings.usage.sync_interval == "2m"

    assert run("plan", "-f", str(path)) == 0
    assert "no changes" in capsys.readouterr().out


def test_export_then_plan_shows_no_changes_and_leaves_customers_out(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("apply", "-f", str(write(tmp_path, FILE)), "--yes")
    with open_fleet(settings, write=True) as fleet:
        from orchestrator.service import peers

        peers.add_account(fleet, "carol", "correct horse", "carol-phone", "+15550100")
        fleet.store.add_configuration(
            Configuration("carol-1", "carol", CUSTOMER, None, {"node1": ip("198.19.1.50")})
        )
    capsys.readouterr()
    exported = tmp_path / "exported.yml"
    assert run("export", "-o", str(exported)) == 0
    text = exported.read_text()
    assert oct(exported.stat().st_mode & 0o777) == "0o600"
    assert "carol" not in text and "+15550100" not in text and CUSTOMER not in text
    assert "quota: 1TiB" in text and "implementation: userspace" in text
    assert run("plan", "-f", str(exported)) == 0, capsys.readouterr()


def ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def test_changes_removals_and_a_key_swap_keep_usage_with_the_configuration(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("apply", "-f", str(write(tmp_path, FILE)), "--yes")
    with open_fleet(settings, write=True) as fleet:
        berlin = fleet.store.configuration("site-berlin")
    changed = (
        FILE.replace(f'public_key: "{SITE}", plan: site', f'public_key: "{NEW}", plan: site')
        .replace("nodes: [node1, node2]", "nodes: [node2]")
        .replace("device_id: noc-laptop", "device_id: noc-desktop")
        .replace(
            f'  - {{name: ops-access, account: ops, nodes: [node2], public_key: "{OPS}", '
            "quota: 50GiB}\n",
            f'  - {{name: ops-access, account: ops, nodes: [node2], public_key: "{OPS}", '
            "quota: 60GiB, enabled: false}\n",
        )
    )
    path = write(tmp_path, changed, "changed.yml")
    capsys.readouterr()
    assert run("plan", "-f", str(path), "--json") == 2
    plan = json.loads(capsys.readouterr().out)
    assert [(c["kind"], c["action"], c["subject"]) for c in plan["changes"]] == [
        ("account", "change", "ops"),
        ("configuration", "change", "site-berlin"),
        ("configuration", "change", "ops-access"),
    ]
    run("apply", "-f", str(path), "--yes")
    with open_fleet(settings, write=True) as fleet:
        after = fleet.store.configuration("site-berlin")
        # Same configuration, same address on the node it kept; the replaced key's grace
        # ended at once: its removal is pending on its nodes (this push reached neither) and
        # its last bytes still bill the configuration.
        assert after.public_key == NEW and after.previous_public_key is None
        assert fleet.store.pending_removals() == {"node1": {NEW, SITE}, "node2": {SITE, OPS}}
        ledger = fleet.store.sync_ledger()
        assert ledger.names[ledger.owners[SITE]] == "site-berlin"
        assert after.addresses == {"node2": berlin.addresses["node2"]}
        access = fleet.store.configuration("ops-access")
        assert not access.enabled and access.disabled_reason == DisabledReason.OPERATOR
        assert access.quota_bytes == 60 * 2**30
        assert fleet.store.account("ops").device_id == "noc-desktop"

    # Dropping the account from the file removes what the file made, and only that.
    emptied = 'version: 1\nplans:\n  site: {quota: 1TiB, price: "0"}\n'
    capsys.readouterr()
    assert run("plan", "-f", str(write(tmp_path, emptied, "empty.yml"))) == 2
    shown = capsys.readouterr().out
    assert "- account ops (remove)" in shown and "- configuration ops-access (remove)" in shown
    assert "- policy keys.grace (remove)" in shown
    run("apply", "-f", str(tmp_path / "empty.yml"), "--yes")
    with open_fleet(settings, write=True) as fleet:
        assert fleet.store.accounts() == []
        assert fleet.settings.keys.grace == "7d"  # back to the settings file's


def test_a_saved_plan_applies_only_while_nothing_moved(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, FILE)
    saved = tmp_path / "plan.json"
    assert run("plan", "-f", str(path), "--out", str(saved)) == 2
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    with open_fleet(settings, write=True) as fleet:
        from orchestrator.core.models import Plan

        fleet.store.upsert_plan(Plan("sneaked-in", 1))
    capsys.readouterr()
    assert run("apply", "--plan-file", str(saved)) == 1
    assert "the fleet changed since the plan was saved" in capsys.readouterr().err
    with open_fleet(settings, write=True) as fleet:
        assert fleet.store.accounts() == []  # nothing applied

    assert run("plan", "-f", str(path), "--out", str(saved)) == 2
    path.write_text(FILE.replace("1TiB", "2TiB"))
    capsys.readouterr()
    assert run("apply", "--plan-file", str(saved)) == 1
    assert "changed since the plan was saved" in capsys.readouterr().err


def test_apply_never_prompts_without_a_terminal(settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "apply", "-f", str(path)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "WGFLEET_CONFIG": os.environ["WGFLEET_CONFIG"]},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "wgfleet: error: apply: no terminal to ask on; pass --yes, or apply a saved --plan-file"
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda f: f.replace(
                "accounts:", NODES + "  node1: {address: 198.18.9.9}\n  node2: {}\naccounts:"
            ),
            "nodes.node1.address: 198.18.9.9 but the inventory reaches it at 127.0.0.1",
        ),
        (
            lambda f: f.replace(
                "accounts:", NODES + "  node1: {}\n  node2: {}\n  node9: {port: 51820}\naccounts:"
            ),
            "nodes.node9: not in the inventory",
        ),
        (
            lambda f: f.replace("nodes: [node2]", "nodes: [node7]"),
            "configurations.ops-access.nodes: node7 is neither in the inventory nor in the store",
        ),
        (
            lambda f: f.replace(
                "  sync_interval: 2m", "  sync_interval: 2m\n  privacy: {allow_contact: false}"
            ),
            "accounts.ops.contact: the privacy profile keeps no contact numbers",
        ),
    ],
)
def test_plan_problems_are_errors_exit_1_and_apply_touches_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, problem: str
) -> None:
    path = write(tmp_path, edit(FILE))
    assert run("plan", "-f", str(path)) == 1
    assert f"wgfleet: error: {problem}" in capsys.readouterr().err
    assert run("apply", "-f", str(path), "--yes") == 1
    with open_fleet(settings, write=True) as fleet:
        assert fleet.store.accounts() == [] and fleet.store.policies() == {}


def test_a_tunnel_network_cannot_move_under_configurations(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("apply", "-f", str(write(tmp_path, FILE)), "--yes")
    moved = FILE.replace(
        "accounts:", NODES + "  node1: {}\n  node2: {tunnel_network: 198.19.9.0/24}\naccounts:"
    )
    capsys.readouterr()
    assert run("plan", "-f", str(write(tmp_path, moved, "moved.yml"))) == 1
    assert (
        "nodes.node2.tunnel_network: 198.19.9.0/24 would strand the addresses of 2 "
        "configuration(s) in 198.19.2.0/24" in capsys.readouterr().err
    )


def test_an_invalid_file_is_exit_1_for_plan_and_2_for_apply(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "version: 1\nplans:\n  basic: {quota: lots}\n")
    assert run("plan", "-f", str(path)) == 1  # 2 would read as "changes pending"
    assert "fleet.yml:3: plans.basic.quota: 'lots'" in capsys.readouterr().err
    assert run("apply", "-f", str(path), "--yes") == 2


@pytest.mark.parametrize(
    ("interval", "fields"),
    [
        ("1m", "* * * * *"),
        ("5m", "*/5 * * * *"),
        ("90s", "* * * * *"),
        ("1h", "0 * * * *"),
        ("6h", "0 */6 * * *"),
    ],
)
def test_cron_steps(interval: str, fields: str) -> None:
    assert cron_step(interval) == fields


def test_the_crontab_and_timers_run_sync_and_audit_quietly(tmp_path: Path) -> None:
    table = crontab("/usr/bin/wgfleet --config /etc/wgfleet.yml", "5m")
    assert "*/5 * * * * root /usr/bin/wgfleet --config /etc/wgfleet.yml sync --quiet\n" in table
    assert "audit --quiet" in table
    units = systemd_units("/bin/true", "2m")
    assert "OnUnitActiveSec=120s" in units["wgfleet-sync.timer"]
    assert "SuccessExitStatus=3" in units["wgfleet-sync.service"]
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    for name, body in units.items():
        (tmp_path / name).write_text(body)
    verified = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in sorted(units))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr


def test_the_python_api_runs_a_plan(settings: Settings, tmp_path: Path) -> None:
    from orchestrator import api

    path = write(tmp_path, FILE)
    with api.open_fleet(api.load_settings()) as fleet:
        plan = api.plan(fleet, path)
    assert len(plan.pending) == 9 and not plan.problems
    assert plan.as_dict()["format"] == fleet_file.PLAN_FORMAT


def test_a_fleet_file_sets_the_ipv6_prefix_and_the_clients_dns(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "version: 1\nipv6: {prefix: 'fd12:3456:789a::/48'}\n"
        "policies:\n  dns: {servers: ['198.18.0.53', '2001:2::53']}\n",
    )
    assert run("plan", "-f", str(path)) == 2
    shown = capsys.readouterr().out
    assert "~ ipv6 prefix (change)" in shown and "+ policy dns.servers (add)" in shown
    run("apply", "-f", str(path), "--yes")
    with open_fleet(settings, write=True) as fleet:
        assert str(fleet.store.ipv6_prefix()) == "fd12:3456:789a::/48"
        assert fleet.settings.network.dns_servers == ("198.18.0.53", "2001:2::53")
        # Once a node has its /64 (its first deploy), the prefix is fixed.
        fleet.store.node_networks6(["node1"])
    capsys.readouterr()
    assert run("plan", "-f", str(path)) == 0
    moved = write(tmp_path, "version: 1\nipv6: {prefix: 'fd99::/48'}\n", "moved.yml")
    assert run("plan", "-f", str(moved)) == 1
    refused = capsys.readouterr()
    assert "ipv6.prefix: fd99::/48 would move the IPv6 addresses of 1 node(s)" in (
        refused.out + refused.err
    )
    exported = tmp_path / "exported.yml"
    assert run("export", "-o", str(exported)) == 0
    assert "prefix: fd12:3456:789a::/48" in exported.read_text()


def test_peers_add_split_tunnel_and_peers_show_lines(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_fleet(settings, write=True) as fleet:
        from orchestrator.service import peers

        peers.add_account(fleet, "dora", "correct horse", "dora-phone")
        fleet.store.node_networks6(["node1"])  # as node1's deploy would
        network6 = fleet.store.node("node1").tunnel_network6
    assert network6 is not None
    bad = ["peers", "add", "dora", "--nodes", "node1", "--split-tunnel", "198.18.0.1/16"]
    assert run(*bad, "--out", str(tmp_path / "x.conf")) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "--split-tunnel '198.18.0.1/16': 198.18.0.1/16 has host bits" in err
    )
    with open_fleet(settings, write=True) as fleet:
        assert fleet.store.configurations(account="dora") == []  # nothing half-made
    out = tmp_path / "dora.conf"
    good = [
        "peers",
        "add",
        "dora",
        "--nodes",
        "node1",
        "--split-tunnel",
        "2001:2::/48,198.18.0.0/16",
    ]
    run(*good, "--out", str(out))  # exit 1: node1 cannot be reached for the push
    text = out.read_text()
    assert f"Address = 198.19.1.2/32, {network6[2]}/128\n" in text
    assert f"DNS = 198.19.1.1, {network6[1]}\n" in text
    assert "AllowedIPs = 198.18.0.0/16, 2001:2::/48\n" in text
    capsys.readouterr()
    assert run("--json", "peers", "show", "dora-1") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["split_tunnel"] == "198.18.0.0/16,2001:2::/48"
    assert shown["client_lines"] == {
        "node1": [
            f"Address = 198.19.1.2/32, {network6[2]}/128",
            f"DNS = 198.19.1.1, {network6[1]}",
            "AllowedIPs = 198.18.0.0/16, 2001:2::/48",
        ]
    }
    assert run("peers", "show", "dora-1") == 0
    plain = capsys.readouterr().out
    assert "# client config lines on node1" in plain
    assert "AllowedIPs = 198.18.0.0/16, 2001:2::/48" in plain


def test_an_applied_dns_section_is_the_fleets_resolver_upstream_and_exports_back(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.service.deploy import resolver_upstream

    with open_fleet(settings) as fleet:
        assert resolver_upstream(fleet) == ((), False)
    # What apply stores for `dns: {forwarders: [...], forward_tls: true}` (the apply itself
    # then deploys every node, which the unreachable nodes here cannot take).
    with open_fleet(settings, write=True) as fleet:
        fleet.store.replace_policies(
            {
                "dns.forwarders": json.dumps(["198.18.0.53@853#dns.example.net"]),
                "dns.forward_tls": "true",
            }
        )
    with open_fleet(settings) as fleet:
        assert resolver_upstream(fleet) == (("198.18.0.53@853#dns.example.net",), True)
    exported = tmp_path / "exported.yml"
    assert run("export", "-o", str(exported)) == 0
    assert "dns:\n  forward_tls: true\n  forwarders:\n  - 198.18.0.53@853#dns.example.net\n" in (
        exported.read_text()
    )
    capsys.readouterr()
    assert run("plan", "-f", str(exported)) == 0, capsys.readouterr()
    # The same file without the section: the plan removes both (recursion again).
    without = exported.read_text().replace(
        "dns:\n  forward_tls: true\n  forwarders:\n  - 198.18.0.53@853#dns.example.net\n", ""
    )
    assert run("plan", "-f", str(write(tmp_path, without, "without.yml"))) == 2
