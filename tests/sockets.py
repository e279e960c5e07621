"""Which TCP addresses a process tree listens on, read from /proc (Linux), for the tests
that check that what restorebench starts binds to the loopback interface only."""

from __future__ import annotations

import os
from pathlib import Path

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def stat_field(pid: int, index: int) -> int | None:
    """Field ``index`` of /proc/PID/stat counted after the command name (0: state, 1: the
    parent's pid, 16: niceness), None once the process has exited."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[index])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        ppid = stat_field(int(entry.name), 1)
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        found.add(pid)
        stack += children.get(pid, [])
    return found


def _socket_inodes(pids: set[int]) -> dict[str, int]:
    inodes = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes[link[8:-1]] = pid
    return inodes


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]  # four little-endian 32-bit words
    full = b"".join(words)
    if full[:12] == b"\0" * 10 + b"\xff\xff":
        return "::ffff:" + ".".join(str(b) for b in full[12:])
    import ipaddress

    return str(ipaddress.IPv6Address(full))


def listening(pids: set[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket in LISTEN state owned by ``pids``."""
    inodes = _socket_inodes(pids)
    rows = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/net/{table}") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] != "0A" or parts[9] not in inodes:
                    continue
                addr, port = parts[1].split(":")
                rows.append((_address(addr), int(port, 16), inodes[parts[9]]))
    return rows
