"""Client configs handed to their owner once: a file, the terminal, or a QR code."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli.output import Output
from orchestrator.cli.secret_output import (
    NotDelivered,
    SecretDestination,
    emit,
    secret_destination,
    write_files,
)
from orchestrator.core.models import Configuration
from orchestrator.errors import WgfleetError
from orchestrator.service.user_files import write_private_text

if TYPE_CHECKING:
    from orchestrator.service.peer_batch import BatchConfiguration


def config_dict(c: Configuration) -> dict[str, Any]:
    return {
        "name": c.name,
        "account": c.account,
        "public_key": c.public_key,
        "addresses": {n: str(a) for n, a in c.addresses.items()},
        "plan": c.plan,
        "quota_bytes": c.quota_bytes,
        "enabled": c.enabled,
        "disabled_reason": c.disabled_reason.value if c.disabled_reason else None,
        "key_created_on": c.key_created_on,
        "valid_until": c.valid_until,
        "split_tunnel": c.split_tunnel,
    }


def qr_text(text: str) -> str:
    import segno

    buffer = io.StringIO()
    segno.make(text, error="l").terminal(out=buffer, compact=True)
    return buffer.getvalue()


def client_config_destination(args: argparse.Namespace, output: Output) -> SecretDestination:
    """Where the client configuration may go (see cli/secret_output); exit 2 before any
    change when it could go nowhere safe."""
    return secret_destination(args.out, output, "the client configuration")


def emit_client_configs(
    args: argparse.Namespace,
    output: Output,
    destination: SecretDestination,
    data: dict[str, Any],
    configs: dict[str, str],
    headline: str,
    name: str,
) -> None:
    """Deliver configuration ``name``'s client configs (node -> wg-quick text) once, where
    ``destination`` says: files (one per node when several), stdout when asked (``--out -``),
    or the terminal."""
    written = []
    if destination.to_file:
        made = write_files(
            destination,
            configs,
            made=f"configuration {name} has new keys",
            reissue=f"wgfleet keys rotate peer {name} --out FILE",
        )
        written = [str(p) for p in made]

    def summary(say: Any) -> None:
        say(headline)
        if written:
            say(
                f"client configuration written to {', '.join(written)} (0600); "
                "it is not kept anywhere else"
            )

    def on_terminal() -> None:
        output.out.print(
            "client configuration, shown once (wgfleet keeps no copy of its private key):"
        )
        for node, text in configs.items():
            output.out.print(f"\n# {node}\n{text}", markup=False)
            if args.qr:
                output.out.print(qr_text(text), markup=False)

    emit(
        output,
        destination,
        {**data, **({"client_config_files": written} if written else {})},
        {"client_configs": configs},
        "".join(f"# {node}\n{text}" for node, text in configs.items()),
        summary,
        on_terminal,
    )


def batch_files(directory: Path, created: Sequence[BatchConfiguration]) -> list[list[Path]]:
    """Per configuration of a batch, its client configs' files in ``directory``: NAME.conf on
    one node, NAME.NODE.conf on several."""
    return [
        [
            directory
            / (
                f"{c.configuration.name}.conf"
                if len(c.client_configs) == 1
                else f"{c.configuration.name}.{node}.conf"
            )
            for node in sorted(c.client_configs)
        ]
        for c in created
    ]


def write_batch_configs(directory: Path, created: Sequence[BatchConfiguration]) -> list[Path]:
    """Write every client config of a batch once (0600, never through a link); return the
    files written. The configurations exist already: a failure says how to issue new keys."""
    written: list[Path] = []
    for made, paths in zip(created, batch_files(directory, created), strict=True):
        texts = dict(
            zip(paths, (made.client_configs[n] for n in sorted(made.client_configs)), strict=True)
        )
        for path, text in texts.items():
            try:
                write_private_text(path, text)
            except WgfleetError as exc:
                raise NotDelivered(
                    f"configuration {made.configuration.name} has new keys, but {exc}; "
                    f"{len(written)} file(s) written before it: run `wgfleet keys rotate peer "
                    f"{made.configuration.name} --out FILE` for new keys"
                ) from None
            written.append(path)
    return written
