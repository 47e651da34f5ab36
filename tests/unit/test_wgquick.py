from __future__ import annotations

import pytest

from orchestrator.core.wgquick import WgQuickError, parse_wg_quick
from tests.unit.refusals import refusal

CONFIG = """\
[Interface]
PrivateKey = cHJpdmF0ZQ==   # not a real key
Address = 198.19.1.101/32
DNS = 198.19.1.1

[Peer]
PublicKey = cHVibGlj
PresharedKey = cHNr
Endpoint = 198.18.0.10:51820
AllowedIPs = 198.19.1.0/24, 198.19.2.0/24
"""


def test_strip_keeps_only_what_wg_setconf_reads() -> None:
    config = parse_wg_quick(CONFIG)
    stripped = config.stripped()
    assert "Address" not in stripped and "DNS" not in stripped
    assert "PrivateKey = cHJpdmF0ZQ==" in stripped
    assert "PresharedKey = cHNr" in stripped
    assert [str(a) for a in config.addresses] == ["198.19.1.101/32"]
    assert [str(n) for n in config.allowed_ips()] == ["198.19.1.0/24", "198.19.2.0/24"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PrivateKey = x\n", "line 1: a setting before any section"),
        ("[Interface]\nPrivateKey = x\nSaveConfig = true\n", "line 3: SaveConfig would write"),
        (
            "[Interface]\nPrivateKey = x\n[Peer]\nEndpoint = a:1\n",
            "line 3: [Peer] has no PublicKey",
        ),
        ("[Interface]\nAddress = 198.19.1.2/32\n", "line 1: [Interface] has no PrivateKey"),
        ("[Interface]\nPrivateKey = x\nColour = blue\n", "line 3: unknown key 'Colour'"),
        ("[Interface]\nPrivateKey = x\nAddress = 198.19.1.300/32\n", "line 1: "),
        ("[Wat]\n", "line 1: unknown section [Wat]"),
        ("[Interface]\nPrivateKey x\n", "line 2: expected 'Key = value'"),
    ],
)
def test_bad_configs_name_the_line(text: str, message: str) -> None:
    assert refusal(WgQuickError, parse_wg_quick, text).startswith(message)
