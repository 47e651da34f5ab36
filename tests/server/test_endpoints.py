"""Every endpoint of the real server, called over loopback with a token of a scope that may."""

from __future__ import annotations

import sqlite3
from datetime import date

from orchestrator.core.tokens import ENDPOINT_SCOPES
from orchestrator.service import catalog
from orchestrator.service.context import open_fleet
from orchestrator.service.lock import fleet_lock
from tests.server.calls import (
    CALLS,
    NEW_ACCOUNT,
    NEW_CONFIGURATION,
    NEW_CONFIGURATIONS,
    NEW_TOPUP,
)
from tests.server.conftest import METRICS_BODY, Running
from tests.tui.conftest import GIB, dump

PROBLEM = "application/problem+json"


def test_the_openapi_document_lists_exactly_the_routes_of_the_scope_table(
    running: Running,
) -> None:
    with running.client() as anonymous:
        answer = anonymous.get("/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    routes = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert routes == set(ENDPOINT_SCOPES) == set(CALLS)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_create_export_and_delete_an_account(running: Running) -> None:
    with running.as_scope("provision") as app:
        made = app.post("/v1/accounts", json={**NEW_ACCOUNT, "contact": "+10000000009"})
        assert made.status_code == 201, made.text
        assert made.json() == {
            "username": "dave",
            "device_id": "device-d",
            "contact": "+10000000009",
            "pending_nodes": [],
        }
        again = app.post("/v1/accounts", json=NEW_ACCOUNT)
        assert again.status_code == 409
        assert again.headers["content-type"] == PROBLEM
        assert again.json()["exit_code"] == 1

        export = app.get("/v1/accounts/alice/export")
        assert export.status_code == 200
        data = export.json()
        assert data["account"]["username"] == "alice"
        assert "password-a" not in export.text and "scrypt$" not in str(data["account"])
        assert sorted(c["name"] for c in data["configurations"]) == ["alice-1", "alice-2"]

        gone = app.delete("/v1/accounts/carol")
        assert gone.status_code == 200
        assert gone.json()["removed_configurations"] == ["carol-1"]
        # carol-1 was on every node, which never answer here: all three wait for a push.
        assert gone.json()["pending_nodes"] == ["node1", "node2", "node3"]
        assert app.get("/v1/accounts/carol/export").status_code == 404
        missing = app.delete("/v1/accounts/carol")
        assert missing.status_code == 404
        assert missing.json()["exit_code"] == 2
    assert ("node1", "node2", "node3") in running.written


def test_bad_account_fields_are_refused_with_a_problem_and_nothing_written(
    running: Running,
) -> None:
    before = dump(running.settings)
    with running.as_scope("provision") as app:
        schema = app.post("/v1/accounts", json={**NEW_ACCOUNT, "username": "Bad Name"})
        assert schema.status_code == 422
        assert schema.json()["detail"].startswith("body.username")
        unknown = app.post("/v1/accounts", json={**NEW_ACCOUNT, "email": "x@example.invalid"})
        assert unknown.status_code == 422
        service = app.post("/v1/accounts", json={**NEW_ACCOUNT, "device_id": "a\x01b"})
        assert service.status_code == 400
        assert service.json() == {
            "type": "https://wgfleet.invalid/problems/bad-input",
            "title": "bad input",
            "status": 400,
            "detail": "device id 'a\\x01b': at most 255 printable characters",
            "exit_code": 2,
        }
    assert dump(running.settings) == before


def test_a_configuration_is_handed_out_once_with_its_qr_code(running: Running) -> None:
    with running.as_scope("provision") as app:
        made = app.post("/v1/configurations", json=NEW_CONFIGURATION)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["name"], body["account"], body["nodes"], body["plan"]) == (
        "bob-9",
        "bob",
        ["node1"],
        "basic",
    )
    config = body["client_configs"]["node1"]
    assert "[Interface]" in config and "PrivateKey = " in config
    assert body["qr_svg"]["node1"].startswith("<svg") and "</svg>" in body["qr_svg"]["node1"]
    assert body["pending_nodes"] == ["node1"]
    private_key = config.split("PrivateKey = ", 1)[1].split()[0]
    # The answer was the only copy: the store's files hold no trace of the private key.
    db = running.settings.data_dir / "wgfleet.db"
    files = [db, db.with_name(db.name + "-wal")]
    assert all(private_key.encode() not in f.read_bytes() for f in files if f.exists())
    with running.as_scope("read") as reader:
        status = reader.get("/v1/configurations/bob-9").json()
    assert "client_configs" not in status and private_key not in str(status)


