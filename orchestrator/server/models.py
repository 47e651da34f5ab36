"""The API's request and response bodies, so the OpenAPI document says exactly what goes in
and comes out. Field bounds repeat the service's own checks where the schema can say them;
the service still decides (a value the schema lets through can still be a 400)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.core.input_limits import MAX_BYTES

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
INVOICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
AMOUNT_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,4})?$"


Answer = TypeVar("Answer", bound=BaseModel)


def answer(model: type[Answer], source: object, **extra: Any) -> Answer:
    """``model`` filled from ``source``'s attributes of the same names (a service result),
    and ``extra``; validated, so an answer never leaves in another shape than its schema."""
    found = {name: getattr(source, name) for name in model.model_fields if hasattr(source, name)}
    return model.model_validate({**found, **extra})


class Body(BaseModel):
    # A field the API does not know is refused (422), not ignored: a typo never half-applies.
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details, with the CLI's exit code for the same error."""

    type: str
    title: str
    status: int
    detail: str
    exit_code: int


class Written(BaseModel):
    """What every write answers besides its result: nodes that have not taken the store's
    current state yet (a push failed or is queued); they converge on the next push or sync."""

    pending_nodes: list[str]


# --- accounts -----------------------------------------------------------------------------------


class NewAccount(Body):
    username: str = Field(pattern=NAME_PATTERN)
    password: str = Field(min_length=8, max_length=1024)
    device_id: str = Field(min_length=1, max_length=255)
    contact: str | None = Field(default=None, max_length=64)


class AccountCreated(Written):
    username: str
    device_id: str
    contact: str | None


class AccountDeleted(Written):
    username: str
    removed_configurations: list[str]
    # False: another reader held an old snapshot of a SQLite store; `wgfleet db scrub` ends it.
    scrubbed: bool


# --- configurations -----------------------------------------------------------------------------


class NewConfiguration(Body):
    account: str = Field(pattern=NAME_PATTERN)
    nodes: list[str] | None = Field(
        default=None, max_length=1000, description="node names; all nodes when left out"
    )
    plan: str | None = Field(default=None, max_length=64)
    quota_bytes: int | None = Field(default=None, ge=0, le=MAX_BYTES)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    split_tunnel: str | None = Field(default=None, max_length=2000)


class CreatedConfiguration(BaseModel):
    name: str
    account: str
    nodes: list[str]
    plan: str | None
    quota_bytes: int | None
    valid_until: date | None
    client_configs: dict[str, str] = Field(
        description="node -> wg-quick client configuration with the private key: the only "
        "copy, never retrievable again"
    )
    qr_svg: dict[str, str] = Field(description="node -> the same configuration as a QR code (SVG)")


class ConfigurationCreated(CreatedConfiguration, Written):
    pass


# A request body of 64 KiB holds a few hundred rows; more go in several requests.
MAX_BATCH_ROWS = 500


class NewConfigurations(Body):
    configurations: list[NewConfiguration] = Field(min_length=1, max_length=MAX_BATCH_ROWS)

    def as_batch(self) -> str:
        """The rows as `peers add --from` reads them (JSON is YAML): one code path for both."""
        rows = [
            {
                "account": row.account,
                "nodes": row.nodes if row.nodes is not None else "all",
                "name": row.name,
                "quota": row.quota_bytes,
                "plan": row.plan,
                "split_tunnel": row.split_tunnel,
            }
            for row in self.configurations
        ]
        kept = [{k: v for k, v in row.items() if v is not None} for row in rows]
        return json.dumps({"configurations": kept}, indent=1)


class ConfigurationsCreated(Written):
    configurations: list[CreatedConfiguration]


class ConfigurationStatus(BaseModel):
    name: str
    account: str
    plan: str | None
    valid_until: date | None
    period_start: date
    quota_bytes: int | None = Field(description="this billing period's allowance; null: unmetered")
    used_bytes: int
    remaining_bytes: int | None
    enabled: bool
    disabled_reason: str | None = Field(description="operator, over_quota or expired")
    nodes: list[str]


class ConfigurationChanged(Written):
    name: str
    enabled: bool
    disabled_reason: str | None


class ConfigurationDeleted(Written):
    name: str


# --- billing ------------------------------------------------------------------------------------


class NewTopUp(Body):
    configuration: str = Field(pattern=NAME_PATTERN)
    invoice: str = Field(pattern=INVOICE_PATTERN)
    amount: str = Field(pattern=AMOUNT_PATTERN)
    # "bytes" on the wire; the use case's own name in model_dump().
    bytes_granted: int | None = Field(default=None, ge=0, le=MAX_BYTES, alias="bytes")
    plan: str | None = Field(default=None, max_length=64)


class TopUpRecorded(Written):
    invoice: str
    configuration: str | None
    amount: str
    bytes_granted: int
    purchased_on: date
    created: bool = Field(description="false: this invoice was recorded before; nothing new")


class PlanOut(BaseModel):
    name: str
    quota_bytes: int
    reset: str
    anchor_day: int
    price: str | None
    validity_days: int | None
    valid_until: date | None


# --- health -------------------------------------------------------------------------------------


class NodeHealth(BaseModel):
    name: str
    peers_enabled: int
    peers_total: int
    pending_push: bool
    last_push_ok: bool | None
    last_sync_ok: bool | None
    last_audit_ok: bool | None
    key_age_days: int | None


class Health(BaseModel):
    nodes: list[NodeHealth]
    pending_nodes: list[str]
    overdue_keys: dict[str, int] = Field(description="key kind -> how many are overdue")
    overdue_node_keys: list[str]
