"""A node is not trusted either, and no access outlives its revocation: on the session lab.

Tampering: node1's counters answer is edited as root on the node (the real wgfleet-counters
wrapped by a filter, put back afterwards) in each way a tampered or broken node could answer;
the sync names node1 as failed, the other nodes sync, and no total moves.

Revocations: deletion, disable, quota cut-off, expiry and key retirement, each interrupted
before its push, with a node unreachable, and after the node applied the push but before the
controller recorded it (and the `wgfleet` process itself killed at two of those points):
every key live on a node is one the store places there or is still taking off it, and the
next sync takes every revoked key off every node.

Lean on the shared lab: no deploy, no reboot (an unreachable node is one whose SSH port
refuses the controller, set from the host in the node's namespace), and everything changed on
a node is put back in `finally`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from orchestrator.adapters import ssh, wgkeys
from orchestrator.core.models import Configuration, DisabledReason
from orchestrator.core.peers import allocate_address
from orchestrator.service import keys as keys_service
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet
from orchestrator.service.usage import usage_check
from tests.conftest import Lab
from tests.integration.fleet_lab import account, root, transfer, wgfleet

pytestmark = pytest.mark.lab

COUNTERS = "/usr/local/sbin/wgfleet-counters"
NODES = ("node1", "node2", "node3")


def as_root(lab: Lab, layout, index: int, command: str, stdin: str | None = None) -> str:
    target = lab_service.node_target(lab.settings, layout.nodes[index])
    return ssh.run_on(target, command, stdin=stdin).stdout


def static_keys(lab: Lab, layout, index: int) -> set[str]:
    """The peers of the node's own wg-quick file (the deploy's static peers, if any)."""
    text = root(lab, layout, index, ["cat", "/etc/wireguard/wg0.conf"])
    return {
        line.split("=", 1)[1].strip()
        for line in text.splitlines()
        if line.replace(" ", "").lower().startswith("publickey=")
    }


def placed_keys(fleet: Fleet, node: str) -> set[str]:
    return {
        key
        for c in fleet.store.configurations(node=node)
        for key in (c.public_key, c.previous_public_key)
        if key
    }


def unaccounted(lab: Lab, layout, fleet: Fleet) -> dict[str, set[str]]:
    """Per node, keys live on it that the store neither places there nor is removing from it
    (static peers aside): must always be empty, whatever was interrupted."""
    pending = fleet.store.pending_removals()
    found = {}
    for index, node in enumerate(NODES):
        live = set(transfer(lab, layout, index)) - static_keys(lab, layout, index)
        stray = live - placed_keys(fleet, node) - pending.get(node, set())
        if stray:
            found[node] = stray
    return found


# --- a node is not trusted ----------------------------------------------------------------------


TAMPER_PRELUDE = """import sys
text = sys.stdin.read()


def edit(key, rx=None, tx=None, drop=False):
    global text
    lines = []
    for line in text.split("\\n"):
        fields = line.split("\\t")
        if fields[0] == key:
            if drop:
                continue
            fields[1] = fields[1] if rx is None else rx
            fields[2] = fields[2] if tx is None else tx
        lines.append("\\t".join(fields))
    text = "\\n".join(lines)


def add(key, rx, tx):
    global text
    text += f"{key}\\t{rx}\\t{tx}\\n"


"""


@contextlib.contextmanager
def tampered_counters(lab: Lab, layout, index: int) -> Iterator[Callable[[str], None]]:
    """Wrap the node's counters script with a Python filter; yield a function that sets the
    filter's code (it gets the answer as ``text`` and leaves its version in ``text``)."""
    wrapper = f"#!/bin/sh\n{COUNTERS}.real | /usr/bin/python3 {COUNTERS}.tamper\n"
    as_root(
        lab,
        layout,
        index,
        f"mv {COUNTERS} {COUNTERS}.real && cat > {COUNTERS} && chmod 0755 {COUNTERS}",
        stdin=wrapper,
    )

    def tamper(code: str) -> None:
        program = TAMPER_PRELUDE + code + "\nsys.stdout.write(text)\n"
        as_root(lab, layout, index, f"cat > {COUNTERS}.tamper", stdin=program)

    try:
        yield tamper
    finally:
        as_root(lab, layout, index, f"mv -f {COUNTERS}.real {COUNTERS}; rm -f {COUNTERS}.tamper")


