"""wgfleet for Python pipelines: the use cases the CLI and the TUI run, under one import.

Everything here is the service layer itself, not a copy: a pipeline gets the same checks,
transactions, locking and results as `wgfleet` commands. Results are frozen dataclasses with
an ``as_dict()`` that is the command's ``--json`` output. Errors a caller can cause or fix
derive from :class:`WgfleetError` and carry the exit code the CLI would use.

    from orchestrator import api

    settings = api.load_settings("/etc/wgfleet/settings.yml")
    # One session: the store, and the fleet lock cron and the TUI respect (write=True).
    with api.open_fleet(settings, write=True) as fleet:
        plan = api.plan(fleet, "fleet.yml")          # FleetPlan: .pending, .problems, .render()
        if plan.pending and not plan.problems:
            result = api.apply(fleet, "fleet.yml", saved=plan.as_dict())
            assert result.ok, result.as_dict()
        synced = api.sync(fleet)                     # SyncResult: .ok, .failed, .as_dict()
        api.topup(fleet, "alice-1", invoice="INV-1", amount="4.99", plan="basic")
    with api.open_fleet(settings) as fleet:          # readers need no lock
        rows = api.accounts(fleet)

Writers (``apply``, ``sync``, ``push``, ``deploy``, ``audit``, key rotations, account and plan
changes) need a session opened with ``write=True``: called in a read session they raise
``ReadOnlySession`` before touching anything. Readers (``plan``, ``key_status``, the
overviews and listings) run in either. ``fleet.trail`` lists what the session did.

Secrets. :func:`add_configuration` and :func:`rotate_peer` return ``client_configs`` (node ->
wg-quick text holding the client's private key and preshared key), and :func:`rotate_psk`
returns each new ``preshared_key``: exactly once, since wgfleet keeps no copy of a client's
private key. Hand them to the user (a 0600 file, a terminal, the provider's backend over
TLS) and never log them; the results' ``repr`` leaves them out, so an assertion or a log line
printing a result shows no key. :func:`export_account` describes the password hash (held or
not, its scheme), never its value. A store URL's password stays in the settings: errors name
the server and database only (``core.redaction.redact_url`` shows a URL without it).
Preshared keys are sealed in the store under the fleet secret (the settings' ``fleet_secret``
file or the systemd credential ``wgfleet-fleet-secret``); :func:`rotate_fleet_secret` reseals
them all under a new one and returns its key id, never the secret.
"""

from __future__ import annotations

from orchestrator.errors import (
    ConfigError,
    ExitCode,
    FleetBusy,
    NodeError,
    NotFound,
    StoreError,
    UsageError,
    WgfleetError,
)
from orchestrator.service.audit import audit
from orchestrator.service.billing import topup_batch
from orchestrator.service.catalog import (
    accounts,
    configuration_detail,
    configurations,
    nodes,
    plans,
    set_plan,
)
from orchestrator.service.context import Fleet, ReadOnlySession, open_fleet
from orchestrator.service.dashboard import check_reachability, fleet_dashboard
from orchestrator.service.deploy import deploy
from orchestrator.service.fleet_file import (
    ApplyResult,
    FleetPlan,
    PlanRefused,
    apply,
    export,
    plan,
    read_fleet_file,
)
from orchestrator.service.fleet_secret import RotatedFleetSecret, rotate_fleet_secret
from orchestrator.service.host_keys import trust_node
from orchestrator.service.keys import key_status, rotate_peer, rotate_psk
from orchestrator.service.node_keys import finish_node_rotation, rotate_node
from orchestrator.service.overview import (
    accounts_overview,
    configuration_overview,
    fleet_overview,
)
from orchestrator.service.peer_batch import add_configurations
from orchestrator.service.peers import (
    add_account,
    add_configuration,
    delete_account,
    export_account,
    remove_configurations,
    set_enabled,
    topup,
)
from orchestrator.service.push import pending_nodes, push
from orchestrator.service.push_worker import PushWorker
from orchestrator.service.ssh_keys import rotate_ssh_key
from orchestrator.service.sync import sync
from orchestrator.service.tokens import add_token, list_tokens, revoke_token
from orchestrator.service.usage import quota_statuses, usage_check
from orchestrator.settings import Settings, load_settings, settings_from_mapping

__all__ = [
    "ApplyResult",
    "ConfigError",
    "ExitCode",
    "Fleet",
    "FleetBusy",
    "FleetPlan",
    "NodeError",
    "NotFound",
    "PlanRefused",
    "PushWorker",
    "ReadOnlySession",
    "RotatedFleetSecret",
    "Settings",
    "StoreError",
    "UsageError",
    "WgfleetError",
    "accounts",
    "accounts_overview",
    "add_account",
    "add_configuration",
    "add_configurations",
    "add_token",
    "apply",
    "audit",
    "check_reachability",
    "configuration_detail",
    "configuration_overview",
    "configurations",
    "delete_account",
    "deploy",
    "export",
    "export_account",
    "finish_node_rotation",
    "fleet_dashboard",
    "fleet_overview",
    "key_status",
    "list_tokens",
    "load_settings",
    "nodes",
    "open_fleet",
    "pending_nodes",
    "plan",
    "plans",
    "push",
    "quota_statuses",
    "read_fleet_file",
    "remove_configurations",
    "revoke_token",
    "rotate_fleet_secret",
    "rotate_node",
    "rotate_peer",
    "rotate_psk",
    "rotate_ssh_key",
    "set_enabled",
    "set_plan",
    "settings_from_mapping",
    "sync",
    "topup",
    "topup_batch",
    "trust_node",
    "usage_check",
]
