#!/usr/bin/env python3
"""Holds N logged-in idle sessions against a running lakeftpd and prints the
server's memory (Pss from /proc/PID/smaps_rollup, RSS from /proc/PID/status)
before and after: a quick check of the shipped (musl) binary outside the full
benchmark.

Usage: idle_rss.py HOST PORT USER PASSWORD N SERVER_PID
Sessions come from 127.x.y.z source addresses (loopback only); at most 200
logins are in flight; the sessions are held one second, then closed. Run
with `ulimit -n 20000`.
"""
import asyncio
import sys
import time


async def reply(reader):
    line = await reader.readline()
    code = line[:3]
    if line[3:4] == b"-":
        while not (await reader.readline()).startswith(code + b" "):
            pass
    return int(code)


async def login(i, host, port, user, password, gate, held):
    async with gate:
        source = f"127.0.{i // 20000 + 1}.{i % 250 + 1}"
        r, w = await asyncio.open_connection(host, port, local_addr=(source, 0))
        assert await reply(r) == 220
        w.write(f"USER {user}\r\n".encode())
        await w.drain()
        assert await reply(r) == 331
        w.write(f"PASS {password}\r\n".encode())
        await w.drain()
        code = await reply(r)
        assert code == 230, code
        held.append((r, w))


def field(path, name):
    for line in open(path):
        if line.startswith(name):
            return int(line.split()[1])
    raise SystemExit(f"no {name} in {path}")


async def main():
    host, port, user, password, n, pid = sys.argv[1:7]
    port, n, pid = int(port), int(n), int(pid)
    pss0 = field(f"/proc/{pid}/smaps_rollup", "Pss:")
    rss0 = field(f"/proc/{pid}/status", "VmRSS:")
    held = []
    gate = asyncio.Semaphore(200)
    started = time.time()
    await asyncio.gather(*(login(i, host, port, user, password, gate, held) for i in range(n)))
    took = time.time() - started
    await asyncio.sleep(1)
    pss = field(f"/proc/{pid}/smaps_rollup", "Pss:")
    rss = field(f"/proc/{pid}/status", "VmRSS:")
    print(
        f"sessions={len(held)} login_time={took:.1f}s pss_before={pss0}KiB pss={pss}KiB rss={rss}KiB "
        f"per_session_pss={(pss - pss0) / len(held):.2f}KiB per_session_rss={(rss - rss0) / len(held):.2f}KiB"
    )


asyncio.run(main())