def used(fleet: Fleet, name: str) -> int:
    return sum(u.total for u in fleet.store.usage(name))


def add_unpushed(fleet: Fleet, name: str, user: str, nodes: list[str], **kw: object) -> str:
    """A configuration in the store only (as if its push had not happened yet): its key."""
    key = wgkeys.new_keypair().public_key
    store = fleet.store
    with store.transaction():
        addresses = {
            n: allocate_address(store.node(n).tunnel_network, store.taken_addresses(n))
            for n in nodes
        }
        store.add_configuration(Configuration(name, user, key, None, addresses, **kw))  # type: ignore[arg-type]
    return key


def test_a_tampered_counters_answer_fails_that_node_only_and_moves_no_total(
    lab: Lab, layout, fleet: Fleet
) -> None:
    account(fleet, "ntvic")
    own = peers_service.add_configuration(fleet, "ntvic", nodes=["node1"], name="ntvic-1")
    victim = peers_service.add_configuration(fleet, "ntvic", nodes=["node2"], name="ntvic-2")
    assert own.push.ok and victim.push.ok
    own_key, victim_key = own.configuration.public_key, victim.configuration.public_key
    node1 = layout.nodes[0]
    static = wgkeys.new_keypair().public_key
    conf = "/etc/wireguard/wg0.conf"
    try:
        # Legitimate: a static peer of the node's own file, and a configuration the store
        # placed but has not pushed yet. Neither is held against the node.
        spare = ipaddress.IPv4Network(node1.tunnel_network)[250]
        as_root(
            lab,
            layout,
            0,
            f"cp -p {conf} {conf}.ntbak && printf '\\n[Peer]\\nPublicKey = {static}\\n"
            f"AllowedIPs = {spare}/32\\n' >> {conf} && "
            f"wg set wg0 peer {static} allowed-ips {spare}/32",
        )
        unpushed = add_unpushed(fleet, "ntvic-3", "ntvic", ["node1"])
        baseline = sync_service.sync(fleet, enforce_quota=False)
        assert baseline.ok, baseline.as_dict()
        assert own_key in fleet.store.last_seen("node1")
        assert static not in fleet.store.last_seen("node1") and unpushed not in transfer(
            lab, layout, 0
        )

        stranger = wgkeys.new_keypair().public_key
        big = 5_000_000_000
        arabic, fullwidth, huge, top = (
            "\u0661\u0662\u0663",
            "\uff17\uff17",
            str(2**64),
            str(2**63 - 1),
        )
        cases = {
            "a key placed on another node": (
                f"add({victim_key!r}, {big}, {big})",
                f"peer {victim_key[:10]}... is not placed on this node (placed on other nodes",
            ),
            "a key the store never placed": (
                f"add({stranger!r}, {big}, {big})",
                f"peer {stranger[:10]}... is not placed on this node (unknown to the store)",
            ),
            "a placed peer missing within its epoch": (
                f"edit({own_key!r}, drop=True)",
                f"peer {own_key[:10]}... is missing from the answer within epoch",
            ),
            "Arabic-Indic digits": (f"edit({own_key!r}, rx={arabic!r})", f"rx {arabic!r} is not"),
            "fullwidth digits": (f"edit({own_key!r}, tx={fullwidth!r})", f"tx {fullwidth!r} is"),
            "a number out of range": (f"edit({own_key!r}, rx={huge!r})", f"rx {huge!r} is out of"),
            "counters that would overflow the totals": (
                f"edit({own_key!r}, rx={top!r}, tx={top!r})",
                "counters out of range: ",
            ),
        }
        with tampered_counters(lab, layout, 0) as tamper:
            for case, (code, message) in cases.items():
                tamper(code)
                before = fleet.store.used_total()
                usage = {name: used(fleet, name) for name in ("ntvic-1", "ntvic-2")}
                result = sync_service.sync(fleet, enforce_quota=False)
                failed = {n.node: n.error for n in result.failed}
                assert list(failed) == ["node1"], (case, result.as_dict())
                assert message in failed["node1"], (case, failed["node1"])
                assert {n.node for n in result.nodes if n.ok} == {"node2", "node3"}, case
                synced = sum(n.bytes_added for n in result.nodes if n.ok)
                assert fleet.store.used_total() == before + synced, case
                assert {name: used(fleet, name) for name in usage} == usage, case
                assert usage_check(fleet) == [], case
                assert fleet.store.node_health()["node1"][1] is False
        after = sync_service.sync(fleet, enforce_quota=False)
        assert after.ok, after.as_dict()  # the honest answer is believed again at once
        check = wgfleet(lab, "usage", "check")
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        as_root(
            lab,
            layout,
            0,
            f"if [ -e {conf}.ntbak ]; then mv -f {conf}.ntbak {conf}; fi; "
            f"wg set wg0 peer {static} remove",
        )
        names = [c.name for c in fleet.store.configurations(account="ntvic")]
        _, removed = peers_service.remove_configurations(fleet, names)
        assert removed.ok
    assert {own_key, victim_key} & set(transfer(lab, layout, 0) | transfer(lab, layout, 1)) == set()


