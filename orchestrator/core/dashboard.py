"""The dashboard read model: the fleet overview and the alerts judged from it (core.alerts).

Pure. It keeps what the alerts were judged from, so a reachability check that finishes later
re-judges them (``with_reachability``) without reading the store again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.alerts import (
    Alert,
    AlertKind,
    AlertRules,
    Reachability,
    fleet_alerts,
    node_alerts,
)
from orchestrator.core.keys import KeyAge, KeyKind
from orchestrator.core.overview import ConfigurationRow, FleetOverview


@dataclass(frozen=True)
class FleetDashboard:
    overview: FleetOverview
    alerts: tuple[Alert, ...]
    # node -> its last reachability check (empty until one ran)
    reachability: Mapping[str, Reachability]
    # node -> the kinds of alert it raises itself (its row is coloured by them)
    node_alerts: Mapping[str, frozenset[AlertKind]]
    # What the alerts were judged from.
    rows: Sequence[ConfigurationRow] = field(repr=False)
    keys: Sequence[KeyAge] = field(repr=False)
    rules: AlertRules = field(repr=False)

    def with_reachability(self, reachability: Mapping[str, Reachability]) -> FleetDashboard:
        """The same fleet judged again with a newer reachability check."""
        return judge(self.overview, self.rows, self.keys, self.rules, reachability)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alerts": [a.as_dict() for a in self.alerts],
            "reachability": {
                name: {"reachable": r.reachable, "checked_at": r.checked_at, "error": r.error}
                for name, r in sorted(self.reachability.items())
            },
        }


def judge(
    overview: FleetOverview,
    rows: Sequence[ConfigurationRow],
    keys: Sequence[KeyAge],
    rules: AlertRules,
    reachability: Mapping[str, Reachability],
) -> FleetDashboard:
    """The dashboard of ``overview``: every alert, and each node's own kinds of alert."""
    reach = dict(reachability)
    alerts = fleet_alerts(overview.nodes, reach, rows, keys, rules)
    overdue_nodes = {k.record.subject for k in keys if k.overdue and k.record.kind == KeyKind.NODE}
    kinds = {
        n.name: frozenset(a.kind for a in node_alerts(n, reach.get(n.name), rules))
        | ({AlertKind.KEY_OVERDUE} if n.name in overdue_nodes else set())
        for n in overview.nodes
    }
    return FleetDashboard(overview, tuple(alerts), reach, kinds, rows, keys, rules)
