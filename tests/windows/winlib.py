"""What the Windows pytest modules share: Wine, the cross build, and microvm.exe run under
Wine with the wsl.exe double (tests/windows/fake_wsl.c) in a network namespace of the test's.

    MicrovmExe(tmp, netns)      the build's src/cli/microvm.exe; a subclass names another
                                exe (the unpacked package's, test_win_package.py), a
                                working directory and the environment it starts from
      .env                      os.environ + Wine's prefix + the double's variables
      .appdir                   %LOCALAPPDATA%\\microvm inside Wine's prefix (emptied)
      .run() .popen() .run_detach()
"""
import os
import pathlib
import pwd
import shutil
import subprocess

WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")
BUILD = pathlib.Path(os.environ.get("MICROVM_BUILD_WIN", "build-win")).resolve()


def win_path(p):
    """The Windows name of a Unix path (Wine's drive Z: is /)."""
    return "Z:" + str(p).replace("/", "\\")


def wine_env(base=None):
    """The environment of a Wine program: BASE (default os.environ) with Wine's diagnostics
    off and the build's Wine prefix unless BASE names one."""
    env = dict(os.environ if base is None else base, WINEDEBUG="-all")
    env.setdefault("WINEPREFIX", str(BUILD / "wine"))
    return env


class MicrovmExe:
    """microvm.exe and the environment every run of it gets."""

    exe = BUILD / "src/cli/microvm.exe"
    cwd = None          # the working directory of its runs (None: this process's)
    timeout = 60        # seconds, for run()

    @staticmethod
    def base_env():
        """The environment the runs start from (before the double's variables)."""
        return wine_env()

    def __init__(self, tmp, client_ns):
        state = tmp / "fake-wsl"
        state.mkdir()
        self.wsl_log = state / "log"     # the double's record of what it was asked
        self.env = dict(self.base_env(),
                        MICROVM_WSL_EXE=win_path(BUILD / "tests/windows/fake_wsl.exe"),
                        FAKE_WSL_DIR=win_path(state),
                        FAKE_WSL_NETNS=f"/run/netns/{client_ns}",
                        MICROVM_WSL_START_TIMEOUT="60")
        # Wine sets %LOCALAPPDATA% from the prefix's profile (the environment's value does
        # not reach the program): microvm.exe's directory there starts empty, as for a new
        # user, and the double's distro registry (FAKE_WSL_DIR) is new too
        user = pwd.getpwuid(os.getuid()).pw_name
        self.appdir = (pathlib.Path(self.env["WINEPREFIX"]) / "drive_c/users" / user /
                       "AppData/Local/microvm")
        shutil.rmtree(self.appdir, ignore_errors=True)

    def popen(self, *args, **kw):
        return subprocess.Popen([WINE, str(self.exe), *args], env=self.env, cwd=self.cwd,
                                **kw)

    def run(self, *args, input=None, timeout=None):
        return subprocess.run([WINE, str(self.exe), *args], env=self.env, cwd=self.cwd,
                              input=input, capture_output=True, text=True,
                              timeout=timeout or self.timeout)

    def run_detach(self, tmp, *args, input=None, env=None, timeout=240):
        """`up --detach ARGS`, its output into files: Wine hands its own Unix stderr (for
        its diagnostics) to every process it starts, the background `up` and wsl.exe too,
        so a pipe there would not end when the parent exits (as it does on Windows).
        Standard input is INPUT, else nothing."""
        out, err = tmp / "detach.out", tmp / "detach.err"
        stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
        with open(out, "w") as o, open(err, "w") as e:
            r = subprocess.run([WINE, str(self.exe), "up", "--detach", *args],
                               env=dict(self.env, **(env or {})), cwd=self.cwd,
                               input=input, stdout=o, stderr=e, text=True, timeout=timeout,
                               **stdin)
        return subprocess.CompletedProcess(r.args, r.returncode, out.read_text(),
                                           err.read_text())
