"""The lab's wg-quick tool refuses what wg-quick would run as root on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.service import lab as lab_service
from tests.conftest import lab_settings


def test_wg_quick_in_the_lab_refuses_hook_commands_before_starting_anything(
    tmp_path: Path,
) -> None:
    """wg-quick runs PreUp..PostDown as root shell commands on the host: a file with any of
    them (or SaveConfig) is refused before the lab is even looked at."""
    settings = lab_settings(tmp_path, "none", "198.18.240.0/20")
    base = "[Interface]\nPrivateKey = {k}\nAddress = 198.19.1.2/32\n{hook}\n[Peer]\n"
    base += "PublicKey = {k}\nEndpoint = 198.18.240.10:51820\nAllowedIPs = 0.0.0.0/0\n"
    key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
    for hook in ("PostUp = touch /tmp/x", "PreDown = true", "SaveConfig = true"):
        with pytest.raises(UsageError, match=hook.split()[0]):
            lab_service.wg_quick_up(settings, "client1", base.format(k=key, hook=hook))
    assert not settings.lab.state_dir.exists()
