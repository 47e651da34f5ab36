"""The node roles' templates, rendered here with Jinja2 and sample variables: no lab needed.

Every ``.j2`` of the roles this module knows renders with strict undefined variables, and each
rendered file says exactly what the no-log promise needs; the shell scripts are also run here
against fake ``wg`` binaries and temporary directories.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from tests.unit.node_programs import COUNTERS, EPOCH, WG_RELOAD, load, write_config
from tests.unit.test_audit_resolver import QUIET_LOGGING

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
OUR_ROLES = (
    "wireguard_node",
    "nolog",
    "ssh_hardening",
    "counters_access",
    "peers_access",
    "resolver",
)

NODE_KEY = "ulWxkr14EKFw01lk4zyczpBfbcU2CM64DYmjsiI/yA8="
PEER_A = "x21CkFo1pEax5ixfvV6c0roMvHkrrgKxaC+71Ei7GBU="
PEER_B = "/EgmzBZvSAGJh6HOLhIaSwal/eseBK1vj+MdGgG72Ao="
COLLECTOR_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJTdTUTWHZuj/KB4o0yDx8RlfHi2TV7pPzaNSu5uGCFV "
    "wgfleet-collector"
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Debian 12's /usr/lib/tmpfiles.d/var.conf, the input of the nolog role's override.
DEBIAN_TMPFILES_VAR = """\
#  This file is part of systemd.
q /var 0755 - - -

L /var/run - - - - ../run

d /var/log 0755 - - -
f /var/log/wtmp 0664 root utmp -
f /var/log/btmp 0660 root utmp -
f /var/log/lastlog 0664 root utmp -

d /var/cache 0755 - - -
"""

# Role defaults whose value is a Jinja expression, given here as Ansible would resolve them
# for a lab node.
RESOLVED = {
    "wireguard_lab": True,
    "wireguard_ssh_port": 22,
    "nolog_lab": True,
    "counters_wireguard_interface": "wg0",
    "counters_epoch_dir": "/run/wgfleet",
    "peers_epoch_dir": "/run/wgfleet",
    "peers_wireguard_interface": "wg0",
    "peers_tunnel_networks_ipv4": ["198.19.1.0/24"],
    "peers_tunnel_addresses_ipv4": ["198.19.1.1"],
    "wireguard_alternate_port": 51821,
    "wireguard_listen_port": 51820,
    "wireguard_overlap_interface": "wg0n",
    # No IPv6 tunnel side unless a test gives one (`with_ipv6`).
    "wireguard_ipv6": False,
    "wireguard_sysctl_applied": {"net.ipv4.ip_forward": 1},
    "peers_tunnel_networks_ipv6": [],
    "peers_tunnel_addresses_ipv6": [],
    "resolver_listen_addresses_ipv4": ["198.19.1.1"],
    "resolver_listen_addresses_ipv6": [],
    "resolver_allowed_networks_ipv4": ["198.19.1.0/24"],
    "resolver_allowed_networks_ipv6": [],
    "resolver_forwarders": [],
    "resolver_forward_tls": False,
}

# What the defaults resolve to on a node with an IPv6 tunnel side (site.yml sets the two
# wgfleet_ vars from the store).
IPV6 = {
    "wgfleet_tunnel_network6": "fd00:198:19:1::/64",
    "wgfleet_tunnel_address6": "fd00:198:19:1::1",
    "wireguard_ipv6": True,
    "wireguard_sysctl_applied": {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1},
    "peers_tunnel_networks_ipv6": ["fd00:198:19:1::/64"],
    "peers_tunnel_addresses_ipv6": ["fd00:198:19:1::1"],
    "resolver_listen_addresses_ipv6": ["fd00:198:19:1::1"],
    "resolver_allowed_networks_ipv6": ["fd00:198:19:1::/64"],
}


def role_defaults() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for role in OUR_ROLES:
        merged.update(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {})
    return merged


def sample_vars(**overrides: Any) -> dict[str, Any]:
    variables = {
        **role_defaults(),
        **RESOLVED,
        "ansible_managed": "Ansible managed",
        "wgfleet_tunnel_network": "198.19.1.0/24",
        "wgfleet_tunnel_address": "198.19.1.1",
        "wgfleet_lab": True,
        "wireguard_implementation": "userspace",
        "wireguard_peers": [
            {"public_key": PEER_A, "allowed_ips": "198.19.1.2/32"},
            {
                "public_key": PEER_B,
                "allowed_ips": ["198.19.1.3/32", "198.19.1.4/32"],
                "preshared_key_file": "/etc/wireguard/psk/b.psk",
            },
        ],
        "counters_collector_public_key": COLLECTOR_KEY + "\n",
        "peers_push_public_key": COLLECTOR_KEY.replace("collector", "push") + "\n",
        "nolog_tmpfiles_var_lines": DEBIAN_TMPFILES_VAR.splitlines(),
    }
    variables.update(overrides)
    return variables


def environment(role: str) -> jinja2.Environment:
    """Close to Ansible's template engine: trim_blocks, kept trailing newline, strict."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLES / role / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.tests["match"] = lambda value, pattern: re.match(pattern, str(value)) is not None
    env.tests["search"] = lambda value, pattern: re.search(pattern, str(value)) is not None
    env.filters["bool"] = ansible_bool
    return env


def ansible_bool(value: object) -> bool:
    """Ansible's ``bool`` filter: a boolean, or the words it reads as one."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


def render(role: str, template: str, **overrides: Any) -> str:
    return environment(role).get_template(template).render(sample_vars(**overrides))


def our_templates() -> list[tuple[str, str]]:
    found = []
    for role in OUR_ROLES:
        base = ROLES / role / "templates"
        found += [(role, str(p.relative_to(base))) for p in sorted(base.rglob("*.j2"))]
    return found


def template_tasks() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ansible.builtin.template task of our roles: (role, module arguments)."""
    for role in OUR_ROLES:
        for path in sorted((ROLES / role / "tasks").glob("*.yml")):
            for task in yaml.safe_load(path.read_text()) or []:
                if isinstance(task, dict) and "ansible.builtin.template" in task:
                    yield role, task["ansible.builtin.template"]


