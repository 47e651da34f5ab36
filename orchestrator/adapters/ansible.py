"""Run the project's playbooks through ansible-runner and stream their events.

Every connection trusts exactly the pinned host keys: the pinned file, strict checking and the
deploy key are forced as extra vars, Ansible's highest precedence, whatever the inventory, the
environment, ``ansible.cfg`` or ``~/.ssh/config`` say (core/inventory.py
``pinned_connection_vars``); SSH connections are multiplexed only within one run.

Nothing of a run stays on disk and nothing secret gets there while it lasts: each run gets a
private directory (0700) that is deleted when it ends, ansible-runner's events reach us in
memory (no job-event, stdout or env files, no fact cache on disk), and Ansible sees only the
environment it needs (never the operator's, which may hold a database password or tokens), so
the ``command`` file ansible-runner writes holds nothing but that and the playbook's command
line. Every task that touches a secret is ``no_log`` in the roles.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.adapters.proc import pid_alive
from orchestrator.core.inventory import pinned_connection_vars
from orchestrator.core.playbook_events import PlayRecap, apply_event
from orchestrator.errors import ConfigError, EnvironmentProblem

RUN_PREFIX = "run-"
# What earlier versions kept in the work directory (runner artifacts held the whole
# environment of the run): removed on the next run.
LEGACY_ENTRIES = ("artifacts", "cp", "tmp", "env", "inventory", "project")
# Of the controller's environment, Ansible gets only these; everything else it needs is set here.
PASSED_ENVIRONMENT = ("HOME", "TMPDIR", "TZ")
# What ansible-runner itself sets for its event callback, kept from its prepared environment.
RUNNER_ENVIRONMENT = (
    "ANSIBLE_STDOUT_CALLBACK",
    "AWX_ISOLATED_DATA_DIR",
    "RUNNER_OMIT_EVENTS",
    "RUNNER_ONLY_FAILED_EVENTS",
)


@dataclass(frozen=True)
class PlaybookOptions:
    """How one run goes: on which hosts (an Ansible ``--limit`` pattern), whether it only
    reports what it would change (``check``) and shows file differences (``diff``), and the
    variables the roles are given."""

    limit: str | None = None
    check: bool = False
    diff: bool = False
    extravars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int
    recap: PlayRecap
    check: bool


def _executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise EnvironmentProblem(f"the OpenSSH client's {name} is not installed (openssh-client)")
    return found


def _sweep(work_dir: Path) -> None:
    """Remove what runs that ended without cleaning up (killed) or older versions left."""
    for name in LEGACY_ENTRIES:
        path = work_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
    for path in work_dir.glob(f"{RUN_PREFIX}*"):
        pid = path.name[len(RUN_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _run_directories(work_dir: Path) -> Iterator[tuple[Path, Path]]:
    """(private data dir, SSH control dir) of one run, both 0700 and gone when it ends.

    The control sockets live in the system's temporary directory: a socket path must stay
    under 108 bytes, and a data directory can be deep.
    """
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(work_dir, 0o700)
    _sweep(work_dir)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=work_dir))
    control_dir = Path(tempfile.mkdtemp(prefix="wgfleet-cp-"))
    try:
        yield run_dir, control_dir
    finally:
        _close_masters(control_dir)
        shutil.rmtree(control_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


def _close_masters(control_dir: Path) -> None:
    """Ask each SSH master of the run to exit now rather than linger for ControlPersist."""
    sockets = [p for p in control_dir.iterdir() if p.is_socket()] if control_dir.is_dir() else []
    if not sockets:
        return
    ssh = shutil.which("ssh") or "ssh"

    def close(path: Path) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [ssh, "-F", "/dev/null", "-S", str(path), "-O", "exit", "wgfleet"],
                capture_output=True,
                timeout=10,
                check=False,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )

    with ThreadPoolExecutor(max_workers=min(8, len(sockets))) as pool:
        list(pool.map(close, sockets))


def _environment(prepared: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """The run's whole environment: ours, ansible-runner's callback settings, and of the
    controller's own only ``PASSED_ENVIRONMENT``. ansible-runner starts from a copy of
    ``os.environ`` (and writes it to its ``command`` file); this replaces that copy."""
    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    env.update({name: prepared[name] for name in RUNNER_ENVIRONMENT if name in prepared})
    # The runner appends its callback directory to any the operator's environment named.
    callbacks = prepared.get("ANSIBLE_CALLBACK_PLUGINS", "")
    if callbacks:
        env["ANSIBLE_CALLBACK_PLUGINS"] = callbacks.rsplit(":", 1)[-1]
    env.update(ours)
    return env


def hosts_matching(inventory: Sequence[Path], pattern: str) -> list[str]:
    """The inventory hosts an Ansible ``--limit`` pattern selects, as Ansible reads them."""
    from ansible.inventory.manager import InventoryManager  # type: ignore[import-untyped]
    from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]

    manager = InventoryManager(loader=DataLoader(), sources=[str(path) for path in inventory])
    manager.subset(pattern)
    return sorted(host.name for host in manager.get_hosts())


def run_playbook(
    *,
    project_root: Path,
    work_dir: Path,
    inventory: Path | Sequence[Path],
    playbook: str,
    known_hosts: Path,
    private_key: Path,
    options: PlaybookOptions | None = None,
    on_update: Callable[[PlayRecap, Mapping[str, Any]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    forks: int = 20,
) -> PlaybookRun:
    """Run ``playbooks/<playbook>`` on ``inventory``; report each event through ``on_update``.

    Every host is reached as the inventory says (address, port, user), with ``private_key``,
    trusting exactly the host keys pinned in ``known_hosts``.
    """
    options = options or PlaybookOptions()
    try:
        from ansible_runner.interface import init_runner
    except ImportError:
        raise EnvironmentProblem("ansible-runner is not installed: run .ci/install") from None
    playbook_path = project_root / "playbooks" / playbook
    if not playbook_path.exists():
        raise EnvironmentProblem(f"playbook {playbook_path} is missing from this checkout")
    sources = [inventory] if isinstance(inventory, Path) else list(inventory)
    for source in sources:
        if not source.exists():
            raise ConfigError(str(source), "inventory", str(source), "no such inventory file")
    executables = {name: _executable(name) for name in ("ssh", "sftp", "scp")}
    recap = PlayRecap()

    def handle(event: dict[str, Any]) -> bool:
        nonlocal recap
        recap = apply_event(recap, event)
        if on_update is not None:
            on_update(recap, event)
        return False  # nothing from the event stream is written to disk

    flags = (("--check", options.check), ("--diff", options.diff))
    cmdline = " ".join(flag for flag, wanted in flags if wanted)
    with _run_directories(work_dir) as (run_dir, control_dir):
        try:
            forced = pinned_connection_vars(
                known_hosts=str(known_hosts),
                private_key=str(private_key),
                control_dir=str(control_dir),
                executables=executables,
            )
        except ValueError as exc:
            raise ConfigError("settings", "ssh", str(known_hosts), str(exc)) from None
        config_file = run_dir / "ansible.cfg"
        config_file.write_text("# wgfleet: no ansible.cfg of the operator's is read\n")
        ours = {
            # ansible-runner finds ansible-playbook on PATH: ours sits beside this interpreter.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "ANSIBLE_CONFIG": str(config_file),
            "ANSIBLE_HOME": str(run_dir / "home"),
            "ANSIBLE_ROLES_PATH": str(project_root / "roles"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
            "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
            "ANSIBLE_GATHERING": "smart",
        }
        runner = init_runner(
            private_data_dir=str(run_dir),
            artifact_dir=str(run_dir / "artifacts"),
            project_dir=str(project_root),
            playbook=str(playbook_path),
            inventory=[str(source) for source in sources],
            limit=options.limit,
            cmdline=cmdline or None,
            extravars={**dict(options.extravars), **forced},
            suppress_env_files=True,
            suppress_output_file=True,
            fact_cache_type="memory",
            forks=forks,
            quiet=True,
            event_handler=handle,
            cancel_callback=cancelled,
            envvars=ours,
        )
        runner.config.env = _environment(runner.config.env, ours)
        runner.run()
    return PlaybookRun(
        playbook=playbook,
        status=str(runner.status),
        rc=int(runner.rc if runner.rc is not None else 1),
        recap=recap,
        check=options.check,
    )
