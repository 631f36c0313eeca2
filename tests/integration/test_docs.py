"""Executed documentation: every shell example in README.md and docs/*.md still matches the
product.

Every fenced block needs a language (```sh for commands, ```text for output, diagrams and
synopses, ```c for C...).  Every shell block (sh, shell, bash, console) needs a marker on the
line right before its fence, an HTML comment that the reader of the rendered Markdown does
not see:

    <!-- doc-test: run -->
        run with `sh -e` from the top of the source tree, the build's `microvm` first on
        PATH; it must succeed.  For quick, self-contained commands.
    <!-- doc-test: appliance -->
        run with `sh -e` on a terminal (a pty), against a real OpenVPN server in network
        namespaces (vpnlib.Testbed), in a network namespace of its own that plays the user's
        machine: `microvm up` there runs the guest image on the default backend, SOCKS5 on
        that namespace's 127.0.0.1:1080.  The block must end with everything stopped
        (`microvm down`).  The test stands in for the user's corporate VPN by name; the
        substitutions are SUBSTITUTIONS below (corp.ovpn is the test server's profile, written
        into the working directory; the password prompt is answered).
    <!-- doc-test: illustrative: WHY -->
        not run (needs something a test cannot have: a real KVM host, minutes of build,
        an interactive console...); say why.

Every shell block, run or not, is also checked statically: each `microvm SUBCOMMAND` exists
and each --option it uses is in that subcommand's --help; each `make TARGET` is a target of
the Makefile; each file of the tree it names (scripts/..., bench/..., guest/...) exists.  So an
illustrative example still fails the test when an option is renamed or a script moves.
"""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import uuid

import pytest

import vpnlib
from guestlib import build_image, kernel_dir
from ptylib import Pty

TOP = pathlib.Path(__file__).resolve().parents[2]
DOCS = [TOP / "README.md", TOP / "DEVELOPERS.md", *sorted((TOP / "docs").glob("**/*.md"))]
SHELL = {"sh", "shell", "bash", "console"}
MARKER = re.compile(r"^<!--\s*doc-test:\s*(run|appliance|illustrative)\s*(?::\s*(.*?))?\s*-->$")
PAGE = "a page that exists only behind the VPN\n"
SSH_SAYS = "ssh through the VPN works"
HOST_IP, LINK_IP = "10.77.9.1", "10.77.9.2"

# What the docs say -> what the test bed has.  The docs use the names a user would see
# (corp.ovpn and alice need none: the test's profile is written as corp.ovpn and its
# server knows alice).
SUBSTITUTIONS = {
    "alice@10.8.0.1": f"root@{vpnlib.VPN_SERVER_IP}",   # sshd in the bed allows root by key
    "10.8.0.1": vpnlib.VPN_SERVER_IP,                    # the VPN server's tunnel address
    "intranet.corp": vpnlib.TARGET_NAME,                 # a name only the VPN's DNS knows
}

HOW_TO_MARK = """\
Put one of these on the line right before the fence (see tests/integration/test_docs.py):
  <!-- doc-test: run -->                  run it (sh -e, top of the tree, must succeed)
  <!-- doc-test: appliance -->            run it against the test VPN appliance
  <!-- doc-test: illustrative: WHY -->    do not run it (say why); commands are still checked
If it is not a shell example, give the fence another language (```text, ```c)."""


class Block:
    def __init__(self, path, line, lang, marker, reason, text):
        self.path, self.line, self.lang = path, line, lang
        self.marker, self.reason, self.text = marker, reason, text

    @property
    def where(self):
        return f"{self.path.relative_to(TOP)}:{self.line}"


