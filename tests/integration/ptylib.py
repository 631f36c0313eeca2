"""A command on a pseudo-terminal, as a person at a terminal would run it.

The command gets the pty as stdin, stdout, stderr and controlling terminal (`setsid --ctty`),
so `isatty()` is true and `/dev/tty` (no-echo password prompts) works.  The test reads what
appears on the screen and types answers:

    with ptylib.Pty(["microvm", "vpn", "connect", "corp", "--user", "alice"], env=env) as t:
        t.expect("VPN password:")
        t.send("secret\\n")
        assert t.wait(60) == 0
        assert "connected" in t.output
"""
import os
import pty
import select
import subprocess
import time


class Pty:
    """A child process on a new pty; @output accumulates everything it printed."""

    def __init__(self, argv, env=None, cwd=None):
        master, slave = pty.openpty()
        self.master = master
        self.output = ""
        self.proc = subprocess.Popen(["setsid", "--ctty", *argv], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, close_fds=True)
        os.close(slave)

    def _read(self, timeout):
        """Read what arrives within @timeout seconds: "data", "idle" or "closed"."""
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return "idle"
        try:
            data = os.read(self.master, 65536)
        except OSError:     # EIO: every holder of the slave side has closed it
            return "closed"
        if not data:
            return "closed"
        self.output += data.decode(errors="replace")
        return "data"

    def expect(self, text, timeout=60):
        """Wait until @text has appeared on the screen (since the start)."""
        end = time.monotonic() + timeout
        while text not in self.output:
            left = end - time.monotonic()
            if left <= 0 or (self._read(min(left, 0.5)) == "closed"
                             and text not in self.output):
                raise AssertionError(f"no {text!r} on the terminal within {timeout} s; "
                                     f"screen:\n{self.output}")

    def send(self, text):
        os.write(self.master, text.encode())

    def wait(self, timeout=60):
        """Wait for the command to exit, then read what it left on the screen; its status.

        A background process it started (`up --detach`) may keep the pty open: output is
        read until it pauses, not until the pty closes.
        """
        end = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > end:
                self.proc.kill()
                raise AssertionError(f"still running after {timeout} s; screen:\n"
                                     f"{self.output}")
            self._read(0.2)
        while self._read(0.2) == "data":
            pass
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
