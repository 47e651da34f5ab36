"""What the controller and the node programs agree on: the one definition of the node protocol's
constants (the WireGuard port, the node accounts, the programs and their forced commands, the
paths, the push protocol's revision).

The controller reads them from here. The nodes get them through the roles: each value that a
role must also know on its own (a plain ``ansible-playbook`` run without the controller) is a
role default, and ``ROLE_DEFAULTS`` below names every such default with the value it must have;
``tests/unit/test_node_protocol.py`` fails when a role's default, its argument spec, the site
playbook or a node program says anything else. The node programs read what differs per node
from the config files the roles render into ``CONFIG_DIR`` (``CONFIG_FILES``).
"""

from __future__ import annotations

# The UDP port a node's WireGuard interface listens on, unless its inventory says otherwise; a
# node key rotation with overlap serves the next key on the port after it.
WIREGUARD_PORT = 51820
WIREGUARD_ALTERNATE_PORT = WIREGUARD_PORT + 1
WIREGUARD_INTERFACE = "wg0"
WIREGUARD_DIR = "/etc/wireguard"

# The accounts the controller logs in as: root for deploys, key rotations and diagnostics;
# the collector and the push account can each run one program and nothing else.
DEPLOY_USER = "root"
COLLECTOR_USER = "wgcollect"
PUSH_USER = "wgpush"

# The programs the roles install (roles/*/files) and what runs them.
PROGRAM_DIR = "/usr/local/sbin"
COUNTERS_PROGRAM = f"{PROGRAM_DIR}/wgfleet-counters"
PEERS_PROGRAM = f"{PROGRAM_DIR}/wgfleet-peers"
NODE_KEY_PROGRAM = f"{PROGRAM_DIR}/wgfleet-node-key"
DIAGNOSTICS_PROGRAM = f"{PROGRAM_DIR}/wgfleet-diag"
EPOCH_PROGRAM = f"{PROGRAM_DIR}/wgfleet-epoch"
WG_RELOAD_PROGRAM = f"{PROGRAM_DIR}/wgfleet-wg-reload"
# The forced commands of the collector's and the push key (sshd runs them, sudo allows them
# without arguments only).
COUNTERS_COMMAND = f"sudo -n {COUNTERS_PROGRAM}"
PEERS_COMMAND = f"sudo -n {PEERS_PROGRAM}"

# Where the node programs read what differs per node (root-owned JSON the roles render), and
# the tmpfs directory of the interfaces' epoch tokens.
CONFIG_DIR = "/etc/wgfleet"
CONFIG_FILES = {
    "wgfleet-counters": f"{CONFIG_DIR}/counters.json",
    "wgfleet-peers": f"{CONFIG_DIR}/peers.json",
    "wgfleet-node-key": f"{CONFIG_DIR}/node-key.json",
    "wgfleet-diag": f"{CONFIG_DIR}/diag.json",
}
EPOCH_DIR = "/run/wgfleet"

# The push protocol (orchestrator/core/push_protocol.py and roles/peers_access/files/
# wgfleet-peers): a request's first line names it and its revision; a node refuses another.
PUSH_PROTOCOL_REVISION = 1
PUSH_HEADER = f"wgfleet-peers {PUSH_PROTOCOL_REVISION}"

# role -> its variables in defaults/main.yml, each with the value it must hold.
ROLE_DEFAULTS: dict[str, dict[str, object]] = {
    "wireguard_node": {
        "wireguard_interface": WIREGUARD_INTERFACE,
        "wireguard_port": WIREGUARD_PORT,
        "wireguard_node_key_script": NODE_KEY_PROGRAM,
        "wireguard_epoch_dir": EPOCH_DIR,
        "wireguard_epoch_script": EPOCH_PROGRAM,
        "wireguard_reload_script": WG_RELOAD_PROGRAM,
    },
    "counters_access": {
        "counters_user": COLLECTOR_USER,
        "counters_script": COUNTERS_PROGRAM,
        "counters_wireguard_dir": WIREGUARD_DIR,
    },
    "peers_access": {"peers_user": PUSH_USER, "peers_script": PEERS_PROGRAM},
    "diagnostics": {"diagnostics_script": DIAGNOSTICS_PROGRAM},
    "ssh_hardening": {
        "ssh_hardening_forced_commands": {
            COLLECTOR_USER: COUNTERS_COMMAND,
            PUSH_USER: PEERS_COMMAND,
        },
    },
}