def blocks(path):
    """Every fenced block of a Markdown file, with the marker before it (or None)."""
    lines = path.read_text().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([^\s`]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3), i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        prev = next((lines[k].strip() for k in range(start - 1, -1, -1)
                     if lines[k].strip()), "")
        mk = MARKER.match(prev)
        out.append(Block(path, start + 1, lang, mk and mk.group(1), mk and mk.group(2),
                         "\n".join(lines[start + 1:j])))
        i = j + 1
    return out


ALL = [b for p in DOCS for b in blocks(p)]
SHELL_BLOCKS = [b for b in ALL if b.lang in SHELL]


def test_every_block_has_a_language_and_every_shell_block_a_marker():
    errors = []
    for b in ALL:
        if not b.lang:
            errors.append(f"{b.where}: a fenced block without a language: write ```sh for "
                          "commands, ```text for output, diagrams and synopses")
        elif b.lang in SHELL and not b.marker:
            errors.append(f"{b.where}: a ```{b.lang} block without a doc-test marker")
        elif b.marker == "illustrative" and not b.reason:
            errors.append(f"{b.where}: say why the block is only illustrative: "
                          "<!-- doc-test: illustrative: WHY -->")
        elif b.marker and b.lang not in SHELL:
            errors.append(f"{b.where}: a doc-test marker before a ```{b.lang} block: only "
                          "shell blocks (sh, shell, bash, console) are run")
    assert not errors, "\n".join(errors) + "\n\n" + HOW_TO_MARK
    # the test must see the blocks it is about
    assert any(b.marker == "appliance" and b.path.name == "README.md" for b in ALL)


# -- static check: commands and options --------------------------------------------------------

def commands(text):
    """The simple commands of a shell block: lists of words (comments, $(...) kept crude)."""
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.split("\n"):
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lex.whitespace_split = True
        lex.commenters = "#"
        try:
            words = list(lex)
        except ValueError:      # an unbalanced quote in a sketch: nothing to check
            continue
        cur = []
        for w in words + [";"]:
            if w and set(w) <= set(";&|()<>"):
                if cur:
                    out.append(cur)
                cur = []
            else:
                cur.append(w)
    return out


def strip_env(words):
    """Drop leading VAR=value assignments and sudo."""
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] == "sudo"):
        words = words[1:]
    return words


_helps = {}


def help_text(microvm_bin, *sub):
    if sub not in _helps:
        r = subprocess.run([str(microvm_bin), *sub, "--help"], capture_output=True, text=True,
                           timeout=10)
        _helps[sub] = r.stdout if r.returncode == 0 else None
    return _helps[sub]


def make_targets():
    text = (TOP / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.M))


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.where)
def test_commands_and_options_exist(block, microvm_bin):
    errors = []
    targets = make_targets()
    for words in commands(block.text):
        words = strip_env(words)
        if not words:
            continue
        prog = words[0]
        for w in words:     # scripts and sources of this tree that an example names
            if re.match(r"^(scripts|bench|guest|tests|src|docs|fuzz|cross)/[\w./-]+$", w) and \
                    not (TOP / w).exists():
                errors.append(f"{w}: no such file in the tree")
        if prog == "make":
            for t in words[1:]:
                if not t.startswith("-") and "=" not in t and t not in targets:
                    errors.append(f"make {t}: no such target in the Makefile")
        if prog != "microvm" and not prog.endswith("/microvm"):
            continue
        args = [w.strip("[]") for w in words[1:]]
        if not args or args[0].startswith("-"):
            sub = ()
        elif args[0] == "vpn":
            sub = ("vpn",)
        else:
            sub = (args[0],)
        top = help_text(microvm_bin)
        if sub and not re.search(rf"^  {re.escape(sub[0])}\s", top, re.M):
            errors.append(f"microvm {sub[0]}: no such command")
            continue
        if sub == ("vpn",) and len(args) > 1 and not args[1].startswith("-"):
            if not re.search(rf"^  {re.escape(args[1])}\b", help_text(microvm_bin, "vpn"),
                             re.M):
                errors.append(f"microvm vpn {args[1]}: no such command")
        text = help_text(microvm_bin, *sub) if sub else top
        for a in args:
            opt = a.split("=", 1)[0]
            if opt.startswith("--") and not re.search(rf"{re.escape(opt)}(?![\w-])", text):
                errors.append(f"microvm {' '.join(sub)} {opt}: not an option "
                              f"(see 'microvm {' '.join(sub)} --help')")
    assert not errors, f"{block.where}: the example no longer matches the product:\n  " + \
        "\n  ".join(errors)


# -- run blocks --------------------------------------------------------------------------------

def path_env(build_dir, **extra):
    env = dict(os.environ, MICROVM_BUILD=str(build_dir))
    env["PATH"] = f"{build_dir / 'src' / 'cli'}:{env['PATH']}"
    env.update(extra)
    return env


@pytest.mark.parametrize("block", [b for b in SHELL_BLOCKS if b.marker == "run"],
                         ids=lambda b: b.where)
def test_run_block(block, build_dir, image_dir):
    r = subprocess.run(["sh", "-e", "-c", block.text], cwd=TOP, capture_output=True,
                       text=True, timeout=120, env=path_env(build_dir))
    assert r.returncode == 0, (f"{block.where}: the example fails (exit {r.returncode}):\n"
                               f"{r.stdout}{r.stderr}")


# -- appliance blocks --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image_dir(build_dir):
    """The guest image of this tree (guest/image/build.sh, cached by its inputs)."""
    return build_image(build_dir)


@pytest.fixture(scope="module")
def bed(vpn_bed):
    return vpn_bed