def sections(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """A wg-quick file as [(section, [(key, value)])], comments dropped."""
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            found.append((line.strip("[]"), []))
            continue
        key, sep, value = line.partition("=")
        assert sep, raw
        assert found, f"setting before any section: {raw}"
        found[-1][1].append((key.strip(), value.strip()))
    return found


def key_values(text: str, separator: str = "=") -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition(separator)
        assert sep, raw
        assert key.strip() not in values, f"{key.strip()} set twice"
        values[key.strip()] = value.strip()
    return values


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


# --- every template ---------------------------------------------------------------------------


def test_our_roles_have_templates() -> None:
    roles = {role for role, _ in our_templates()}
    assert roles == set(OUR_ROLES)


@pytest.mark.parametrize(("role", "template"), our_templates())
def test_every_template_renders_with_strict_variables(role: str, template: str) -> None:
    text = render(role, template)
    assert text.endswith("\n")
    assert "{{" not in text and "{%" not in text
    assert "Ansible managed" in text or template == "authorized_keys.j2"


def test_resolved_defaults_cover_every_jinja_default() -> None:
    templated = {k for k, v in role_defaults().items() if isinstance(v, str) and "{{" in v}
    assert templated == set(RESOLVED)


@pytest.mark.parametrize(("role", "template"), our_templates())
def test_every_template_is_used_by_a_task(role: str, template: str) -> None:
    used = {args["src"] for r, args in template_tasks() if r == role}
    assert template in used


def test_templates_are_named_after_the_file_they_write() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    variables = sample_vars()
    for role, args in template_tasks():
        dest = env.from_string(args["dest"]).render(variables)
        src = args["src"].removesuffix(".j2")
        if src == "wg.conf":  # /etc/wireguard/<interface>.conf
            assert dest == f"/etc/wireguard/{variables['wireguard_interface']}.conf"
            continue
        assert dest.endswith("/" + src), (role, args["src"], dest)


# --- wireguard_node ---------------------------------------------------------------------------


def test_wg_conf_interface_without_key_or_saved_state() -> None:
    text = render("wireguard_node", "wg.conf.j2")
    assert "saveconfig" not in text.lower()
    parsed = sections(text)
    assert not [k for _, values in parsed for k, _ in values if k.lower() == "privatekey"]
    assert [name for name, _ in parsed] == ["Interface", "Peer", "Peer"]
    interface = parsed[0][1]
    assert ("Address", "198.19.1.1/24") in interface
    assert ("ListenPort", "51820") in interface
    post_up = [v for k, v in interface if k == "PostUp"]
    assert post_up == [
        "wg set %i private-key /etc/wireguard/%i.key",
        f"wg set %i peer {PEER_B} preshared-key /etc/wireguard/psk/b.psk",
        "[ ! -f /etc/wireguard/%i.peers ] || wg addconf %i /etc/wireguard/%i.peers",
        "/usr/local/sbin/wgfleet-epoch %i /run/wgfleet",
    ]
    assert [v for k, v in interface if k == "PostDown"] == ["rm -f /run/wgfleet/%i.epoch"]
    assert parsed[1][1] == [("PublicKey", PEER_A), ("AllowedIPs", "198.19.1.2/32")]
    assert parsed[2][1] == [("PublicKey", PEER_B), ("AllowedIPs", "198.19.1.3/32, 198.19.1.4/32")]


def test_wg_conf_without_peers_and_dynamic_peers() -> None:
    text = render(
        "wireguard_node",
        "wg.conf.j2",
        wireguard_peers=[],
        wireguard_dynamic_peers=False,
        wireguard_listen_port=51999,
        wgfleet_tunnel_network="198.19.7.0/25",
        wgfleet_tunnel_address="198.19.7.1",
    )
    parsed = sections(text)
    assert [name for name, _ in parsed] == ["Interface"]
    assert ("Address", "198.19.7.1/25") in parsed[0][1]
    assert ("ListenPort", "51999") in parsed[0][1]
    assert "addconf" not in text


def test_wg_conf_carries_the_ipv6_tunnel_address() -> None:
    parsed = sections(render("wireguard_node", "wg.conf.j2", **IPV6))
    assert ("Address", "198.19.1.1/24, fd00:198:19:1::1/64") in parsed[0][1]


def test_userspace_dropin() -> None:
    text = render("wireguard_node", "userspace.conf.j2")
    assert text.splitlines()[2:] == [
        "[Service]",
        "Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go",
        "Environment=WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1",
        "Environment=LOG_LEVEL=silent",
    ]


def test_reload_dropin_replaces_exec_reload() -> None:
    text = render("wireguard_node", "wgfleet-reload.conf.j2")
    assert text.splitlines()[-3:] == [
        "[Service]",
        "ExecReload=",
        "ExecReload=/usr/local/sbin/wgfleet-wg-reload --keep-pushed-peers %i",
    ]
    text = render("wireguard_node", "wgfleet-reload.conf.j2", wireguard_dynamic_peers=False)
    assert text.splitlines()[-1] == "ExecReload=/usr/local/sbin/wgfleet-wg-reload %i"


def test_forwarding_sysctl_file() -> None:
    text = render("wireguard_node", "90-wgfleet-forwarding.conf.j2")
    assert key_values(text) == {"net.ipv4.ip_forward": "1"}


def test_forwarding_sysctl_file_with_ipv6() -> None:
    text = render("wireguard_node", "90-wgfleet-forwarding.conf.j2", **IPV6)
    assert key_values(text) == {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}


def test_ipv6_sysctls_follow_the_egress_mode() -> None:
    """The defaults' expression: IPv6 forwarding only with a /64 and egress not off."""
    expression = role_defaults()["wireguard_sysctl_applied"]
    env = jinja2.Environment()
    env.filters["combine"] = lambda a, b: {**a, **b}
    env.filters["bool"] = ansible_bool
    for ipv6, egress, forwards in (
        (True, "nat66", True),
        (True, "routed", True),
        (True, "off", False),
        (False, "nat66", False),
    ):
        values = {
            "wireguard_sysctl": {"net.ipv4.ip_forward": 1},
            "wireguard_sysctl_ipv6": {"net.ipv6.conf.all.forwarding": 1},
            "wireguard_ipv6": ipv6,
            "wireguard_ipv6_egress": egress,
        }
        rendered = env.from_string(expression).render(values)
        assert ("net.ipv6.conf.all.forwarding" in rendered) is forwards, (ipv6, egress)


def nft_statements(text: str) -> str:
    without_comments = re.sub(r'comment "[^"]*"', "", text)
    return "\n".join(line.split("#", 1)[0] for line in without_comments.splitlines())


def test_nftables_filters_forwards_masquerades_and_never_logs() -> None:
    text = render("wireguard_node", "nftables.conf.j2")
    rules = nft_statements(text)
    assert not re.search(r"\b(log|nflog)\b", rules)
    assert re.search(r"\b(log|nflog)\b", text) is None  # not even in a comment (audits grep -w)
    assert "flush ruleset" in rules
    assert rules.count("policy drop;") == 2
    assert "tcp dport 22 accept" in rules
    assert "udp dport { 51820, 51821 } accept" in rules
    # The node's interface and, during a key rotation overlap, its twin serving the next key.
    assert (
        'iifname { "wg0", "wg0n" } ip saddr 198.19.1.0/24 oifname != { "wg0", "wg0n" } accept'
        in rules
    )
    assert 'ip saddr 198.19.1.0/24 oifname != { "wg0", "wg0n" } masquerade' in rules
    assert 'oifname { "wg0", "wg0n" } accept' not in rules
    assert "ip saddr 198.18.0.0/15 accept" not in rules


def test_nftables_options() -> None:
    text = render(
        "wireguard_node",
        "nftables.conf.j2",
        wireguard_allow_client_to_client=True,
        wireguard_nft_trusted_networks=["198.18.0.0/15"],
        wireguard_ssh_port=2222,
    )
    rules = nft_statements(text)
    assert (
        'iifname { "wg0", "wg0n" } ip saddr 198.19.1.0/24 oifname { "wg0", "wg0n" } accept' in rules
    )
    assert "ip saddr 198.18.0.0/15 accept" in rules
    assert "tcp dport 2222 accept" in rules


V6_FORWARD = (
    'iifname { "wg0", "wg0n" } ip6 saddr fd00:198:19:1::/64 oifname != { "wg0", "wg0n" } accept'
)
V6_MASQUERADE = 'ip6 saddr fd00:198:19:1::/64 oifname != { "wg0", "wg0n" } masquerade'


def test_nftables_without_ipv6_side_forwards_no_ipv6() -> None:
    rules = nft_statements(render("wireguard_node", "nftables.conf.j2"))
    assert "ip6 saddr" not in rules
    assert "wgfleet_nat6" not in rules


@pytest.mark.parametrize(
    ("egress", "forwards", "masquerades"),
    [("nat66", True, True), ("routed", True, False), ("off", False, False)],
)
def test_nftables_ipv6_per_egress_mode(egress: str, forwards: bool, masquerades: bool) -> None:
    text = render("wireguard_node", "nftables.conf.j2", **IPV6, wireguard_ipv6_egress=egress)
    rules = nft_statements(text)
    assert re.search(r"\b(log|nflog)\b", text) is None
    # IPv4 is as before in every mode.
    assert 'ip saddr 198.19.1.0/24 oifname != { "wg0", "wg0n" } masquerade' in rules
    assert (V6_FORWARD in rules) is forwards
    assert (V6_MASQUERADE in rules) is masquerades
    assert ("table ip6 wgfleet_nat6" in rules) is masquerades
    # off: no rule forwards IPv6 from the tunnel, so the forward policy (drop) takes it; the
    # only IPv6 from the tunnel still accepted is DNS to the node's own resolver (input).
    if egress == "off":
        from_tunnel6 = [r for r in rules if "ip6 saddr fd00:198:19:1::/64" in r]
        assert all("oifname" not in r and "th dport 53 accept" in r for r in from_tunnel6)


def test_nftables_trusted_networks_per_family() -> None:
    rules = nft_statements(
        render(
            "wireguard_node",
            "nftables.conf.j2",
            wireguard_nft_trusted_networks=["198.18.0.0/15", "2001:2::/48"],
        )
    )
    assert "ip saddr 198.18.0.0/15 accept" in rules
    assert "ip6 saddr 2001:2::/48 accept" in rules


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
    reason="needs root, nft and unshare (checked in a private network namespace)",
)
@pytest.mark.parametrize("variables", [{}, IPV6, {**IPV6, "wireguard_ipv6_egress": "routed"}])
def test_nftables_file_is_valid_nft(tmp_path: Path, variables: dict[str, Any]) -> None:
    path = tmp_path / "nftables.conf"
    path.write_text(render("wireguard_node", "nftables.conf.j2", **variables))
    result = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_epoch_script_writes_a_new_random_token_each_start(tmp_path: Path) -> None:
    epoch_dir = tmp_path / "run" / "wgfleet"
    tokens = []
    for _ in range(2):
        subprocess.run([str(EPOCH), "wg0", str(epoch_dir)], check=True)
        token_file = epoch_dir / "wg0.epoch"
        tokens.append(token_file.read_text())
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o644
    assert all(UUID.match(t.strip()) and t.endswith("\n") for t in tokens)
    assert tokens[0] != tokens[1]
    assert sorted(p.name for p in epoch_dir.iterdir()) == ["wg0.epoch"]
    for bad in (["", str(epoch_dir)], ["../x", str(epoch_dir)], ["wg 0", str(epoch_dir)]):
        assert subprocess.run([str(EPOCH), *bad], capture_output=True).returncode == 2
    # Without DIR it writes to /run/wgfleet (not tried here: the host's own /run).
    assert subprocess.run([str(EPOCH), "wg0", "relative/dir"], capture_output=True).returncode == 2


