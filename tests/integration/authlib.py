"""The host side of the agent's TCP authentication handshake, for every test that talks to
an agent over TCP (docs/protocol.md, "Authentication over TCP"; include/microvm/contract.h).

    secret = authlib.new_secret()                   # 64 hex characters
    authlib.write_secret(path, secret)              # mode 0600, for --auth-secret-file
    s = socket.create_connection(("127.0.0.1", 1025))
    authlib.authenticate(s, secret, 1025)           # raises AuthError if the agent is not ours

vpnlib.Agent and guestlib.agent_request() call this; tests reach the agent through them.
"""
import hashlib
import hmac
import os
import secrets

import sockslib

MAGIC = b"MVMAUTH1"
NONCE_LEN = 32
MAC_LEN = 32
LABEL_AGENT = b"microvm-auth-1 agent"
LABEL_HOST = b"microvm-auth-1 host"
HELLO_LEN = len(MAGIC) + NONCE_LEN
CHALLENGE_LEN = len(MAGIC) + NONCE_LEN + MAC_LEN


class AuthError(ConnectionError):
    """The peer did not prove the secret (or closed the connection during the handshake)."""


def new_secret():
    return secrets.token_hex(32)


def write_secret(path, secret):
    """Write @secret to @path, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)


def mac(secret, label, port, nh, na):
    """HMAC-SHA256(key, label | port (4 bytes BE) | nh | na); key = the secret's 32 bytes."""
    return hmac.new(bytes.fromhex(secret), label + port.to_bytes(4, "big") + nh + na,
                    hashlib.sha256).digest()


def recv_exact(sock, n):
    try:
        return sockslib.recv_exact(sock, n)
    except ConnectionError as e:
        raise AuthError(f"connection closed during the handshake ({e})") from None


def authenticate(sock, secret, port):
    """Run the host side on a fresh connection to @port; return the agent's nonce."""
    nh = os.urandom(NONCE_LEN)
    sock.sendall(MAGIC + nh)
    chall = recv_exact(sock, CHALLENGE_LEN)
    if chall[:len(MAGIC)] != MAGIC:
        raise AuthError("not an authentication challenge")
    na = chall[len(MAGIC):len(MAGIC) + NONCE_LEN]
    if not hmac.compare_digest(chall[len(MAGIC) + NONCE_LEN:],
                               mac(secret, LABEL_AGENT, port, nh, na)):
        raise AuthError("the agent failed authentication (wrong secret or not our agent)")
    sock.sendall(mac(secret, LABEL_HOST, port, nh, na))
    return na
