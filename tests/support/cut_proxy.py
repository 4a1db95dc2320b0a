#!/usr/bin/env python3
"""A TCP proxy for tests that breaks downloads: the first connection is cut (reset) once it
has carried CUT_AFTER bytes from the server to the client; later connections pass through.
Writes its port to PORT_FILE when ready and, per connection, lines "conn N: <request line>
<range header>" and "conn N: carried BYTES" (server to client, headers included) to the log.
A reset drops what the kernel had not sent yet, so the cut connection's count can exceed
what the client got.

Usage: cut_proxy.py UPSTREAM_HOST UPSTREAM_PORT CUT_AFTER PORT_FILE LOG_FILE"""
import asyncio, os, signal, socket, struct, sys

upstream_host, upstream_port, cut_after, port_file, log_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
connections = 0


def log(line):
    with open(log_file, "a") as f:
        f.write(line + "\n")


async def handle(client_reader, client_writer):
    global connections
    connections += 1
    number = connections
    server_reader, server_writer = await asyncio.open_connection(upstream_host, upstream_port)
    first = True

    async def client_to_server():
        nonlocal first
        while data := await client_reader.read(65536):
            if first:
                head = data.decode("latin-1", "replace").split("\r\n")
                rng = [h for h in head if h.lower().startswith("range:")]
                log(f"conn {number}: {head[0]} {rng[0] if rng else 'no-range'}")
                first = False
            server_writer.write(data)
            await server_writer.drain()
        server_writer.close()

    async def server_to_client():
        sent = 0
        while data := await server_reader.read(65536):
            if number == 1 and cut_after >= 0 and sent + len(data) >= cut_after:
                data = data[: max(0, cut_after - sent)]
                client_writer.write(data)
                await client_writer.drain()
                sock = client_writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not a clean close
                client_writer.transport.abort()
                server_writer.transport.abort()
                log(f"conn {number}: cut after {sent + len(data)} bytes")
                return
            client_writer.write(data)
            sent += len(data)
            await client_writer.drain()
        client_writer.close()
        log(f"conn {number}: carried {sent}")

    try:
        await asyncio.gather(client_to_server(), server_to_client())
    except (ConnectionError, OSError):
        pass


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, port_file)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


asyncio.run(main())
