"""Run the project's playbooks through ansible-runner and stream their events.

Artifacts live under the data directory (never in the repo), keep only the last few runs, and
hold no secrets: neither job-event files nor the stdout file are written (events reach us in
memory), env files are suppressed, and every task that touches a secret is ``no_log`` in the
roles.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core.playbook_events import PlayRecap, apply_event
from orchestrator.errors import ConfigError, EnvironmentProblem

KEEP_ARTIFACTS = 5


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int
    recap: PlayRecap
    check: bool


def run_playbook(
    *,
    project_root: Path,
    work_dir: Path,
    inventory: Path | Sequence[Path],
    playbook: str,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    on_update: Callable[[PlayRecap, Mapping[str, Any]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    forks: int = 20,
) -> PlaybookRun:
    """Run ``playbooks/<playbook>`` on ``inventory``; report each event through ``on_update``."""
    try:
        import ansible_runner
    except ImportError:
        raise EnvironmentProblem("ansible-runner is not installed: run .ci/install") from None
    playbook_path = project_root / "playbooks" / playbook
    if not playbook_path.exists():
        raise EnvironmentProblem(f"playbook {playbook_path} is missing from this checkout")
    sources = [inventory] if isinstance(inventory, Path) else list(inventory)
    for source in sources:
        if not source.exists():
            raise ConfigError(str(source), "inventory", str(source), "no such inventory file")
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(work_dir, 0o700)
    recap = PlayRecap()

    def handle(event: dict[str, Any]) -> bool:
        nonlocal recap
        recap = apply_event(recap, event)
        if on_update is not None:
            on_update(recap, event)
        return False  # nothing from the event stream is written to disk

    cmdline = " ".join(flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted)
    runner = ansible_runner.run(
        private_data_dir=str(work_dir),
        artifact_dir=str(work_dir / "artifacts"),
        rotate_artifacts=KEEP_ARTIFACTS,
        project_dir=str(project_root),
        playbook=str(playbook_path),
        inventory=[str(source) for source in sources],
        limit=limit,
        cmdline=cmdline or None,
        extravars=dict(extravars or {}),
        suppress_env_files=True,
        suppress_output_file=True,
        forks=forks,
        quiet=True,
        event_handler=handle,
        cancel_callback=cancelled,
        envvars={
            # ansible-runner finds ansible-playbook on PATH: ours sits beside this interpreter.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "ANSIBLE_ROLES_PATH": str(project_root / "roles"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work_dir / "cp"),
            "ANSIBLE_LOCAL_TEMP": str(work_dir / "tmp"),
            "ANSIBLE_GATHERING": "smart",
        },
    )
    return PlaybookRun(
        playbook=playbook,
        status=str(runner.status),
        rc=int(runner.rc if runner.rc is not None else 1),
        recap=recap,
        check=check,
    )
