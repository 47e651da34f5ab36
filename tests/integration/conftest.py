"""Fixtures of the integration tests that need deployed lab nodes (the session lab of
tests/conftest.py, deployed once if the deploy tests did not already)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.core.lab_layout import plan_layout
from orchestrator.service.context import Fleet, open_fleet
from tests.conftest import LAB_CLIENTS, LAB_NODES, Lab, deploy_fleet


@pytest.fixture(scope="module")
def layout(lab: Lab):
    return plan_layout(lab.settings.lab.name, lab.settings.lab.subnet, LAB_NODES, LAB_CLIENTS)


@pytest.fixture(scope="module")
def deployed(lab: Lab) -> None:
    with open_fleet(lab.settings) as fleet:
        if len(fleet.store.nodes()) == LAB_NODES:
            return
    result = deploy_fleet(lab.settings)
    assert result.ok, result.as_dict()


@pytest.fixture
def fleet(lab: Lab, deployed: None) -> Iterator[Fleet]:
    with open_fleet(lab.settings) as opened:
        # Tests drive the writing use cases directly, beside `wgfleet` commands they start in
        # other processes (which take the real fleet lock): this session may write without
        # holding the lock, so those commands are not refused as busy.
        opened.writes = True
        yield opened
