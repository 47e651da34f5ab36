"""An inventory is outside input too: host names, the variables wgfleet reads and the static
peers that reach a node's shell line are checked on the controller before a deploy creates
anything, and refused in one line naming the file, line, field and value (exit 2). The role
asserts the same rules on the node (a real ansible-playbook run, local connection)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core.input_limits import INVENTORY_MAX_BYTES
from orchestrator.core.inventory_rules import host_problems, static_peers_problems
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.service import deploy as deploy_service
from orchestrator.settings import settings_from_mapping
from tests.unit.test_yaml_input import BOMB

KEY = "x" * 42 + "A="
HEAD = "all:\n  children:\n    wgfleet_nodes:\n      hosts:\n"


def host(line: str) -> str:
    return HEAD + "        " + line + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (host("all: {ansible_host: 198.18.0.10}"), ":5: all: 'all': 'all' is Ansible's own name"),
        (host("'n1;reboot': {}"), ":5: n1;reboot: 'n1;reboot': a node name is 1-63"),
        (host('"n\\u202e1": {}'), ":5: n\\u202e1: 'n\\u202e1': a node name is"),
        (host("n1: {ansible_host: '198.18.0.10 -oProxyCommand=x'}"), ":5: n1.ansible_host:"),
        (host("n1: {wgfleet_tunnel_network: 198.19.1.1/24}"), ":5: n1.wgfleet_tunnel_network:"),
        (host("n1: {wireguard_port: 70000}"), ":5: n1.wireguard_port: 70000: a port, 1..65535"),
        (host("n1: {wireguard_interface: '-wg0'}"), ":5: n1.wireguard_interface: '-wg0'"),
        (
            host(
                f'n1: {{wireguard_peers: [{{public_key: "{KEY}", allowed_ips: 198.19.1.2/32, '
                'preshared_key_file: "/tmp/k; touch /tmp/pwned"}]}'
            ),
            ":5: n1.wireguard_peers[0].preshared_key_file: '/tmp/k; touch /tmp/pwned': an absolute",
        ),
        (
            host(
                f'n1: {{wireguard_peers: [{{public_key: "{KEY}", '
                'allowed_ips: "198.19.1.2/32\\nPostUp = touch /tmp/pwned"}]}'
            ),
            ":5: n1.wireguard_peers[0].allowed_ips: '198.19.1.2/32\\nPostUp = touch /tmp/pwned'",
        ),
        (
            HEAD + "        n1: {}\n      vars:\n        wgfleet_static_peers:\n"
            "          n1: [{public_key: nope, allowed_ips: 198.19.1.2/32}]\n",
            ":7: n1.wgfleet_static_peers.n1[0].public_key: 'nope': not a WireGuard public key",
        ),
        (BOMB, ":7: (file): '': its aliases expand to more than 2000000 values"),
        ("all:\n  children: [1, 2]\n", ":2: all.children: [1, 2]: expected a mapping"),
        (HEAD + "        n1: {}\n        n1: {}\n", ":6: (file): 'n1': given twice"),
    ],
    ids=lambda value: value[-40:] if isinstance(value, str) else None,
)
def test_hostile_inventories_are_refused_naming_line_field_and_value(
    tmp_path: Path, text: str, expected: str
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(text)
    settings = settings_from_mapping(
        {"data_dir": str(tmp_path / "data"), "inventory": str(inventory)}, "s.yml", tmp_path
    )
    with pytest.raises(ConfigError) as raised:
        deploy_service.node_host_vars(settings)
    message = str(raised.value)
    assert message.startswith(f"{inventory}{expected}"), message
    assert "\n" not in message and raised.value.exit_code == ExitCode.USAGE


def test_an_oversize_inventory_is_refused_by_its_size(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    with inventory.open("wb") as handle:
        handle.truncate(INVENTORY_MAX_BYTES + 1)
    settings = settings_from_mapping({"inventory": str(inventory)}, "s.yml", tmp_path)
    with pytest.raises(ConfigError, match="larger than 16 MiB, the bound for an inventory"):
        deploy_service.node_host_vars(settings)


def test_an_ordinary_inventory_passes_with_group_vars_and_aliases(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        HEAD + "        fra1.example: &node {ansible_host: fra1.example.org, ansible_port: '22',"
        " wgfleet_tunnel_network: 198.19.1.0/24, wgfleet_tunnel_address: 198.19.1.1}\n"
        "        fra2: {<<: *node, ansible_host: '2001:2::10', wireguard_port: 51900}\n"
        "      vars:\n"
        f'        wireguard_peers: [{{public_key: "{KEY}", allowed_ips: [10.1.0.0/24, "fd00::/64"],'
        " preshared_key_file: /etc/wireguard/site.psk}]\n"
    )
    settings = settings_from_mapping({"inventory": str(inventory)}, "s.yml", tmp_path)
    hosts = deploy_service.node_host_vars(settings)
    assert sorted(hosts) == ["fra1.example", "fra2"]
    assert hosts["fra2"]["wireguard_port"] == 51900


def test_rules_name_every_problem() -> None:
    problems = host_problems(
        "n1",
        {
            "wireguard_peers": [
                {"public_key": KEY, "allowed_ips": ["198.19.1.2/32", 7], "extra": 1},
                "not a peer",
                {
                    "public_key": KEY,
                    "allowed_ips": "198.19.1.2/32",
                    "preshared_key_file": "/a/../b",
                },
            ]
        },
    )
    assert [(p.field, p.problem.split(" (")[0]) for p in problems] == [
        ("n1.wireguard_peers[0].extra", "unknown field"),
        ("n1.wireguard_peers[0].allowed_ips", "a network such as 198.19.1.2/32"),
        ("n1.wireguard_peers[1]", "a peer: public_key, allowed_ips[, preshared_key_file]"),
        (
            "n1.wireguard_peers[2].preshared_key_file",
            "an absolute path of letters, digits and . _ / -",
        ),
    ]
    assert {p.variable for p in problems} == {"wireguard_peers"}
    assert static_peers_problems({"bad name": []})[0].field == "wgfleet_static_peers.bad name"


def test_a_deploy_refuses_hostile_static_peers_before_creating_anything(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(host("n1: {ansible_host: 198.18.0.10}"))
    data = tmp_path / "data"
    settings = settings_from_mapping(
        {"data_dir": str(data), "inventory": str(inventory)}, "s.yml", tmp_path
    )
    peers = {
        "n1": [{"public_key": KEY, "allowed_ips": "198.19.1.2/32", "preshared_key_file": "$(id)"}]
    }
    from orchestrator.service.context import open_fleet

    with pytest.raises(ConfigError) as raised, open_fleet(settings, write=True) as fleet:
        deploy_service.deploy(fleet, extravars={"wgfleet_static_peers": peers})
    assert str(raised.value).startswith(
        "extra vars: wgfleet_static_peers.n1[0].preshared_key_file: '$(id)': an absolute path"
    )
    # Only the session's own files exist (the fleet secret a first writing session makes):
    # no SSH key made, no Ansible run started.
    assert sorted(p.name for p in data.iterdir()) == ["fleet-secret", "fleet.lock", "wgfleet.db"]


def test_the_deploy_command_refuses_a_hostile_inventory_in_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(host("'n1 all': {ansible_host: 198.18.0.10}"))
    data = tmp_path / "data"
    config = tmp_path / "settings.yml"
    config.write_text(f"data_dir: {data}\ninventory: {inventory}\n")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "deploy"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.splitlines() == [
        f"wgfleet: error: {inventory}:5: n1 all: 'n1 all': a node name is 1-63 lowercase "
        "letters, digits, '.', '_' or '-', starting with a letter or digit, and not all, "
        "ungrouped or localhost"
    ]
    assert not data.exists()


ROLE_CASES = {
    "good": {
        "wireguard_peers": [
            {"public_key": KEY, "allowed_ips": "198.19.1.2/32", "preshared_key_file": "/etc/p.psk"},
            {"public_key": KEY, "allowed_ips": ["10.0.0.0/24", "fd00::/64"]},
        ]
    },
    "no_peers": {"wireguard_peers": []},
    "psk_shell": {
        "wireguard_peers": [
            {"public_key": KEY, "allowed_ips": "198.19.1.2/32", "preshared_key_file": "/a; id"}
        ]
    },
    "psk_newline": {
        "wireguard_peers": [
            {"public_key": KEY, "allowed_ips": "198.19.1.2/32", "preshared_key_file": "/a\n"}
        ]
    },
    "psk_dotdot": {
        "wireguard_peers": [
            {"public_key": KEY, "allowed_ips": "198.19.1.2/32", "preshared_key_file": "/a/../b"}
        ]
    },
    "ips_inject": {
        "wireguard_peers": [{"public_key": KEY, "allowed_ips": "198.19.1.2/32\nPostUp = id"}]
    },
    "ips_list_inject": {
        "wireguard_peers": [{"public_key": KEY, "allowed_ips": ["198.19.1.2/32", "$(id)/32"]}]
    },
    "key_newline": {"wireguard_peers": [{"public_key": KEY + "\n", "allowed_ips": "1.2.3.4/32"}]},
    "extra_field": {
        "wireguard_peers": [
            {"public_key": KEY, "allowed_ips": "198.19.1.2/32", "endpoint": "192.0.2.1:1"}
        ]
    },
    "interface_dash": {"wireguard_interface": "-wg0", "wireguard_peers": []},
}


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "ansible-playbook").exists()
    and shutil.which("ansible-playbook") is None,
    reason="needs ansible-playbook",
)
def test_the_role_asserts_the_same_rules_on_the_node(tmp_path: Path) -> None:
    import json

    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "wireguard_interface": "wg0",
            },
            "hosts": ROLE_CASES,
        }
    }
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    role = Path(__file__).resolve().parents[2] / "roles" / "wireguard_node"
    (tmp_path / "play.yml").write_text(
        "- name: Static peer checks\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: The role's checks\n      ansible.builtin.import_role:\n"
        f"        name: {role}\n        tasks_from: static_peers\n"
    )
    binary = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run(
        [str(binary if binary.exists() else "ansible-playbook"), "-i", "hosts.json", "play.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        # Ansible refuses a non-blocking stdin, which a pytest-xdist worker's is.
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )
    assert "PLAY RECAP" in result.stdout, result.stdout + result.stderr
    recap = result.stdout.split("PLAY RECAP", 1)[1]
    failed = {
        line.split()[0]
        for line in recap.splitlines()
        if "failed=" in line and "failed=0" not in line
    }
    assert failed == set(ROLE_CASES) - {"good", "no_peers"}, result.stdout[-3000:]
