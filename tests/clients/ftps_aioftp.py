#!/usr/bin/env python3
"""aioftp (PyPI) with implicit TLS: `ssl=` wraps the control connection
and every data connection as soon as it is made, so its data handshake
starts before STOR/LIST is sent. Stores FILE... in passive mode, lists
them back, prints OK, or ERR and what failed.

    ftps_aioftp.py PORT USER PASSWORD FILE...
"""
import asyncio
import pathlib
import ssl
import sys

import aioftp

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
files = [pathlib.Path(f) for f in sys.argv[4:]]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


async def main():
    async with aioftp.Client.context(
        "127.0.0.1", port, user, password, ssl=ctx, socket_timeout=10
    ) as client:
        for f in files:
            await client.upload(f, f.name, write_into=True)
        names = {p.name for p, _ in await client.list()}
        missing = [f.name for f in files if f.name not in names]
        print("OK" if not missing else f"ERR missing {missing}")


try:
    asyncio.run(asyncio.wait_for(main(), 30))
except Exception as e:  # the cell records what happened, not a traceback
    print("ERR", type(e).__name__, str(e).splitlines()[0] if str(e) else "")
