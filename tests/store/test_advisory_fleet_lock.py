"""The fleet lock on a PostgreSQL store: advisory locks any controller sees (two data
directories, one database), shards beside each other, and a SIGKILLed holder's lock gone with
its connection."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.core.shard import Shard
from orchestrator.errors import FleetBusy
from orchestrator.service.lock import fleet_lock
from orchestrator.settings import Settings, settings_from_mapping
from tests.pgserver import fresh_database


@pytest.fixture
def controllers(postgres_server: str, tmp_path: Path) -> tuple[Settings, ...]:
    url = fresh_database(postgres_server)
    made = [
        settings_from_mapping(
            {"data_dir": str(tmp_path / name), "store_url": url}, "test settings", tmp_path
        )
        for name in ("a", "b", "c")
    ]
    return tuple(made)


def test_one_controller_holding_the_fleet_lock_keeps_the_other_out(
    controllers: tuple[Settings, ...],
) -> None:
    a, b, _ = controllers
    with fleet_lock(a):
        with pytest.raises(FleetBusy, match="another controller"), fleet_lock(b):
            pass
        with pytest.raises(FleetBusy), fleet_lock(b, shard=Shard(1, 2)):
            pass
    with fleet_lock(b):
        pass


def test_shards_run_side_by_side_and_a_whole_fleet_run_waits_for_them(
    controllers: tuple[Settings, ...],
) -> None:
    a, b, c = controllers
    with fleet_lock(a, shard=Shard(1, 2)), fleet_lock(b, shard=Shard(2, 2)):
        with pytest.raises(FleetBusy), fleet_lock(c, shard=Shard(1, 2)):
            pass
        with pytest.raises(FleetBusy), fleet_lock(c, wait=True, timeout=0.5):
            pass


def test_a_killed_controllers_lock_goes_with_its_connection(
    controllers: tuple[Settings, ...], tmp_path: Path
) -> None:
    a, b, _ = controllers
    holder = textwrap.dedent(
        f"""
        import sys, time
        from orchestrator.service.lock import fleet_lock
        from orchestrator.settings import settings_from_mapping
        from pathlib import Path
        s = settings_from_mapping({{"data_dir": {str(a.data_dir)!r}, "store_url": sys.argv[1]}},
                                  "t", Path({str(tmp_path)!r}))
        with fleet_lock(s):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder, a.store_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        with pytest.raises(FleetBusy), fleet_lock(b):
            pass
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        with fleet_lock(b, wait=True, timeout=10):
            pass
    finally:
        process.kill()
        process.wait(timeout=10)
