"""Cancelling a run stops it where nothing is half-written: sync writes nothing, a push leaves
the nodes it did not reach pending, an audit gives no verdict for nodes it skipped."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from orchestrator.core.models import Account, Configuration
from orchestrator.errors import Cancelled, ExitCode
from orchestrator.service import audit as audit_service
from orchestrator.service import push as push_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings


def configured(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ops", "!", "noc"))
        fleet.store.add_configuration(
            Configuration(
                "ops-1",
                "ops",
                base64.b64encode(b"k" * 32).decode(),
                None,
                {"node1": ipaddress.IPv4Address("198.19.1.2")},
            )
        )


def test_a_cancelled_sync_writes_nothing(settings: Settings) -> None:
    configured(settings)
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return True

    with open_fleet(settings, write=True) as fleet:
        revisions = fleet.store.node_revisions()
        with pytest.raises(Cancelled) as stopped:
            sync_service.sync(fleet, cancelled=cancelled)
        assert stopped.value.exit_code == ExitCode.INTERRUPTED
        assert "nothing was written" in str(stopped.value)
        assert fleet.store.usage() == [] and fleet.store.node_revisions() == revisions
        assert fleet.store.node_health() == {"node1": (None, None), "node2": (None, None)}
    assert len(asked) == 3  # before each node, and once before the transaction


def test_a_cancelled_push_leaves_the_nodes_it_did_not_reach_pending(settings: Settings) -> None:
    configured(settings)
    with open_fleet(settings, write=True) as fleet:
        result = push_service.push(fleet, cancelled=lambda: True)
        assert [(n.node, n.error) for n in result.nodes] == [
            ("node1", "cancelled before this node; still pending"),
            ("node2", "cancelled before this node; still pending"),
        ]
        assert "node1" in push_service.pending_nodes(fleet)


def test_a_cancelled_audit_gives_no_verdict(settings: Settings) -> None:
    said: list[str] = []
    with open_fleet(settings, write=True) as fleet:
        result = audit_service.audit(fleet, progress=said.append, cancelled=lambda: True)
    assert result.checks == ()
    assert sorted(said) == ["node1: skipped, cancelled", "node2: skipped, cancelled"]
    with open_fleet(settings, write=True) as fleet:
        assert fleet.store.node_audits() == {"node1": None, "node2": None}
