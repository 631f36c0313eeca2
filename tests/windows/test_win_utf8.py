"""`microvm.exe up` for a Windows user whose profile folder is outside the ANSI code page
(run by scripts/test-windows.sh; needs root, the cross build and the guest image, as
test_win_up.py, whose test bed it shares through vpnfixtures).

%LOCALAPPDATA% is C:\\users\\Пётр 王\\AppData\\Local here: Cyrillic and CJK letters that
the ANSI code page Wine gives this environment (1252, Western European, as on a
Western-European Windows; checked below in Wine's registry) cannot hold.  A program that
reads the variable with getenv() or opens files with the ANSI calls sees
C:\\users\\???? ?\\AppData\\Local, and '?' is not allowed in a Windows file name: `up` then
has no up.log and no socks.secret (src/runtime/compat.h).

Wine gives a program %LOCALAPPDATA% from its prefix's registry ("Volatile Environment"),
not from the Unix environment, and writes that key afresh whenever its server starts.  So
the module keeps one Wine server running (`wineserver -p`) for its run, sets the value
there (with a UTF-16 .reg file: no code page is involved), and at the end puts it back
and stops that server: the next one starts with the prefix's own value.  LANG=C.UTF-8
fixes the Unix side: Wine names the Unix folder in UTF-8 and still picks code page 1252.

One `up --detach` serves every check, in file order: its files land in that folder with
their names, `status` works, SOCKS5 (with the generated credentials from socks.secret)
reaches a page that exists only behind the VPN, and `down` stops it.
"""
import codecs
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
import vpnfixtures  # noqa: E402
import vpnlib  # noqa: E402
from vpnfixtures import vpn_bed as bed  # noqa: E402,F401  (fixtures: the test bed)
from winlib import WINE, MicrovmExe, win_path  # noqa: E402

WINESERVER = os.environ.get("WINESERVER", "/usr/lib/wine/wineserver64")

USER = "Пётр 王"
LOCAL = f"C:\\users\\{USER}\\AppData\\Local"
VOLATILE = r"HKEY_CURRENT_USER\Volatile Environment"
PAGE = "behind the VPN, for a user outside the ANSI code page\n"
HTTP_PORT = 8080
SSH_PORT = 2222
SOCKS = "127.0.0.1:1080"

services = vpnfixtures.services_fixture(PAGE, HTTP_PORT, SSH_PORT)


