"""A stand-in for the guest agent's two TCP ports, for SOCKS tests that need exact control.

Port 1025 answers the JSON protocol from a tiny in-memory state; port 7602 speaks the relay
handshake ([len][host][port BE] -> one status byte -> bytes both ways) and connects for real,
mapping errors to the agent's status bytes.  Run inside a test's network namespace:
    python3 fake_agent.py [--echo PORT]
It prints "ready" once listening.  The real agent (guest/agent) replaces it end to end in
test_socks_vpn.py; this one lets test_socks.py pin down the SOCKS server's own behaviour.
"""
import asyncio
import errno
import json
import sys

STATE = {"vpn": "disconnected", "tun_ip": "", "profiles": {}}


async def control(reader, writer):
    req = json.loads(await reader.readline())
    cmd = req.get("cmd")
    if cmd == "ping":
        resp = {"status": "pong"}
    elif cmd == "vpn_set_profile":
        STATE["profiles"][req["name"]] = req["content"]
        resp = {"status": "ok"}
    elif cmd == "vpn_start":
        if req.get("password") == "webauth":
            STATE["vpn"] = "webauth_required"
            resp = {"status": "webauth_required", "auth_url": "http://sso.test/a"}
        else:
            STATE.update(vpn="connected", tun_ip="10.8.0.2")
            resp = {"status": "connected", "tun_ip": "10.8.0.2"}
    elif cmd == "vpn_check_webauth":
        STATE.update(vpn="connected", tun_ip="10.8.0.3")
        resp = {"status": "connected", "tun_ip": "10.8.0.3"}
    elif cmd == "vpn_stop":
        STATE.update(vpn="disconnected", tun_ip="")
        resp = {"status": "disconnected"}
    elif cmd == "vpn_status":
        resp = {"status": STATE["vpn"], "tun_ip": STATE["tun_ip"]}
    elif cmd == "list_profiles":
        resp = {"status": "ok", "profiles": sorted(STATE["profiles"])}
    else:
        resp = {"status": "error", "error": "unknown command"}
    writer.write((json.dumps(resp) + "\n").encode())
    await writer.drain()
    writer.close()


async def pump(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


STATUS = {errno.ECONNREFUSED: 5, errno.ENETUNREACH: 3, errno.EHOSTUNREACH: 4}


async def relay(reader, writer):
    try:
        n = (await reader.readexactly(1))[0]
        host = (await reader.readexactly(n)).decode()
        port = int.from_bytes(await reader.readexactly(2), "big")
    except (asyncio.IncompleteReadError, UnicodeDecodeError):
        writer.close()
        return
    try:
        t_reader, t_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
    except asyncio.TimeoutError:
        writer.write(b"\x06")
    except OSError as e:
        writer.write(bytes([STATUS.get(e.errno, 1)]))
    else:
        writer.write(b"\x00")
        await asyncio.gather(pump(reader, t_writer), pump(t_reader, writer))
        t_writer.close()
    await writer.drain()
    writer.close()


async def echo(reader, writer):
    await pump(reader, writer)


async def main():
    servers = [await asyncio.start_server(control, "127.0.0.1", 1025),
               await asyncio.start_server(relay, "127.0.0.1", 7602, backlog=4096)]
    if "--echo" in sys.argv:
        port = int(sys.argv[sys.argv.index("--echo") + 1])
        servers.append(await asyncio.start_server(echo, "127.0.0.1", port, backlog=4096))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))
    asyncio.run(main())
