"""The node protocol's constants have one definition (orchestrator/core/node_protocol.py): every
copy that must stay in a role (its defaults and argument spec, for a plain ansible-playbook run),
the site playbook and the node programs says the same, so nothing drifts in silence."""

from __future__ import annotations

import re

import pytest
import yaml

from orchestrator.core import node_protocol
from orchestrator.core.push_protocol import HEADER
from tests.unit.node_programs import EPOCH, PEERS, ROLES, load

ROOT = ROLES.parent


def role_defaults(role: str) -> dict[str, object]:
    loaded = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def spec_options(role: str) -> dict[str, dict[str, object]]:
    spec = yaml.safe_load((ROLES / role / "meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    assert isinstance(options, dict)
    return options


@pytest.mark.parametrize(
    ("role", "variable"),
    sorted(
        (role, variable)
        for role, defaults in node_protocol.ROLE_DEFAULTS.items()
        for variable in defaults
    ),
    ids=lambda v: str(v),
)
def test_each_role_default_is_the_protocol_s_value(role: str, variable: str) -> None:
    expected = node_protocol.ROLE_DEFAULTS[role][variable]
    assert role_defaults(role)[variable] == expected
    option = spec_options(role).get(variable)
    if option is not None and "default" in option:
        assert option["default"] == expected


def test_the_site_playbook_lets_in_exactly_the_protocol_s_accounts() -> None:
    [play] = yaml.safe_load((ROOT / "playbooks/site.yml").read_text())
    assert play["vars"]["ssh_hardening_allow_users"] == [
        node_protocol.DEPLOY_USER,
        node_protocol.COLLECTOR_USER,
        node_protocol.PUSH_USER,
    ]


def test_the_push_program_speaks_the_controller_s_revision() -> None:
    assert load(PEERS, "wgfleet_peers").HEADER == HEADER == node_protocol.PUSH_HEADER


def test_the_epoch_program_s_fallback_directory_is_the_protocol_s() -> None:
    """wg-quick files written before the directory was named on their PostUp line."""
    assert f'dir="${{2:-{node_protocol.EPOCH_DIR}}}"' in EPOCH.read_text()


def test_each_program_reads_its_config_where_the_role_writes_it() -> None:
    written = {
        str(task["ansible.builtin.template"]["dest"])
        for path in ROLES.glob("*/tasks/*.yml")
        for task in yaml.safe_load(path.read_text()) or []
        if isinstance(task, dict) and "ansible.builtin.template" in task
    }
    for program, config in node_protocol.CONFIG_FILES.items():
        [source] = ROLES.glob(f"*/files/{program}")
        assert f'DEFAULT_CONFIG = "{config}"' in source.read_text()
        assert config in written


def test_the_wireguard_port_is_defined_once_in_code_and_roles() -> None:
    """Besides the one definition, the port may appear only where a role must know it alone
    (checked above) and in schema 1's DDL, which a migration may never change."""
    allowed = {
        "orchestrator/core/node_protocol.py",
        "orchestrator/adapters/store/schema.py",
        "roles/wireguard_node/defaults/main.yml",
        "roles/wireguard_node/meta/argument_specs.yml",
    }
    found = set()
    for top in ("orchestrator", "roles", "playbooks"):
        for path in (ROOT / top).rglob("*"):
            if (
                path.is_file()
                and path.suffix != ".md"
                and "__pycache__" not in path.parts
                and re.search(r"\b51820\b", path.read_text(errors="replace"))
            ):
                found.add(str(path.relative_to(ROOT)))
    assert found <= allowed, sorted(found - allowed)
    assert "orchestrator/core/node_protocol.py" in found
