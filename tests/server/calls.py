"""One well-formed call per endpoint of the scope table, on the seeded fleet."""

from __future__ import annotations

from collections.abc import Callable

import httpx

Call = Callable[[httpx.Client], httpx.Response]

NEW_ACCOUNT = {"username": "dave", "password": "password-d", "device_id": "device-d"}
NEW_CONFIGURATION = {"account": "bob", "nodes": ["node1"], "plan": "basic", "name": "bob-9"}
NEW_CONFIGURATIONS = {
    "configurations": [
        {"account": "bob", "nodes": ["node1", "node2"], "plan": "basic"},
        {"account": "carol", "quota_bytes": 10**9, "name": "carol-9"},
        {"account": "alice", "nodes": ["node2"]},
    ]
}
NEW_TOPUP = {"configuration": "alice-2", "invoice": "INV-100", "amount": "4.99", "bytes": 1000}

CALLS: dict[tuple[str, str], Call] = {
    ("POST", "/v1/accounts"): lambda c: c.post("/v1/accounts", json=NEW_ACCOUNT),
    ("GET", "/v1/accounts/{username}/export"): lambda c: c.get("/v1/accounts/alice/export"),
    ("DELETE", "/v1/accounts/{username}"): lambda c: c.delete("/v1/accounts/carol"),
    ("POST", "/v1/configurations"): lambda c: c.post("/v1/configurations", json=NEW_CONFIGURATION),
    ("POST", "/v1/configurations/batch"): lambda c: c.post(
        "/v1/configurations/batch", json=NEW_CONFIGURATIONS
    ),
    ("GET", "/v1/configurations/{name}"): lambda c: c.get("/v1/configurations/alice-1"),
    ("POST", "/v1/configurations/{name}/enable"): lambda c: c.post(
        "/v1/configurations/bob-2/enable"
    ),
    ("POST", "/v1/configurations/{name}/disable"): lambda c: c.post(
        "/v1/configurations/bob-1/disable"
    ),
    ("DELETE", "/v1/configurations/{name}"): lambda c: c.delete("/v1/configurations/alice-2"),
    ("POST", "/v1/topups"): lambda c: c.post("/v1/topups", json=NEW_TOPUP),
    ("GET", "/v1/plans"): lambda c: c.get("/v1/plans"),
    ("GET", "/v1/health"): lambda c: c.get("/v1/health"),
    ("GET", "/metrics"): lambda c: c.get("/metrics"),
}