def test_many_configurations_in_one_request_all_or_none(running: Running) -> None:
    with running.as_scope("provision") as app:
        made = app.post("/v1/configurations/batch", json=NEW_CONFIGURATIONS)
        assert made.status_code == 201, made.text
        body = made.json()
        rows = [(c["account"], c["nodes"]) for c in body["configurations"]]
        assert rows == [
            ("bob", ["node1", "node2"]),
            ("carol", ["node1", "node2", "node3"]),  # no nodes given: every node
            ("alice", ["node2"]),
        ]
        assert body["configurations"][1]["name"] == "carol-9"
        for config in body["configurations"]:
            assert sorted(config["client_configs"]) == config["nodes"]
            assert all(svg.startswith("<svg") for svg in config["qr_svg"].values())
        assert body["pending_nodes"] == ["node1", "node2", "node3"]
        # A bad row refuses the whole batch, naming it; nothing of it is made.
        bad = {"configurations": [{"account": "bob"}, {"account": "bob", "nodes": ["node9"]}]}
        refused = app.post("/v1/configurations/batch", json=bad)
        assert refused.status_code == 400, refused.text
        assert "row 2" in refused.json()["detail"] and "node9" in refused.json()["detail"]
        assert "nothing made" in refused.json()["detail"]
    with open_fleet(running.settings) as fleet:
        names = fleet.store.configuration_names("bob-")
    assert len(names) == 3, names  # bob-1, bob-2 and the batch's: nothing of the bad batch


def test_a_configuration_for_an_unknown_account_or_plan_is_not_found(running: Running) -> None:
    with running.as_scope("provision") as app:
        nobody = app.post("/v1/configurations", json={**NEW_CONFIGURATION, "account": "zed"})
        no_plan = app.post("/v1/configurations", json={**NEW_CONFIGURATION, "plan": "gold"})
        no_node = app.post("/v1/configurations", json={**NEW_CONFIGURATION, "nodes": ["node9"]})
    assert (nobody.status_code, no_plan.status_code, no_node.status_code) == (404, 404, 400)


