#!/usr/bin/env python3
"""delayproxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS - a TCP relay on 127.0.0.1 that
holds every chunk it forwards for DELAY_MS, in each direction and in order: a round trip through
it costs 2 x DELAY_MS more. The lab has no netem; the benchmarks use this to see how a sender
behaves at Internet distances (bench_delivery.py, mode latency)."""
import asyncio
import sys
import time

PORT, HOST, TPORT, DELAY = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) / 1000


async def pump(reader, writer):
    """Copies reader to writer, each chunk DELAY after it arrived; closes writer at the end."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            arrived, data = await queue.get()
            wait = arrived + DELAY - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic(), data))
            if not data:
                break
    except ConnectionError:
        queue.put_nowait((time.monotonic(), b""))
    await task


async def client(creader, cwriter):
    try:
        sreader, swriter = await asyncio.open_connection(HOST, TPORT)
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pump(creader, swriter), pump(sreader, cwriter), return_exceptions=True)


async def main():
    server = await asyncio.start_server(client, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
