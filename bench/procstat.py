"""What the kernel says about a process: CPU time and resident memory, from /proc.

The runner reads the server's counters at the edges of each measurement
window, so the server's CPU time per message is exact up to one clock tick
(10 ms at the usual USER_HZ of 100) whatever the load client does.
"""

from __future__ import annotations

import os

__all__ = ["TICK", "PAGE", "cpu_seconds", "rss_bytes", "loadavg", "tcp_counters"]

TICK = 1.0 / os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        raw = stat.read()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) * TICK


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of ``pid``, in bytes."""
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE


def loadavg() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg", "rb") as f:
        one, five, fifteen = f.read().split()[:3]
    return float(one), float(five), float(fifteen)


def tcp_counters() -> dict[str, int]:
    """The kernel's TCP counters, ``"TcpExt.ListenOverflows"``, ``"Tcp.RetransSegs"``, ...

    From ``/proc/net/netstat`` and ``/proc/net/snmp`` (pairs of lines: the
    names, then the values).  They count for the whole network namespace,
    not one process: a delta includes whatever else the machine did.
    """
    counters: dict[str, int] = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2], strict=False):
            group, _, names_text = names.partition(":")
            group_v, _, values_text = values.partition(":")
            if group != group_v:
                continue
            for name, value in zip(names_text.split(), values_text.split(), strict=False):
                try:
                    counters[f"{group}.{name}"] = int(value)
                except ValueError:
                    pass
    return counters