@pytest.mark.parametrize("program", [EPOCH, WG_RELOAD], ids=lambda p: p.name)
def test_shell_node_programs_parse_and_hold_no_template(program: Path) -> None:
    """The node programs kept as shell: plain files (nothing rendered into them), executable,
    and valid for their own shell."""
    text = program.read_text()
    shell = text.splitlines()[0].removeprefix("#!")
    assert shell in ("/bin/sh", "/bin/bash")
    assert "{{" not in text and "{%" not in text
    assert program.stat().st_mode & 0o111
    done = subprocess.run([shell, "-n", str(program)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def fake_bin(tmp_path: Path, name: str, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return write_executable(bin_dir / name, f"#!/bin/sh\n{body}")


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_reload_script_keeps_the_private_key_and_pushed_peers(tmp_path: Path) -> None:
    wg_dir = tmp_path / "etc" / "wireguard"
    wg_dir.mkdir(parents=True)
    (wg_dir / "wg0.key").write_text("cHJpdmF0ZS1rZXktbmV2ZXItb24tZGlzay1lbHNld2hlcmU=\n")
    (wg_dir / "wg0.peers").write_text(f"# pushed\n[Peer]\nPublicKey = {PEER_A}\n")
    (wg_dir / "wg0.conf").write_text(render("wireguard_node", "wg.conf.j2"))
    log = tmp_path / "wg.log"
    fake_bin(
        tmp_path,
        "wg-quick",
        f'[ "$1" = strip ] && printf "# c\\n[Interface]\\nListenPort = 51820\\n\\n'
        f'[Peer]\\nPublicKey = {PEER_B}\\n"\n',
    )
    fake_bin(
        tmp_path,
        "wg",
        f'echo "$*" >> {log}\nif [ "$1" = syncconf ]; then cat "$3" > {tmp_path}/synced; fi\n',
    )
    # The program as installed, with the fake tools first on its PATH and the test's directory
    # for /etc/wireguard (the node's paths are fixed in it).
    text = WG_RELOAD.read_text()
    text = text.replace("PATH=/usr/sbin:", f"PATH={tmp_path}/bin:/usr/sbin:")
    text = text.replace("/etc/wireguard/", f"{wg_dir}/")
    script = write_executable(tmp_path / "wgfleet-wg-reload", text)
    subprocess.run(["bash", str(script), "--keep-pushed-peers", "wg0"], check=True)
    synced = (tmp_path / "synced").read_text()
    assert synced.splitlines()[:3] == [
        "# c",
        "[Interface]",
        "PrivateKey = cHJpdmF0ZS1rZXktbmV2ZXItb24tZGlzay1lbHNld2hlcmU=",
    ]
    assert f"PublicKey = {PEER_B}" in synced and f"PublicKey = {PEER_A}" in synced
    calls = log.read_text().splitlines()
    assert len(calls) == 2 and re.fullmatch(r"syncconf wg0 /dev/fd/\d+", calls[0])
    assert calls[1] == f"set wg0 peer {PEER_B} preshared-key /etc/wireguard/psk/b.psk"
    assert "cHJpdmF0ZS1rZXkt" not in text  # the key is read at run time, not in the program

    # Without the option (wireguard_dynamic_peers off) the pushed peers are not kept.
    subprocess.run(["bash", str(script), "wg0"], check=True)
    synced = (tmp_path / "synced").read_text()
    assert f"PublicKey = {PEER_B}" in synced and f"PublicKey = {PEER_A}" not in synced
    for bad in (["--bogus", "wg0"], ["wg0", "extra"], []):
        assert subprocess.run(["bash", str(script), *bad], capture_output=True).returncode == 2


# --- nolog ------------------------------------------------------------------------------------


def test_journald_dropin() -> None:
    text = render("nolog", "00-nolog.conf.j2")
    assert "[Journal]" in text
    assert key_values(text) == {
        "Storage": "volatile",
        "RuntimeMaxUse": "8M",
        "RuntimeMaxFileSize": "1M",
        "MaxRetentionSec": "1h",
        "MaxFileSec": "10min",
        "ForwardToSyslog": "no",
        "ForwardToKMsg": "no",
        "ForwardToConsole": "no",
        "ForwardToWall": "no",
    }


def test_journald_dropin_renders_yaml_booleans_as_yes_no() -> None:
    text = render(
        "nolog",
        "00-nolog.conf.j2",
        nolog_journald_settings={"ForwardToSyslog": False, "Seal": True},
    )
    assert key_values(text) == {"ForwardToSyslog": "no", "Seal": "yes"}


def test_nolog_sysctl_file() -> None:
    values = key_values(render("nolog", "90-wgfleet-nolog.conf.j2"))
    assert values == {
        "kernel.printk": "3 3 3 3",
        "kernel.dmesg_restrict": "1",
        "kernel.core_pattern": "|/bin/false",
        "fs.suid_dumpable": "0",
        "net.ipv4.conf.all.log_martians": "0",
        "net.ipv4.conf.default.log_martians": "0",
        "net.netfilter.nf_conntrack_acct": "0",
        "net.netfilter.nf_conntrack_timestamp": "0",
    }


def test_no_core_dumps() -> None:
    assert key_values(render("nolog", "00-nolog-coredump.conf.j2")) == {
        "Storage": "none",
        "ProcessSizeMax": "0",
    }
    assert key_values(render("nolog", "00-nolog-nocore.conf.j2")) == {"DefaultLimitCORE": "0"}
    limits = [
        line.split()
        for line in render("nolog", "wgfleet-nocore.conf.j2").splitlines()
        if line and not line.startswith("#")
    ]
    assert ["*", "hard", "core", "0"] in limits
    assert ["root", "hard", "core", "0"] in limits  # "*" does not cover root


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_nohistory_profile_turns_history_off(shell: str, tmp_path: Path) -> None:
    if not shutil.which(shell):
        pytest.skip(f"no {shell}")
    profile = tmp_path / "nohistory.sh"
    profile.write_text(render("nolog", "nohistory.sh.j2"))
    result = subprocess.run(
        [shell, "-c", f'. {profile}; echo "$HISTFILE $HISTSIZE $HISTFILESIZE ${{PYTHONSTARTUP-}}"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HISTFILE": "/root/.x"},
    )
    assert result.stdout.split() == ["/dev/null", "0", "0"]
    assert "PYTHONSTARTUP" not in profile.read_text()


def test_history_files_are_removed_at_boot() -> None:
    lines = render("nolog", "wgfleet-nohistory.conf.j2").splitlines()
    for name in (".bash_history", ".python_history", ".sh_history", ".zsh_history"):
        assert f"r /root/{name}" in lines
        assert f"r /home/*/{name}" in lines


def test_tmpfiles_override_drops_login_records_only() -> None:
    text = render("nolog", "var.conf.j2")
    kept = [line for line in text.splitlines() if line and not line.startswith("#")]
    expected = [
        line
        for line in DEBIAN_TMPFILES_VAR.splitlines()
        if line
        and not line.startswith("#")
        and not re.search(r"/var/log/(wtmp|btmp|lastlog)", line)
    ]
    assert kept == expected
    assert "d /var/log 0755 - - -" in kept


def test_package_tools_and_wireguard_debug_log_nowhere() -> None:
    apt = render("nolog", "00wgfleet-nolog.j2")
    for log in ("History", "Terminal", "Planner", "Solver"):
        assert f'Dir::Log::{log} "/dev/null";' in apt
    assert "options wireguard dyndbg=-p" in render("nolog", "wgfleet-nolog.conf.j2").splitlines()


# --- ssh_hardening ----------------------------------------------------------------------------


def sshd_settings(text: str) -> dict[str, str]:
    """The drop-in's global settings (everything before its first Match block)."""
    global_part = re.split(r"^Match ", text, maxsplit=1, flags=re.M)[0]
    return {k.lower(): v for k, v in key_values(global_part, " ").items()}


def sshd_match_blocks(text: str) -> dict[str, dict[str, str]]:
    """``Match User NAME`` blocks of the drop-in: user -> its settings."""
    blocks = re.split(r"^Match ", text, flags=re.M)[1:]
    found = {}
    for block in blocks:
        head, _, body = block.partition("\n")
        criterion, user = head.split()
        assert criterion == "User", head
        found[user] = {k.lower(): v for k, v in key_values(body, " ").items()}
    return found


def test_sshd_dropin_hardening() -> None:
    settings = sshd_settings(render("ssh_hardening", "10-wgfleet-hardening.conf.j2"))
    expected = {
        "passwordauthentication": "no",
        "kbdinteractiveauthentication": "no",
        "permitrootlogin": "prohibit-password",
        "pubkeyauthentication": "yes",
        "permitemptypasswords": "no",
        "loglevel": "QUIET",
        "usedns": "no",
        "x11forwarding": "no",
        "allowtcpforwarding": "no",
        "allowagentforwarding": "no",
        "allowstreamlocalforwarding": "no",
        "permittunnel": "no",
        "maxauthtries": "3",
        "allowusers": "root wgcollect",
        "printlastlog": "no",
    }
    assert {k: settings.get(k) for k in expected} == expected
    # Keys only from ~/.ssh/authorized_keys (Debian's default also reads authorized_keys2),
    # no key command, no user CA, and no forwarding of any kind.
    assert settings["authorizedkeysfile"] == ".ssh/authorized_keys"
    assert settings["authorizedkeyscommand"] == "none"
    assert settings["trustedusercakeys"] == "none"
    assert settings["disableforwarding"] == "yes"
    assert settings["permituserrc"] == "no"
    # The lab's own drop-in (00-wgfleet-lab.conf) sets HostKey: never set it again here.
    assert "hostkey" not in settings
    assert "subsystem" not in settings  # a second Subsystem sftp is an error


def forced_command(role: str) -> str:
    line = render(role, "authorized_keys.j2").splitlines()[0]
    match = re.match(r'^restrict,command="([^"]+)" ssh-', line)
    assert match, line
    return match.group(1)


def test_sshd_forces_the_same_command_as_each_accounts_key() -> None:
    text = render("ssh_hardening", "10-wgfleet-hardening.conf.j2")
    blocks = sshd_match_blocks(text)
    assert set(blocks) == {"wgcollect", "wgpush"}
    assert blocks["wgcollect"]["forcecommand"] == forced_command("counters_access")
    assert blocks["wgpush"]["forcecommand"] == forced_command("peers_access")
    for settings in blocks.values():
        assert settings["permittty"] == "no"
        assert settings["disableforwarding"] == "yes"
    # Match blocks end the file: nothing global may follow them.
    assert text.rstrip().splitlines()[-1].strip() == "DisableForwarding yes"
    none = render("ssh_hardening", "10-wgfleet-hardening.conf.j2", ssh_hardening_forced_commands={})
    assert "Match" not in none


@dataclass(frozen=True)
class SshdDropin:
    sshd: str
    config: Path  # an sshd_config that is the rendered drop-in alone
    host_key: Path


@pytest.fixture
def sshd_dropin(tmp_path: Path) -> SshdDropin:
    """The real sshd, a host key and the hardening drop-in as its whole config."""
    sshd = shutil.which("sshd")
    if not sshd or not shutil.which("ssh-keygen"):
        pytest.skip("no sshd")
    host_key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    config = tmp_path / "sshd_config"
    config.write_text(render("ssh_hardening", "10-wgfleet-hardening.conf.j2"))
    return SshdDropin(sshd, config, host_key)


def test_sshd_applies_the_forced_command_to_those_accounts_only(sshd_dropin: SshdDropin) -> None:
    sshd, config, host_key = sshd_dropin.sshd, sshd_dropin.config, sshd_dropin.host_key

    def effective(user: str) -> dict[str, str]:
        result = subprocess.run(
            [
                sshd,
                "-T",
                "-f",
                str(config),
                "-h",
                str(host_key),
                "-C",
                f"user={user},host=localhost,addr=127.0.0.1",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(line.partition(" ")[::2] for line in result.stdout.splitlines())

    assert effective("wgcollect")["forcecommand"] == forced_command("counters_access")
    assert effective("wgpush")["permittty"] == "no"
    assert (effective("root")["forcecommand"], effective("root")["permittty"]) == ("none", "yes")


def test_sshd_algorithms_keep_the_controllers_clients_working() -> None:
    settings = sshd_settings(render("ssh_hardening", "10-wgfleet-hardening.conf.j2"))
    kex = settings["kexalgorithms"].split(",")
    assert "curve25519-sha256" in kex  # what the inventory's ssh_common_args ask for
    paramiko = pytest.importorskip("paramiko")
    transport = paramiko.Transport
    assert set(kex) & set(transport._preferred_kex)
    assert set(settings["ciphers"].split(",")) & set(transport._preferred_ciphers)
    assert set(settings["macs"].split(",")) & set(transport._preferred_macs)


def test_sshd_dropin_without_crypto_lists() -> None:
    settings = sshd_settings(
        render("ssh_hardening", "10-wgfleet-hardening.conf.j2", ssh_hardening_crypto=False)
    )
    assert not {"kexalgorithms", "ciphers", "macs"} & set(settings)


def test_sshd_accepts_the_dropin(sshd_dropin: SshdDropin) -> None:
    result = subprocess.run(
        [sshd_dropin.sshd, "-t", "-f", str(sshd_dropin.config), "-h", str(sshd_dropin.host_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- counters_access --------------------------------------------------------------------------


def test_authorized_keys_is_one_forced_restricted_line() -> None:
    text = render("counters_access", "authorized_keys.j2")
    assert text.count("\n") == 1
    assert text == f'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters" {COLLECTOR_KEY}\n'


def test_collector_account_keeps_only_its_own_group_and_no_rc_files() -> None:
    tasks = yaml.safe_load((ROLES / "counters_access" / "tasks" / "main.yml").read_text())
    user = next(t["ansible.builtin.user"] for t in tasks if "ansible.builtin.user" in t)
    assert (user["group"], user["groups"], user["append"]) == ("{{ counters_user }}", "", False)
    assert (user["shell"], user["password"]) == ("/bin/sh", "!")
    push_tasks = yaml.safe_load((ROLES / "peers_access" / "tasks" / "main.yml").read_text())
    push = next(t["ansible.builtin.user"] for t in push_tasks if "ansible.builtin.user" in t)
    assert (push["group"], push["groups"], push["append"]) == ("{{ peers_user }}", "", False)
    for role_tasks in (tasks, push_tasks):
        finds = [t["ansible.builtin.find"] for t in role_tasks if "ansible.builtin.find" in t]
        assert len(finds) == 1 and {".profile", "rc", "environment"} <= set(finds[0]["patterns"])


# (role, its account, the one program that account may run as root)
SUDOERS = [
    ("counters_access", "wgcollect", "wgfleet-counters"),
    ("peers_access", "wgpush", "wgfleet-peers"),
]


@pytest.mark.parametrize(("role", "user", "program"), SUDOERS)
def test_sudoers_allows_the_entry_point_without_arguments_only(
    role: str, user: str, program: str
) -> None:
    text = render(role, f"etc/sudoers.d/{program}.j2")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        f"Defaults:{user} !syslog, !pam_session, !lecture",
        f'{user} ALL=(root) NOPASSWD: /usr/local/sbin/{program} ""',
    ]


@pytest.mark.skipif(not shutil.which("visudo"), reason="no visudo")
@pytest.mark.parametrize(("role", "user", "program"), SUDOERS)
def test_sudoers_file_is_valid(tmp_path: Path, role: str, user: str, program: str) -> None:
    path = tmp_path / program
    path.write_text(render(role, f"etc/sudoers.d/{program}.j2"))
    path.chmod(0o440)
    visudo = shutil.which("visudo")
    assert visudo
    result = subprocess.run([visudo, "-cf", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def counters_script(tmp_path: Path, wg_body: str) -> tuple[list[str], Path, Path]:
    """The counters program (roles/counters_access/files) with a test config naming a fake wg;
    returns (its argv with the config in its environment, epoch file, wg argv log). Its
    wg-quick directory is ``tmp_path / "wireguard"`` (empty: no static peers)."""
    epoch_dir = tmp_path / "run"
    epoch_dir.mkdir()
    (tmp_path / "wireguard").mkdir()
    argv_log = tmp_path / "argv"
    wg = fake_bin(tmp_path, "wg", f'echo "$*" >> {argv_log}\n{wg_body}')
    config = write_config(
        tmp_path / "counters.json",
        {
            "interface": "wg0",
            "epoch_dir": str(epoch_dir),
            "wireguard_dir": str(tmp_path / "wireguard"),
            "wg_binary": str(wg),
        },
    )
    os.environ.pop("SUDO_UID", None)
    os.environ["WGFLEET_COUNTERS_CONFIG"] = str(config)
    return [sys.executable, str(COUNTERS)], epoch_dir / "wg0.epoch", argv_log


@pytest.fixture(autouse=True)
def _counters_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """counters_script sets the program's config variable: undone after each test (setenv
    records the variable's absence, so the undo removes what counters_script wrote)."""
    monkeypatch.setenv("WGFLEET_COUNTERS_CONFIG", "/nonexistent/counters.json")
    monkeypatch.delenv("SUDO_UID", raising=False)


TRANSFER = f"{PEER_A}\t660\t604\n{PEER_B}\t0\t0\n"


def test_counters_script_prints_epoch_and_transfer_only(tmp_path: Path) -> None:
    script, epoch, argv_log = counters_script(tmp_path, f"printf '{TRANSFER}'\n")
    epoch.write_text("f380d0ac-2d59-4de5-9ee9-a25fef0f535b\n")
    # Arguments (what an SSH client asks for) are ignored.
    result = subprocess.run(
        [*script, "dump", "endpoints"], capture_output=True, text=True, check=True
    )
    assert result.stdout == f"epoch f380d0ac-2d59-4de5-9ee9-a25fef0f535b\n{TRANSFER}"
    assert result.stderr == ""
    assert set(argv_log.read_text().splitlines()) == {"show wg0 transfer"}


def test_counters_script_without_epoch_or_peers(tmp_path: Path) -> None:
    script, _epoch, _log = counters_script(tmp_path, "true\n")
    result = subprocess.run(script, capture_output=True, text=True, check=True)
    assert result.stdout == "epoch none\n"


def test_counters_script_rejects_a_strange_token(tmp_path: Path) -> None:
    script, epoch, _log = counters_script(tmp_path, f"printf '{TRANSFER}'\n")
    epoch.write_text("x; rm -rf /\n")
    result = subprocess.run(script, capture_output=True, text=True, check=True)
    assert result.stdout == f"epoch none\n{TRANSFER}"


def test_counters_script_when_the_interface_is_down(tmp_path: Path) -> None:
    script, epoch, _log = counters_script(tmp_path, "echo 'Unable to access' >&2; exit 1\n")
    epoch.write_text("f380d0ac-2d59-4de5-9ee9-a25fef0f535b\n")
    result = subprocess.run(script, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (1, "epoch none\n", "")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read"),
        ('{"interface": "wg0"}', "epoch_dir: missing"),
        (
            '{"interface": "wg 0", "epoch_dir": "/r", "wireguard_dir": "/w", "wg_binary": "/wg"}',
            "interface: 'wg 0': not a name",
        ),
        (
            '{"interface": "wg0", "epoch_dir": "r", "wireguard_dir": "/w", "wg_binary": "/wg"}',
            "epoch_dir: 'r': not absolute",
        ),
        ("[1]", "not a JSON object"),
    ],
)
def test_counters_script_refuses_a_config_it_cannot_use(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    script, _epoch, argv_log = counters_script(tmp_path, f"printf '{TRANSFER}'\n")
    config = Path(os.environ["WGFLEET_COUNTERS_CONFIG"])
    if content is None:
        config.unlink()
    else:
        config.write_text(content)
    result = subprocess.run(script, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (1, "epoch none\n")
    assert problem in result.stderr and not argv_log.exists()


def test_counters_script_refuses_a_config_others_may_write(tmp_path: Path) -> None:
    script, _epoch, argv_log = counters_script(tmp_path, f"printf '{TRANSFER}'\n")
    Path(os.environ["WGFLEET_COUNTERS_CONFIG"]).chmod(0o666)
    result = subprocess.run(script, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (1, "epoch none\n")
    assert "writable by group or others" in result.stderr and not argv_log.exists()


def test_counters_script_retries_when_the_interface_restarts_meanwhile(tmp_path: Path) -> None:
    # The first read of the counters happens while the interface restarts: new token after.
    marker = tmp_path / "restarted"
    script, epoch, argv_log = counters_script(
        tmp_path,
        f"if [ ! -e {marker} ]; then touch {marker}; echo new-token > {tmp_path}/run/wg0.epoch; "
        f"printf '{PEER_A}\\t5\\t5\\n'; else printf '{TRANSFER}'; fi\n",
    )
    epoch.write_text("old-token\n")
    result = subprocess.run(script, capture_output=True, text=True, check=True)
    assert result.stdout == f"epoch new-token\n{TRANSFER}"
    assert len(argv_log.read_text().splitlines()) == 2


def test_counters_script_leaves_out_the_static_peers_of_the_wg_quick_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deploy's static peers are no peers the controller placed: the node does not report
    them (the controller refuses an answer with a key it did not place there)."""
    peer_c = "C" * 43 + "="
    _script, epoch, _log = counters_script(
        tmp_path,
        f"if [ \"$2\" = wg0n ]; then printf '{PEER_B}\\t1\\t1\\n{peer_c}\\t2\\t2\\n'; "
        f"else printf '{TRANSFER}{peer_c}\\t3\\t3\\n'; fi\n",
    )
    epoch.write_text("tok-1\n")
    (tmp_path / "run" / "wg0n.epoch").write_text("tok-2\n")
    (tmp_path / "wireguard" / "wg0.conf").write_text(
        "[Interface]\nAddress = 198.19.1.1/24\nPostUp = wg set %i peer X preshared-key /f\n\n"
        f"[Peer]\nPublicKey = {PEER_B}\nAllowedIPs = 198.19.1.9/32\n\n"
        f"[Peer]\n  publickey={peer_c}  \r\nAllowedIPs = 198.19.1.10/32\n"
    )
    counters = load(COUNTERS, "wgfleet_counters")
    monkeypatch.setattr(counters, "SYS_NET", str(tmp_path / "sys"))
    monkeypatch.setenv("PATH", os.environ["PATH"])  # main() sets its own: restored after
    monkeypatch.setenv("LC_ALL", os.environ.get("LC_ALL", "C"))
    assert counters.main() == 0
    assert capsys.readouterr().out == f"epoch tok-1\n{PEER_A}\t660\t604\n"
    (tmp_path / "sys" / "wg0n").mkdir(parents=True)
    assert counters.main() == 0
    assert capsys.readouterr().out == (
        f"epoch tok-1\n{PEER_A}\t660\t604\ninterface wg0n\nepoch tok-2\n"
    )


def test_counters_script_asks_wg_for_transfer_only() -> None:
    code = COUNTERS.read_text()
    calls = re.findall(r"\[config\[\"wg_binary\"\][^\]]*\]", code)
    assert calls == ['[config["wg_binary"], "show", interface, "transfer"]']
    assert code.count("subprocess.run(") == 1
    assert not re.search(r"\b(dump|endpoints?|latest-handshakes|allowed-ips)\b", code)


# --- peers_access -----------------------------------------------------------------------------


def test_push_key_is_one_forced_restricted_line() -> None:
    text = render("peers_access", "authorized_keys.j2")
    push_key = COLLECTOR_KEY.replace("collector", "push")
    assert text == f'restrict,command="sudo -n /usr/local/sbin/wgfleet-peers" {push_key}\n'


def test_rotation_keys_get_the_same_forced_command() -> None:
    extra = COLLECTOR_KEY.replace("collector", "next")
    text = render("peers_access", "authorized_keys.j2", peers_push_extra_public_keys=[extra])
    assert (
        text.splitlines()[1] == f'restrict,command="sudo -n /usr/local/sbin/wgfleet-peers" {extra}'
    )
    text = render(
        "counters_access", "authorized_keys.j2", counters_collector_extra_public_keys=[extra]
    )
    assert text.splitlines() == [
        f'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters" {COLLECTOR_KEY}',
        f'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters" {extra}',
    ]


def test_watch_unit_runs_only_while_something_is_pending() -> None:
    unit = render("peers_access", "etc/systemd/system/wgfleet-watch@.service.j2")
    assert "ConditionPathExists=|/etc/wireguard/%i.handover" in unit
    assert "ConditionPathExists=|/sys/class/net/%in" in unit
    assert "ExecStart=/usr/local/sbin/wgfleet-peers --watch %i" in unit
    assert "LogLevelMax=warning" in unit
    timer = render("peers_access", "etc/systemd/system/wgfleet-watch@.timer.j2")
    assert "OnCalendar=*:*:0/3" in timer


def test_nftables_accepts_dns_from_the_tunnel_only() -> None:
    rules = nft_statements(render("wireguard_node", "nftables.conf.j2"))
    dns = [line.strip() for line in rules.splitlines() if "dport 53" in line]
    assert dns == [
        'iifname { "wg0", "wg0n" } ip saddr 198.19.1.0/24 meta l4proto { tcp, udp } '
        "th dport 53 accept"
    ]
    six = nft_statements(
        render("wireguard_node", "nftables.conf.j2", wgfleet_tunnel_network6="fd00:198:19:1::/64")
    )
    assert (
        'iifname { "wg0", "wg0n" } ip6 saddr fd00:198:19:1::/64 meta l4proto { tcp, udp } '
        "th dport 53 accept" in six
    )
    off = nft_statements(
        render("wireguard_node", "nftables.conf.j2", wireguard_nft_accept_dns=False)
    )
    assert "dport 53" not in off


# --- resolver ---------------------------------------------------------------------------------


def unbound_settings(text: str) -> dict[str, list[str]]:
    """section.key -> values, in order (unbound repeats keys such as interface)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", raw).rstrip()  # a forwarder's #TLS-NAME is not a comment
        if not line.strip():
            continue
        key, _, value = line.strip().partition(":")
        if not raw[0].isspace():
            section = key
            continue
        found.setdefault(f"{section}.{key}", []).append(value.strip())
    return found


def test_unbound_conf_logs_nothing_keeps_nothing_and_serves_the_tunnel_only() -> None:
    conf = unbound_settings(render("resolver", "unbound.conf.j2"))
    for key, value in {
        **QUIET_LOGGING,
        "logfile": '""',
        "qname-minimisation": "yes",
        "module-config": '"validator iterator"',
        "trust-anchor-file": '"/usr/share/dns/root.key"',
        "ip-freebind": "yes",
        "interface-automatic": "no",
    }.items():
        assert conf[f"server.{key}"] == [value], key
    assert conf["server.interface"] == ["198.19.1.1"]
    assert conf["server.access-control"] == [
        "0.0.0.0/0 refuse",
        "::0/0 refuse",
        "198.19.1.0/24 allow",
    ]
    assert conf["remote-control.control-enable"] == ["no"]
    # Nothing that writes to disk or pulls in other files.
    for key in conf:
        for word in ("include", "auto-trust-anchor", "cachedb", "dump", "forward", "log"):
            assert word not in key or conf[key] in (["no"], ["0"], ['""']), key


def test_unbound_conf_dual_stack_and_tls_forwarders() -> None:
    text = render(
        "resolver",
        "unbound.conf.j2",
        resolver_listen_addresses_ipv6=["fd00:198:19:1::1"],
        resolver_allowed_networks_ipv6=["fd00:198:19:1::/64"],
        resolver_forwarders=["198.18.0.53@853#dns.example.net", "2001:2::53@853#dns.example.net"],
        resolver_forward_tls=True,
    )
    conf = unbound_settings(text)
    assert conf["server.interface"] == ["198.19.1.1", "fd00:198:19:1::1"]
    assert conf["server.access-control"][-1] == "fd00:198:19:1::/64 allow"
    assert conf["server.tls-cert-bundle"] == ['"/etc/ssl/certs/ca-certificates.crt"']
    assert conf["forward-zone.name"] == ['"."']
    assert conf["forward-zone.forward-tls-upstream"] == ["yes"]
    assert conf["forward-zone.forward-addr"] == [
        "198.18.0.53@853#dns.example.net",
        "2001:2::53@853#dns.example.net",
    ]
    plain = unbound_settings(
        render("resolver", "unbound.conf.j2", resolver_forwarders=["198.18.0.53"])
    )
    assert plain["forward-zone.forward-tls-upstream"] == ["no"]
    assert "server.tls-cert-bundle" not in plain


def test_unbound_defaults_copy_no_trust_anchor() -> None:
    defaults = key_values(render("resolver", "unbound.j2"))
    assert defaults["ROOT_TRUST_ANCHOR_UPDATE"] == "false"
    assert defaults["RESOLVCONF"] == "false"


@pytest.mark.skipif(not shutil.which("unbound-checkconf"), reason="needs unbound-checkconf")
def test_unbound_accepts_the_conf(tmp_path: Path) -> None:
    path = tmp_path / "unbound.conf"
    path.write_text(render("resolver", "unbound.conf.j2").replace('username: "unbound"', ""))
    result = subprocess.run(
        ["unbound-checkconf", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
