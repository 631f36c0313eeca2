"""pytest fixtures of the OpenVPN test bed (vpnlib), in one place for two test trees.

tests/integration gets them through conftest.py, which imports them; tests/windows cannot
import that conftest (pytest loads a conftest.py only for the tests under it), so its
modules put tests/integration on sys.path and import them from here.  vpnlib itself stays
free of pytest: the nested tier runs it inside the emulated machine, where there is none.

    vpn_bed              a vpnlib.Testbed (OpenVPN server, its DNS, the namespaces) for a
                         module; skips with the reason when not root or without OpenVPN
    services_fixture()   makes a module's `services` fixture: an HTTP server and an sshd
                         on the VPN server's address (vpnlib.vpn_services), on the bed of
                         that module's `bed` fixture

A module names its bed `bed`: under tests/integration `def bed(vpn_bed): return vpn_bed`
(one Testbed for `bed` and conftest's `vpn_agent`), elsewhere `from vpnfixtures import
vpn_bed as bed`.  Then `services = vpnfixtures.services_fixture(PAGE, HTTP_PORT, SSH_PORT)`.
"""
import pytest

import vpnlib


def skip_unless_root():
    """Skip the test (with vpnlib.needs_root()'s reason) unless the test bed can be made."""
    why = vpnlib.needs_root()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def vpn_bed(tmp_path_factory):
    """A vpnlib.Testbed shared by the tests of a module (root: namespaces, tun)."""
    skip_unless_root()
    with vpnlib.Testbed(tmp_path_factory.mktemp("vpn")) as b:
        yield b


def services_fixture(page, http_port, ssh_port, **kw):
    """A module fixture `services`: vpnlib.vpn_services(bed, <a new directory>, @page,
    @http_port, @ssh_port, **@kw) on the module's `bed`; yields its directory (the sshd's
    user key is <dir>/user)."""
    @pytest.fixture(scope="module", name="services")
    def services(bed, tmp_path_factory):
        """HTTP and sshd on the VPN server's address in the server namespace; keys made here."""
        with vpnlib.vpn_services(bed, tmp_path_factory.mktemp("svc"), page, http_port,
                                 ssh_port, **kw) as d:
            yield d
    return services