# --- no access outlives its revocation ------------------------------------------------------------


class Killed(BaseException):
    """The process dies here: nothing after it runs, nothing uncommitted lands."""


def die(*args: object, **kwargs: object) -> None:
    raise Killed()


@contextlib.contextmanager
def unreachable(layout, index: int) -> Iterator[None]:
    """The node's SSH port refuses the controller at once (set from the host in the node's
    network namespace); its tunnels keep running."""
    netns = layout.nodes[index].netns
    rules = (
        "table inet ntblock {\n  chain input {\n    type filter hook input priority -50;\n"
        "    tcp dport 22 reject with tcp reset\n  }\n}\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules, text=True, check=True
    )
    try:
        yield
    finally:
        subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "ntblock"],
            check=False,
        )


def revocation_batch(fleet: Fleet, tag: str) -> dict[str, str]:
    """One configuration on node1 and node2 for each way a key leaves: its public key by
    kind. The expiring one is past its validity, the cut-off one has no quota: the next sync
    cuts both off."""
    today = date.today()
    account(fleet, f"ntrv{tag}")
    account(fleet, f"ntdel{tag}")
    on = ["node1", "node2"]
    keys = {
        "delete": add_unpushed(fleet, f"ntdel{tag}-1", f"ntdel{tag}", on),
        "disable": add_unpushed(fleet, f"ntrv{tag}-dis", f"ntrv{tag}", on),
        "cut-off": add_unpushed(fleet, f"ntrv{tag}-cut", f"ntrv{tag}", on, quota_bytes=0),
        "expiry": add_unpushed(
            fleet, f"ntrv{tag}-exp", f"ntrv{tag}", on, valid_until=today - timedelta(days=1)
        ),
        "retire": add_unpushed(fleet, f"ntrv{tag}-ret", f"ntrv{tag}", on),
    }
    assert push_service.push(fleet, on).ok
    return keys


def revoke_all(fleet: Fleet, tag: str, point: str) -> None:
    """Each revocation, interrupted at ``point`` (a node being unreachable is the caller's)."""
    operations = [
        (peers_service, lambda: peers_service.delete_account(fleet, f"ntdel{tag}")),
        (
            peers_service,
            lambda: peers_service.set_enabled(
                fleet, [f"ntrv{tag}-dis"], False, DisabledReason.OPERATOR
            ),
        ),
        (keys_service, lambda: keys_service.rotate_peer(fleet, f"ntrv{tag}-ret", grace_seconds=0)),
        (sync_service, lambda: sync_service.sync(fleet)),  # the cut-off and the expiry
    ]
    for module, operation in operations:
        with pytest.MonkeyPatch.context() as patch, contextlib.suppress(Killed):
            if point == "before the push":
                patch.setattr(module, "push", die)
            elif point == "after the node applied":
                patch.setattr(push_service, "_settle", die)
            operation()