def wine_reg(env, *args):
    r = subprocess.run([WINE, "reg", *args], env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout.decode("utf-8", "replace")


def reg_value(env, key, name):
    """A REG_SZ value of Wine's registry (`reg query`), or None."""
    for ln in wine_reg(env, "query", key, "/v", name).splitlines():
        parts = ln.split(None, 2)
        if len(parts) == 3 and parts[0] == name and parts[1] == "REG_SZ":
            return parts[2].strip()
    return None


def set_localappdata(env, tmp, value):
    """%LOCALAPPDATA% of every program Wine starts from now on: VALUE."""
    reg = tmp / "localappdata.reg"
    text = ("Windows Registry Editor Version 5.00\r\n\r\n[" + VOLATILE + "]\r\n" +
            '"LOCALAPPDATA"="' + value.replace("\\", "\\\\") + '"\r\n')
    reg.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    wine_reg(env, "import", win_path(reg))


@pytest.fixture(scope="module")
def app(bed, services, tmp_path_factory):
    """microvm.exe with %LOCALAPPDATA% in C:\\users\\Пётр 王; `up --detach` by test_a."""
    image = os.environ.get("MICROVM_TEST_ROOTFS_UNIX")
    assert image and os.path.exists(image), "MICROVM_TEST_ROOTFS_UNIX: run via test-windows.sh"
    tmp = tmp_path_factory.mktemp("winutf8")
    m = MicrovmExe(tmp, bed.client.name)
    m.env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8")
    m.tmp = tmp
    prefix = pathlib.Path(m.env["WINEPREFIX"])
    m.home = prefix / "drive_c/users" / USER
    m.local = m.home / "AppData/Local"
    m.files = m.local / "microvm"
    shutil.rmtree(m.home, ignore_errors=True)
    m.local.mkdir(parents=True)
    # the rootfs, the profile and the SOCKS password come from the user's folder too
    shutil.copyfile(image, m.home / "rootfs.tar.gz")
    subprocess.run([WINESERVER, "-p"], env=m.env, check=True, timeout=60)
    old = None
    try:
        # the session's own processes (services.exe...) start with the first program and
        # keep its Unix output open: give them none, or the next capture_output would never
        # end
        subprocess.run([WINE, "cmd", "/c", "exit"], env=m.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        old = reg_value(m.env, VOLATILE, "LOCALAPPDATA")
        assert old, "Wine's prefix has no LOCALAPPDATA in HKCU\\Volatile Environment"
        set_localappdata(m.env, tmp, LOCAL)
        yield m
    finally:
        # each step on its own: one failing (a `down` that times out) skips none of the rest
        steps = [lambda: subprocess.run([WINE, str(m.exe), "down"], env=m.env,
                                        capture_output=True, timeout=90)]
        if old:
            steps.append(lambda: set_localappdata(m.env, tmp, old))
        steps += [lambda: subprocess.run([WINESERVER, "-k"], env=m.env, timeout=60),
                  lambda: subprocess.run([WINESERVER, "-w"], env=m.env, timeout=60),
                  lambda: shutil.rmtree(m.home, ignore_errors=True)]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as e:  # noqa: BLE001  (reported below, after the rest ran)
                errors.append(repr(e))
        assert not errors, errors


def test_0_the_ansi_code_page_cannot_hold_the_folder(app):
    """The premise: Wine's ANSI code page here is a legacy one without these letters, and
    programs see the registry's %LOCALAPPDATA%."""
    acp = reg_value(app.env, r"HKLM\System\CurrentControlSet\Control\Nls\CodePage", "ACP")
    assert acp and acp != "65001", acp
    with pytest.raises(UnicodeEncodeError):
        USER.encode("cp" + acp)
    r = subprocess.run([WINE, "cmd", "/c", "echo %LOCALAPPDATA%"], env=app.env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    # cmd writes the ANSI code page to a pipe: the letters it cannot hold come out as '?'
    assert r.stdout.decode("cp" + acp).strip() == LOCAL.replace("Пётр 王", "???? ?"), r


def test_a_up_detach_keeps_its_files_in_the_users_folder(app, bed):
    """The profile comes from the user's folder too: microvm.exe takes its arguments in
    UTF-16 (the C runtime's argv would say C:\\users\\???? ?\\corp.ovpn)."""
    app.home.joinpath("corp.ovpn").write_text(bed.profile())
    r = app.run_detach(app.tmp, "--rootfs", f"C:\\users\\{USER}\\rootfs.tar.gz",
                       "--profile", f"C:\\users\\{USER}\\corp.ovpn", "--user", "alice",
                       "--password-stdin",
                       "--socks-auth", input=vpnlib.USERS["alice"] + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "microvm is up" in r.stdout, r.stdout + r.stderr
    assert f"are in {LOCAL}\\microvm\\socks.secret" in r.stdout, r.stdout
    names = {p.name for p in app.files.iterdir()}
    assert {"up.log", "socks.secret", "appliance.lock", "state", "wsl"} <= names, names
    user, password = app.files.joinpath("socks.secret").read_text().splitlines()
    assert user == "microvm" and len(password) >= 16
    app.socks_auth = f"{user}:{password}"
    # nothing went to the default profile's folder or to a mangled name
    assert not app.appdir.exists(), list(app.appdir.rglob("*"))
    users = pathlib.Path(app.env["WINEPREFIX"]) / "drive_c/users"
    assert not [p for p in users.rglob("*") if "?" in p.name]


def test_b_status_names_the_secret_file(app):
    r = app.run("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    st = json.loads(r.stdout)
    assert st["vm_running"] and st["agent_reachable"] and st["hypervisor"] == "WSL2", st
    assert st["vpn"]["state"] == "connected", st
    assert st["socks"]["secret_file"] == f"{LOCAL}\\microvm\\socks.secret", st


def test_b2_socks_password_file_from_the_users_folder(app):
    """--socks-password-file (and --rootfs) in the user's folder are read: a second `up`
    gets past them to "already running"; a missing one is named as given."""
    app.home.joinpath("socks.pw").write_text("s3cret-for-bob\n")
    args = ["up", "--rootfs", f"C:\\users\\{USER}\\rootfs.tar.gz", "--socks-user", "bob",
            "--socks-password-file"]
    r = app.run(*args, f"C:\\users\\{USER}\\socks.pw", timeout=90)
    assert r.returncode != 0 and "already running" in r.stderr, r.stdout + r.stderr
    r = app.run(*args, f"C:\\users\\{USER}\\gone.pw", timeout=90)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"--socks-password-file C:\\users\\{USER}\\gone.pw: cannot read it" in r.stderr, \
        r.stderr


def test_b3_vpn_import_from_the_users_folder(app, bed):
    """`vpn import` of a profile in the user's folder: it is read (wide API), and named
    after the file (the path's byte-wise tail; profile names themselves are ASCII)."""
    app.home.joinpath("office.ovpn").write_text(bed.profile())
    r = app.run("vpn", "import", f"C:\\users\\{USER}\\office.ovpn", timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "imported office.ovpn", r.stdout
    r = app.run("vpn", "profiles", timeout=90)
    assert r.returncode == 0 and "office.ovpn" in r.stdout, r.stdout + r.stderr


def test_c_socks5_through_the_appliance(app):
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname", SOCKS,
                        "--proxy-user", app.socks_auth,
                        f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt"],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0 and r.stdout == PAGE, r.stderr
    # the credentials are required
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--socks5-hostname", SOCKS,
                        f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0


def test_d_down_stops_it_and_the_log_stays(app):
    r = app.run("down", timeout=90)
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
    vpnlib.wait_for(lambda: app.run("status", "--json").returncode == 1, 30,
                    "`up` to exit")
    # `up` removes the generated secret as it exits; its log stays, without the password
    vpnlib.wait_for(lambda: not app.files.joinpath("socks.secret").exists(), 20,
                    "socks.secret to go")
    log = app.files.joinpath("up.log").read_text(errors="replace")
    assert log and vpnlib.USERS["alice"] not in log, log
    assert app.files.joinpath("state").is_dir()
