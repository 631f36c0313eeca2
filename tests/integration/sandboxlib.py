"""What the kernel says about a process's or thread's sandbox (/proc/PID[/task/TID]/status).

Used by the tests of the sandbox (docs/security.md, "Sandboxing"): seccomp mode 2 (filter),
no_new_privs, and the capability sets, by thread name (the library names its threads
"mvm-vcpu0", "mvm-vsock", "mvm-socks", ...).
"""
import contextlib
import pathlib

CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
# What microvm-agent and its OpenVPN keep (guest/agent/sandbox.c).
AGENT_CAPS = (1 << CAP_NET_ADMIN) | (1 << CAP_SETUID) | (1 << CAP_SETGID) | (1 << CAP_KILL)


def status(pid, tid=None):
    """/proc/PID/status (or /proc/PID/task/TID/status) as a dict of strings."""
    path = pathlib.Path(f"/proc/{pid}") / (f"task/{tid}" if tid else "") / "status"
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def caps(st, which="CapEff"):
    """A capability set of a status() dict, as an int."""
    return int(st[which], 16)


def threads(pid, prefix):
    """{tid: comm} of @pid's threads whose name starts with @prefix."""
    out = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            comm = (task / "comm").read_text().strip()
            if comm.startswith(prefix):
                out[int(task.name)] = comm
    return out


def assert_filtered(st, capeff=0):
    """Seccomp filter on, no_new_privs set, exactly @capeff effective capabilities."""
    assert st["Seccomp"] == "2", st
    assert st["NoNewPrivs"] == "1", st
    assert caps(st) == capeff, st


def id_map_size(text):
    """Total ids in a uid_map/gid_map text (each line: inside outside count)."""
    return sum(int(line.split()[2]) for line in text.splitlines() if line.strip())
