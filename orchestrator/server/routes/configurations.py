"""Configurations: create one (its client config and QR code answered once), its status,
enable, disable, delete."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from fastapi import APIRouter

from orchestrator.core.models import DisabledReason
from orchestrator.server.auth import Caller, CallerDep
from orchestrator.server.models import (
    ConfigurationChanged,
    ConfigurationCreated,
    ConfigurationDeleted,
    ConfigurationsCreated,
    ConfigurationStatus,
    CreatedConfiguration,
    NewConfiguration,
    NewConfigurations,
    answer,
)
from orchestrator.server.qr import qr_svg
from orchestrator.server.routes.common import PathName, problems
from orchestrator.service import overview, peer_batch, peers
from orchestrator.service.peer_batch import BatchConfiguration
from orchestrator.service.peers import NewConfiguration as NewConfigurationMade

Made = TypeVar("Made", bound=CreatedConfiguration)
NewConfigurationResult = NewConfigurationMade | BatchConfiguration

router = APIRouter(tags=["configurations"])


@router.post(
    "/v1/configurations",
    status_code=201,
    response_model=ConfigurationCreated,
    responses=problems(400, 404, 409, 507),
    description="Keys are made on the controller; the client's private key is in this answer "
    "only (client_configs, qr_svg) and kept nowhere.",
)
def create_configuration(body: NewConfiguration, caller: CallerDep) -> ConfigurationCreated:
    with caller.writing() as fleet:
        # Committed only: the push worker takes it to the nodes (pending_nodes says which).
        made = peers.add_configuration(fleet, **body.model_dump(), push_now=False)
    return _created(ConfigurationCreated, made, pending_nodes=caller.pending)


@router.post(
    "/v1/configurations/batch",
    status_code=201,
    response_model=ConfigurationsCreated,
    responses=problems(400, 404, 409, 507),
    description="Many configurations in one store transaction, all or none (a bad row is a "
    "400 naming the row, field and value); each node then takes them in one push. The "
    "answer is the only copy of their client configurations.",
)
def create_configurations(body: NewConfigurations, caller: CallerDep) -> ConfigurationsCreated:
    with caller.writing() as fleet:
        made = peer_batch.add_configurations(
            fleet, body.as_batch(), "configurations", push_now=False
        )
    created = [_created(CreatedConfiguration, item) for item in made.created]
    return ConfigurationsCreated(configurations=created, pending_nodes=caller.pending)


def _created(model: type[Made], made: NewConfigurationResult, **extra: Any) -> Made:
    """A new configuration's answer: its client configs and their QR codes, handed out once."""
    return answer(
        model,
        made.configuration,
        client_configs=dict(made.client_configs),
        qr_svg={node: qr_svg(text) for node, text in made.client_configs.items()},
        **extra,
    )


@router.get(
    "/v1/configurations/{name}",
    response_model=ConfigurationStatus,
    responses=problems(404),
    description="Plan, validity, this period's quota, used and remaining bytes, enabled or "
    "why not. Nothing per session and no time of use: the store keeps none.",
)
def configuration_status(name: PathName, caller: CallerDep) -> ConfigurationStatus:
    with caller.reading() as fleet:
        status = overview.configuration_status(fleet, name, date.today())
    return ConfigurationStatus(**status.as_dict())


def _switch(name: str, reason: DisabledReason | None, caller: Caller) -> ConfigurationChanged:
    """Enable (``reason`` None) or disable the configuration, and say so."""
    with caller.writing() as fleet:
        peers.set_enabled(fleet, [name], reason is None, reason)
    return ConfigurationChanged(
        name=name,
        enabled=reason is None,
        disabled_reason=reason.value if reason else None,
        pending_nodes=caller.pending,
    )


@router.post(
    "/v1/configurations/{name}/enable",
    response_model=ConfigurationChanged,
    responses=problems(404),
    description="On again, whatever switched it off; a sync cuts it off again if it is over "
    "its quota or past its validity.",
)
def enable_configuration(name: PathName, caller: CallerDep) -> ConfigurationChanged:
    return _switch(name, None, caller)


@router.post(
    "/v1/configurations/{name}/disable",
    response_model=ConfigurationChanged,
    responses=problems(404),
    description="Disabled on the provider's side (reason `operator`): a top-up does not turn "
    "it back on; enable does.",
)
def disable_configuration(name: PathName, caller: CallerDep) -> ConfigurationChanged:
    return _switch(name, DisabledReason.OPERATOR, caller)


@router.delete(
    "/v1/configurations/{name}", response_model=ConfigurationDeleted, responses=problems(404)
)
def delete_configuration(name: PathName, caller: CallerDep) -> ConfigurationDeleted:
    with caller.writing() as fleet:
        peers.remove_configurations(fleet, [name])
    return ConfigurationDeleted(name=name, pending_nodes=caller.pending)
