"""Parsing lab captures (`tcpdump -n -tt` lines, recorded from a real lab client's eth0)."""

from __future__ import annotations

from orchestrator.core.packets import parse_tcpdump_line, parse_tcpdump_lines

RECORDED = """\
1796382470.371507 ARP, Request who-has 198.18.144.2 tell 198.18.152.1, length 28
1796382470.371541 IP 198.18.152.1 > 198.18.144.2: ICMP echo request, id 4141, seq 1, length 64
1796382470.375495 IP6 2001:2:0:19::801 > ff02::1:ff00:2: ICMP6, neighbor solicitation, \
who has 2001:2:0:19::2, length 32
1796382470.375541 IP6 2001:2:0:19::801 > 2001:2:0:19::2: ICMP6, echo request, id 4142, \
seq 1, length 64
1796382470.391995 IP6 2001:2:0:19::801.48808 > 2001:2:0:19::2.53: 13627+ [1au] A? \
x.lab.test. (51)
1796382470.392106 IP6 2001:2:0:19::2.53 > 2001:2:0:19::801.48808: 13627*- 1/1/3 A \
198.18.144.2 (116)
1796382470.414802 IP6 fe80::acd4:d4ff:feae:f6d6 > ff02::16: HBH ICMP6, multicast listener \
report v2, 2 group record(s), length 48
1796382470.414815 IP6 fe80::acd4:d4ff:feae:f6d6 > ff02::2: ICMP6, router solicitation, length 16
1796382470.667190 IP 198.18.152.1.36549 > 198.18.144.10.51820: UDP, length 148
1796382367.332630 IP 198.18.152.1.35045 > 198.18.144.2.53: Flags [P.], seq 1:56, ack 1, \
win 64, options [nop,nop,TS val 598390954 ecr 1361022348], length 55 14886+ [1au] AAAA? \
baz.lab.test. (53)
1796382470.7 STP 802.1d, Config BPDU, Flags [none], bridge-id 8000.aa:bb, length 35
"""


def test_every_recorded_line_is_one_packet_with_its_fields() -> None:
    packets = parse_tcpdump_lines(RECORDED.splitlines())
    assert len(packets) == 11
    summary = [(p.family, p.protocol, p.src, p.sport, p.dst, p.dport) for p in packets]
    assert summary == [
        ("arp", "arp", "", None, "", None),
        ("ip", "icmp", "198.18.152.1", None, "198.18.144.2", None),
        ("ip6", "icmp6", "2001:2:0:19::801", None, "ff02::1:ff00:2", None),
        ("ip6", "icmp6", "2001:2:0:19::801", None, "2001:2:0:19::2", None),
        ("ip6", "udp", "2001:2:0:19::801", 48808, "2001:2:0:19::2", 53),
        ("ip6", "udp", "2001:2:0:19::2", 53, "2001:2:0:19::801", 48808),
        ("ip6", "icmp6", "fe80::acd4:d4ff:feae:f6d6", None, "ff02::16", None),
        ("ip6", "icmp6", "fe80::acd4:d4ff:feae:f6d6", None, "ff02::2", None),
        ("ip", "udp", "198.18.152.1", 36549, "198.18.144.10", 51820),
        ("ip", "tcp", "198.18.152.1", 35045, "198.18.144.2", 53),
        ("other", "other", "", None, "", None),
    ]
    assert packets[0].time == 1796382470.371507


def test_link_control_is_neighbour_and_router_discovery_only() -> None:
    packets = parse_tcpdump_lines(RECORDED.splitlines())
    control = [i for i, p in enumerate(packets) if p.is_link_control]
    # An ICMPv6 echo (a ping that could leak) is never link control.
    assert control == [0, 2, 6, 7]


def test_dns_questions_over_udp_and_tcp_but_not_answers() -> None:
    packets = parse_tcpdump_lines(RECORDED.splitlines())
    assert [p.dns_question for p in packets if p.dns_question] == [
        ("A", "x.lab.test."),
        ("AAAA", "baz.lab.test."),
    ]


def test_lines_that_are_not_packets() -> None:
    assert parse_tcpdump_line("") is None
    assert parse_tcpdump_line("tcpdump: verbose output suppressed") is None
