"""The deploy's fast path: when may a node skip the full Ansible run?"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from orchestrator.core.converge import (
    NodeRecord,
    drifted_sections,
    inputs_fingerprint,
    reported_public_keys,
    state_fingerprint,
    verdict,
)

TODAY = date(2026, 12, 1)
KEY = "x" * 43 + "="
PROBE = (
    "/etc\t/etc dir 0755 0:0\n"
    "/etc/ssh\t/etc/ssh/sshd_config file 0644 0:0 10 abc\n"
    f"wireguard\tpublic-key wg0 {KEY}\n"
    "units\tactive nftables.service active\n"
)


def record(**changes: object) -> NodeRecord:
    base = {"inputs": "in", "state": state_fingerprint(PROBE), "full_run_on": TODAY}
    return NodeRecord(**{**base, **changes})  # type: ignore[arg-type]


def decide(rec: NodeRecord | None, probe: str | None = PROBE, **kwargs: object):
    options = {"today": TODAY, "full_every_days": 7, "key_matches": True, **kwargs}
    state = state_fingerprint(probe) if probe is not None else None
    return verdict("node1", rec, "in", state, **options)  # type: ignore[arg-type]


def test_a_node_unchanged_since_its_full_run_is_verified() -> None:
    assert decide(record()).converged
    assert decide(record()).reason == "verified"


@pytest.mark.parametrize(
    ("rec", "probe", "options", "reason"),
    [
        (None, PROBE, {}, "no full run recorded"),
        (record(inputs="other"), PROBE, {}, "roles, playbook or node variables changed"),
        (record(), None, {}, "state could not be read"),
        (record(full_run_on=TODAY - timedelta(days=7)), PROBE, {}, "last full run 7 days ago"),
        (
            record(),
            PROBE.replace("10 abc", "11 abd"),
            {},
            "drift in /etc/ssh",
        ),
        (
            record(),
            PROBE + "/etc/sudoers.d\t/etc/sudoers.d/foreign file 0440 0:0 3 f00\n",
            {},
            "drift in /etc/sudoers.d",
        ),
        (record(), PROBE, {"key_matches": False}, "the node's WireGuard key differs"),
    ],
)
def test_any_doubt_means_the_full_run(rec, probe, options, reason) -> None:
    result = decide(rec, probe, **options)
    assert not result.converged
    assert result.reason.startswith(reason)


def test_a_period_of_zero_days_always_runs_in_full() -> None:
    assert not decide(record(), full_every_days=0).converged


def test_a_missing_section_is_drift_too() -> None:
    now = state_fingerprint(PROBE.replace("units\tactive nftables.service active\n", ""))
    assert drifted_sections(state_fingerprint(PROBE), now) == ["units"]


def test_state_lines_need_a_section() -> None:
    with pytest.raises(ValueError, match="without a section"):
        state_fingerprint("no tab here\n")
    with pytest.raises(ValueError, match="printed nothing"):
        state_fingerprint("")


def test_public_keys_come_from_the_wireguard_section() -> None:
    assert reported_public_keys(PROBE) == {"wg0": KEY}


def test_inputs_take_only_the_nodes_own_entry_of_per_node_maps() -> None:
    files = {"roles/x/tasks/main.yml": b"- name: x\n"}
    extravars = {"wgfleet_listen_ports": {"node1": 51820, "node2": 51820}, "other": 1}
    base = inputs_fingerprint("node1", {"a": 1}, extravars, files)
    moved_other = {**extravars, "wgfleet_listen_ports": {"node1": 51820, "node2": 51821}}
    assert inputs_fingerprint("node1", {"a": 1}, moved_other, files) == base
    moved_own = {**extravars, "wgfleet_listen_ports": {"node1": 51821, "node2": 51820}}
    assert inputs_fingerprint("node1", {"a": 1}, moved_own, files) != base
    assert inputs_fingerprint("node1", {"a": 2}, extravars, files) != base
    assert inputs_fingerprint("node1", {"a": 1}, {**extravars, "other": 2}, files) != base
    assert inputs_fingerprint("node1", {"a": 1}, extravars, {"roles/x": b"- name: y\n"}) != base
    renamed = {"roles/y/tasks/main.yml": b"- name: x\n"}
    assert inputs_fingerprint("node1", {"a": 1}, extravars, renamed) != base


def test_records_survive_their_json_form() -> None:
    rec = record()
    assert NodeRecord.from_dict(rec.as_dict()) == rec
