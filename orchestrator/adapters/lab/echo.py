"""The lab internet's echo service: answers each request with the source address it saw.

``serve NAME PORT ADDRESS..`` listens on TCP and UDP on each address (the lab internet namespace's
IPv4 and IPv6 ones) and answers every UDP datagram, and every TCP connection once, with the
peer's address and a newline; it prints ``ready`` once every socket is bound. NAME (the lab
internet's namespace) only labels the process, so it is told apart from another lab's. ``ask tcp|udp
ADDRESS PORT`` is the other end, run inside a lab namespace with ``ip netns exec``: it prints
the answer, so a test learns from which address its request arrived (a client's own underlay
address when it goes direct, a node's when a tunnel NATs it).

Both run as plain processes (``python -m orchestrator.adapters.lab.echo``) and import nothing
of wgfleet: the service's PID is the lab's to track and stop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import sys

ANSWER_TIMEOUT = 5.0
MAX_REQUEST = 512


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _bind(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    sock = socket.socket(_family(address), kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    sock.setblocking(False)
    return sock


def _answer(peer: tuple[object, ...]) -> bytes:
    return f"{peer[0]}\n".encode("ascii")


def serve(port: int, addresses: list[str]) -> None:
    selector = selectors.DefaultSelector()
    for address in addresses:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            sock = _bind(address, port, kind)
            selector.register(sock, selectors.EVENT_READ, kind)
    print("ready", flush=True)
    sys.stdout.close()  # the starter reads one line, then nothing more is written
    while True:
        for key, _events in selector.select():
            if not isinstance(key.fileobj, socket.socket):
                continue
            sock = key.fileobj
            if key.data == socket.SOCK_DGRAM:
                try:
                    _data, peer = sock.recvfrom(MAX_REQUEST)
                    sock.sendto(_answer(peer), peer)
                except OSError:
                    continue
            else:
                try:
                    connection, peer = sock.accept()
                except OSError:
                    continue
                with connection:
                    connection.settimeout(ANSWER_TIMEOUT)
                    with contextlib.suppress(OSError):
                        connection.sendall(_answer(peer))


def ask(protocol: str, address: str, port: int) -> str:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(_family(address), kind) as sock:
        sock.settimeout(ANSWER_TIMEOUT)
        if kind == socket.SOCK_STREAM:
            sock.connect((address, port))
            chunks = []
            while chunk := sock.recv(MAX_REQUEST):
                chunks.append(chunk)
            data = b"".join(chunks)
        else:
            sock.sendto(b"from?\n", (address, port))
            data, _peer = sock.recvfrom(MAX_REQUEST)
    return data.decode("ascii").strip()


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "serve":
        serve(int(argv[2]), argv[3:])
        return 0
    if len(argv) == 4 and argv[0] == "ask" and argv[1] in ("tcp", "udp"):
        try:
            print(ask(argv[1], argv[2], int(argv[3])))
        except OSError as exc:
            print(f"echo {argv[1]} {argv[2]} {argv[3]}: {exc}", file=sys.stderr)
            return 1
        return 0
    print("usage: echo serve NAME PORT ADDRESS.. | echo ask tcp|udp ADDRESS PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