def test_a_configurations_status_says_plan_quota_use_and_state(running: Running) -> None:
    with running.as_scope("billing") as billing:
        alice = billing.get("/v1/configurations/alice-2")
        bob = billing.get("/v1/configurations/bob-2")
        missing = billing.get("/v1/configurations/nobody-1")
    assert alice.status_code == 200
    status = alice.json()
    assert status["plan"] is None and status["valid_until"] is None
    assert (status["quota_bytes"], status["used_bytes"]) == (GIB + GIB // 2, GIB + GIB // 2)
    assert status["remaining_bytes"] == 0
    assert (status["enabled"], status["disabled_reason"]) == (True, None)
    assert set(status) == {
        "name",
        "account",
        "plan",
        "valid_until",
        "period_start",
        "quota_bytes",
        "used_bytes",
        "remaining_bytes",
        "enabled",
        "disabled_reason",
        "nodes",
    }
    assert (bob.json()["enabled"], bob.json()["disabled_reason"]) == (False, "operator")
    assert missing.status_code == 404 and missing.json()["title"] == "not found"


def test_enable_disable_and_delete_a_configuration(running: Running) -> None:
    with running.as_scope("provision") as app:
        on = app.post("/v1/configurations/bob-2/enable")
        off = app.post("/v1/configurations/bob-1/disable")
        gone = app.delete("/v1/configurations/alice-2")
        missing = app.post("/v1/configurations/nobody-1/enable")
    assert on.json() == {
        "name": "bob-2",
        "enabled": True,
        "disabled_reason": None,
        "pending_nodes": ["node2"],
    }
    assert (off.json()["enabled"], off.json()["disabled_reason"]) == (False, "operator")
    assert gone.status_code == 200 and gone.json()["name"] == "alice-2"
    assert missing.status_code == 404
    with open_fleet(running.settings) as fleet:
        states = {c.name: c.enabled for c in catalog.configurations(fleet)}
    assert states["bob-2"] and not states["bob-1"] and "alice-2" not in states


def test_a_topup_replayed_returns_the_original_and_a_conflict_grants_nothing(
    running: Running,
) -> None:
    with running.as_scope("billing") as billing:
        first = billing.post("/v1/topups", json=NEW_TOPUP)
        replay = billing.post("/v1/topups", json=NEW_TOPUP)
        granted = dump(running.settings)["totals"]
        conflict = billing.post("/v1/topups", json={**NEW_TOPUP, "amount": "5.99"})
        elsewhere = billing.post("/v1/topups", json={**NEW_TOPUP, "configuration": "bob-1"})
        both = billing.post("/v1/topups", json={**NEW_TOPUP, "invoice": "INV-7", "plan": "basic"})
    assert first.status_code == 201
    assert first.json()["created"] is True
    assert replay.status_code == 200
    assert {**replay.json(), "created": True} == first.json()
    assert conflict.status_code == 409 and elsewhere.status_code == 409
    assert conflict.json()["exit_code"] == 2
    assert "INV-100 was recorded before with amount" in conflict.json()["detail"]
    assert both.status_code == 400
    assert dump(running.settings)["totals"] == granted
    with open_fleet(running.settings) as fleet:
        recorded = [t for t in fleet.store.topups() if t.invoice == "INV-100"]
    assert len(recorded) == 1 and recorded[0].bytes_granted == 1000


def test_a_topup_is_granted_while_a_sync_holds_the_fleet_lock(running: Running) -> None:
    """A top-up's session takes no fleet lock (`writes_store`): held here as a sync holds it,
    a writing session would answer 503 after 30 s; the top-up is granted and recorded."""
    with fleet_lock(running.settings), running.as_scope("billing") as billing:
        granted = billing.post("/v1/topups", json=NEW_TOPUP)
    assert granted.status_code == 201, granted.text
    with open_fleet(running.settings) as fleet:
        recorded = [t for t in fleet.store.topups() if t.invoice == NEW_TOPUP["invoice"]]
    assert len(recorded) == 1


def test_plans_health_and_metrics(running: Running) -> None:
    with running.as_scope("read") as reader:
        plans = reader.get("/v1/plans")
        health = reader.get("/v1/health")
    assert plans.json() == [
        {
            "name": "basic",
            "quota_bytes": 10 * GIB,
            "reset": "monthly",
            "anchor_day": 1,
            "price": "4.99",
            "validity_days": None,
            "valid_until": None,
        }
    ]
    state = health.json()
    assert [n["name"] for n in state["nodes"]] == ["node1", "node2", "node3"]
    node1 = state["nodes"][0]
    assert (node1["peers_total"], node1["peers_enabled"]) == (3, 3)
    assert node1["key_age_days"] == (date.today() - date(2024, 1, 1)).days
    # The seeded node keys are years old: past any maximum age.
    assert state["overdue_node_keys"] == ["node1", "node2", "node3"]
    assert state["overdue_keys"]["node"] == 3
    with running.as_scope("metrics") as scraper:
        metrics = scraper.get("/metrics")
    assert metrics.status_code == 200 and metrics.content == METRICS_BODY


def test_each_write_names_its_token_in_the_trail_and_reaches_after_write(
    running: Running,
) -> None:
    with running.as_scope("billing") as billing:
        assert billing.post("/v1/topups", json=NEW_TOPUP).status_code == 201
    with open_fleet(running.settings) as fleet:
        newest = catalog.operations(fleet, 1)[0]
    assert (newest.operation, newest.actor, newest.outcome) == (
        "api POST /v1/topups",
        "billing-token",
        "ok",
    )
    assert running.tokens["billing"] not in str(newest)
    assert running.written == [()]


def test_the_store_holds_no_token_secret(running: Running) -> None:
    db = running.settings.data_dir / "wgfleet.db"
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT * FROM api_tokens").fetchall()
    secrets = [t.rsplit("_", 1)[1] for t in running.tokens.values()]
    assert len(rows) == 4
    assert not any(s in str(rows) for s in secrets)