@pytest.mark.parametrize(
    "point", ["before the push", "a node unreachable", "after the node applied"]
)
def test_an_interrupted_revocation_never_leaves_a_key_the_store_lost_track_of(
    lab: Lab, layout, fleet: Fleet, point: str
) -> None:
    tag = {"before the push": "a", "a node unreachable": "b", "after the node applied": "c"}[point]
    keys = revocation_batch(fleet, tag)
    retired = keys["retire"]
    try:
        with unreachable(layout, 1) if point == "a node unreachable" else contextlib.nullcontext():
            revoke_all(fleet, tag, point)
        # The store: the revocations happened, whatever the nodes heard.
        store = fleet.store
        assert store.configurations(account=f"ntdel{tag}") == []
        states = {c.name: c for c in store.configurations(account=f"ntrv{tag}")}
        assert not states[f"ntrv{tag}-dis"].enabled
        assert states[f"ntrv{tag}-cut"].disabled_reason == DisabledReason.OVER_QUOTA
        assert states[f"ntrv{tag}-exp"].disabled_reason == DisabledReason.EXPIRED
        assert states[f"ntrv{tag}-ret"].public_key != retired
        # The nodes: every live key is placed or still being removed; each revoked key still
        # live somewhere has its removal pending there.
        assert unaccounted(lab, layout, fleet) == {}
        pending = store.pending_removals()
        for index, node in enumerate(("node1", "node2")):
            live = set(transfer(lab, layout, index))
            for kind, key in keys.items():
                if key in live:
                    assert key in pending.get(node, set()), (kind, node)
        if point != "after the node applied":
            assert keys["delete"] in set(transfer(lab, layout, 1))  # it did outlive the push
        # The next sync finishes every removal.
        converged = sync_service.sync(fleet)
        assert converged.ok, converged.as_dict()
        assert fleet.store.pending_removals() == {}
        for index in range(len(NODES)):
            assert not set(keys.values()) & set(transfer(lab, layout, index))
        new_key = fleet.store.configuration(f"ntrv{tag}-ret").public_key
        assert all(new_key in transfer(lab, layout, i) for i in (0, 1))
        assert usage_check(fleet) == []
    finally:
        names = [c.name for c in fleet.store.configurations(account=f"ntrv{tag}")]
        peers_service.remove_configurations(fleet, names)
        assert unaccounted(lab, layout, fleet) == {}


def killed_wgfleet(lab: Lab, patch: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`wgfleet ARGS` in a process that SIGKILLs itself when it reaches ``patch`` (a module
    attribute, replaced)."""
    module, _, name = patch.rpartition(".")
    code = textwrap.dedent(f"""
        import os, signal, sys
        import {module} as target
        setattr(target, {name!r}, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
        from orchestrator.cli import main
        sys.exit(main(["--config", {str(lab.config_file)!r}, *{list(args)!r}]))
    """)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=180
    )


def test_a_killed_account_deletion_is_finished_by_the_next_sync_and_leaves_no_trace(
    lab: Lab, layout, fleet: Fleet
) -> None:
    keys = {}
    for user, point in (
        ("ntkilla", "orchestrator.service.peers.push"),  # right after the store's commit
        ("ntkillb", "orchestrator.service.push._settle"),  # after the node applied the push
    ):
        account(fleet, user)
        made = peers_service.add_configuration(fleet, user, nodes=["node3"], name=f"{user}-1")
        assert made.push.ok
        keys[user] = made.configuration.public_key
        killed = killed_wgfleet(lab, point, "accounts", "delete", user, "--yes")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert user not in {a.username for a in fleet.store.accounts()}
        assert keys[user] in fleet.store.pending_removals()["node3"]
        # Killed before the push, the key still works on the node, and the store knows it;
        # killed after the node applied the push, it is gone and only the store's
        # confirmation is missing.
        assert (keys[user] in set(transfer(lab, layout, 2))) == (user == "ntkilla")
        assert unaccounted(lab, layout, fleet) == {}
    synced = wgfleet(lab, "--json", "sync")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["removals_pending"] == {}
    assert fleet.store.pending_removals() == {}
    assert not set(keys.values()) & set(transfer(lab, layout, 2))
    # Confirmed, then scrubbed: neither the username nor the key is in the store's files.
    for path in Path(lab.settings.data_dir).glob("wgfleet.db*"):
        raw = path.read_bytes()
        for trace in (b"ntkilla", b"ntkillb", *(k.encode() for k in keys.values())):
            assert trace not in raw, f"{trace!r} in {path.name}"