@pytest.fixture(scope="module")
def services(bed, tmp_path_factory):
    """HTTP on port 80 and sshd on port 22 of the VPN server's tunnel address."""
    with vpnlib.vpn_services(bed, tmp_path_factory.mktemp("svc"), PAGE, 80, 22,
                             ssh_command=f"echo {SSH_SAYS}") as d:
        (d / "www" / "index.html").write_text(PAGE)
        yield d


@pytest.fixture(scope="module")
def user_host(bed):
    """A network namespace playing the user's machine: a link to the VPN server, nothing else.

    The appliance's traffic leaves it as ordinary sockets of this namespace (libslirp), so
    the OpenVPN server is reachable over a veth, and nothing can leave the machine.
    """
    host = vpnlib.Netns("usr")
    veth = "mvd" + uuid.uuid4().hex[:8]
    try:
        vpnlib._run("ip", "link", "add", veth + "h", "netns", host.name, "type", "veth",
                    "peer", "name", veth + "s", "netns", bed.server.name)
        host.run("ip", "addr", "add", HOST_IP + "/30", "dev", veth + "h")
        host.run("ip", "link", "set", veth + "h", "up")
        bed.server.run("ip", "addr", "add", LINK_IP + "/30", "dev", veth + "s")
        bed.server.run("ip", "link", "set", veth + "s", "up")
        host.run("ip", "route", "add", vpnlib.SERVER_IP + "/32", "via", LINK_IP)
        yield host
    finally:
        host.close()        # takes the veth pair with it


def substitute(text):
    for doc, ours in SUBSTITUTIONS.items():
        text = text.replace(doc, ours)
    return text


@pytest.mark.parametrize("block", [b for b in SHELL_BLOCKS if b.marker == "appliance"],
                         ids=lambda b: b.where)
def test_appliance_block(block, build_dir, image_dir, bed, services, user_host, tmp_path):
    if not os.path.exists("/etc/ssh/ssh_config"):
        pytest.fail("needs /etc/ssh/ssh_config (openssh-client)")
    work = tmp_path / "work"
    work.mkdir()
    (work / "corp.ovpn").write_text(bed.profile())
    (work / "block.sh").write_text(substitute(block.text) + "\n")
    # The user's cache holds only this tree's image (and kernel, where built), so `microvm up`
    # takes them by default, whatever other trees have built.
    cache = tmp_path / "cache"
    (cache / "image").mkdir(parents=True)
    (cache / "image" / image_dir.name).symlink_to(image_dir)
    kdir = kernel_dir()
    if kdir:
        (cache / "kernel").mkdir()
        (cache / "kernel" / kdir.name).symlink_to(kdir)
    # ssh as a user would have it set up: the key that the bed's sshd accepts.
    (tmp_path / "ssh_config").write_text(
        f"Host *\n  IdentityFile {services}/user\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n")
    control = tmp_path / "run" / "control.sock"
    env = path_env(build_dir, MICROVM_CACHE=str(cache), MICROVM_CONTROL=str(control),
                   TMPDIR=str(tmp_path))
    inner = ("mount --bind \"$1\" /etc/ssh/ssh_config && cd \"$2\" && exec sh -e block.sh")
    argv = ["ip", "netns", "exec", user_host.name, "sh", "-c", inner, "block",
            str(tmp_path / "ssh_config"), str(work)]
    with Pty(argv, env=env) as t:
        try:
            if "vpn connect" in block.text and "--password-stdin" not in block.text:
                t.expect("VPN password:", 120)
                t.send(vpnlib.USERS["alice"] + "\n")
            status = t.wait(240)
        finally:
            if control.exists():     # whatever happened, leave nothing running
                subprocess.run(["ip", "netns", "exec", user_host.name,
                                str(build_dir / "src/cli/microvm"), "down"], env=env,
                               capture_output=True, timeout=60)
        out = t.output
    log = ""
    if (tmp_path / "run" / "up.log").exists():
        log = "\nup.log:\n" + (tmp_path / "run" / "up.log").read_text()
    assert status == 0, f"{block.where}: the example fails (exit {status}):\n{out}{log}"
    if "curl" in block.text:
        assert PAGE.strip() in out, f"{block.where}: curl did not get the page:\n{out}"
    if "ssh " in block.text:
        assert SSH_SAYS in out, f"{block.where}: ssh did not get through:\n{out}"
    if "vpn connect" in block.text:
        assert "connected: " in out, out
    if "microvm status" in block.text:
        assert "microvm:   up, the VPN is connected" in out, out
    if "console --no-follow" in block.text:
        assert "microvm-agent" in out, f"{block.where}: no console output:\n{out}"
    assert vpnlib.USERS["alice"] not in out.split("VPN password:")[-1]
    assert not control.exists(), f"{block.where}: the block leaves the appliance running"
