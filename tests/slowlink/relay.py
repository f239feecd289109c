#!/usr/bin/env python3
"""A slow link in user space (the kernel here has no sch_netem): a TCP relay
that holds every chunk DELAY ms in each direction before passing it on, for
tests/slowlink.rs. Loss is the kernel's own (nftables drops on the veth the
relay's traffic crosses), so TCP retransmits as it would on a real link.

    relay.py --delay-ms 100 --log FILE \
        --pipe control LISTEN_HOST:PORT TARGET_HOST:PORT \
        --pipe data LISTEN_HOST:PORT TARGET_HOST:PORT

Each pipe accepts connections and, DELAY ms later (the SYN's trip), opens
its own to the target. Every chunk read is logged as a JSON line
{"t": seconds, "pipe": name, "conn": n, "dir": "in"|"out", "ev": "recv"|"sent"|"eof"|"open", "n": bytes}
where "in" is towards the target. Stops when stdin closes.
"""
import argparse
import asyncio
import itertools
import json
import sys
import time

counter = itertools.count(1)


class Log:
    def __init__(self, path):
        self.f = open(path, "w", buffering=1)

    def write(self, **event):
        event["t"] = round(time.monotonic(), 6)
        self.f.write(json.dumps(event) + "\n")


async def forward(reader, writer, delay, log, pipe, conn, direction):
    """Copies reader to writer, each chunk (and the EOF) `delay` later."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if chunk is None:
                log.write(pipe=pipe, conn=conn, dir=direction, ev="eof", n=0)
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(chunk)
            await writer.drain()
            log.write(pipe=pipe, conn=conn, dir=direction, ev="sent", n=len(chunk))

    sender = asyncio.ensure_future(send())
    while True:
        try:
            chunk = await reader.read(65536)
        except OSError:
            chunk = b""
        log.write(pipe=pipe, conn=conn, dir=direction, ev="recv", n=len(chunk))
        await queue.put((time.monotonic() + delay, chunk or None))
        if not chunk:
            break
    await sender


async def serve(pipe, listen, target, delay, log):
    host, port = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def handle(reader, writer):
        conn = next(counter)
        log.write(pipe=pipe, conn=conn, dir="out", ev="open", n=0)
        await asyncio.sleep(delay)
        treader, twriter = await asyncio.open_connection(thost, int(tport))
        await asyncio.gather(
            forward(reader, twriter, delay, log, pipe, conn, "in"),
            forward(treader, writer, delay, log, pipe, conn, "out"),
        )
        writer.close()
        twriter.close()

    return await asyncio.start_server(handle, host, int(port), reuse_address=True)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--pipe", nargs=3, action="append", required=True)
    args = parser.parse_args()
    log = Log(args.log)
    servers = [await serve(n, l, t, args.delay_ms / 1000, log) for n, l, t in args.pipe]
    print("relay ready", flush=True)
    await asyncio.get_event_loop().run_in_executor(None, sys.stdin.read)
    for s in servers:
        s.close()


asyncio.run(main())
