#!/usr/bin/env python3
"""Drives lakeftpd with Python's ftplib (a real client) and checks results.

Usage: ftplib_check.py HOST PORT USER PASSWORD MODE WORKDIR
MODE is "active" (set_pasv(False): PORT/EPRT) or "passive" (PASV/EPSV).
Checks: binary round trip, TYPE A line-ending conversion both ways, REST
resume of RETR, MLSD facts, NLST, SIZE, MDTM, rename, delete, mkdir/rmd.
Prints one line per check and exits 1 on the first failure.
"""
import ftplib
import io
import os
import sys


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok {name}")


def main():
    host, port, user, password, mode, workdir = sys.argv[1:7]
    ftp = ftplib.FTP()
    ftp.connect(host, int(port), timeout=20)
    ftp.login(user, password)
    ftp.set_pasv(mode == "passive")

    payload = os.urandom(300_000)
    ftp.storbinary("STOR bin.dat", io.BytesIO(payload))
    got = io.BytesIO()
    ftp.retrbinary("RETR bin.dat", got.write)
    check("binary round trip", got.getvalue() == payload)
    check("SIZE", ftp.size("bin.dat") == len(payload))
    check("MDTM", ftp.voidcmd("MDTM bin.dat").startswith("213 20"))

    # TYPE A: the client sends CRLF; the server stores LF (Unix); on RETR
    # the server sends CRLF again and ftplib strips it per line.
    text = "line one\nline two\nlast line\n"
    ftp.storlines("STOR text.txt", io.BytesIO(text.encode()))
    with open(os.path.join(workdir, "text.txt"), "rb") as f:
        stored = f.read()
    check("TYPE A upload stores LF", stored == text.encode(), repr(stored))
    lines = []
    ftp.retrlines("RETR text.txt", lines.append)
    check("TYPE A download", lines == ["line one", "line two", "last line"], repr(lines))
    # Raw check that the wire carries CRLF in ASCII mode.
    ftp.voidcmd("TYPE A")
    conn = ftp.transfercmd("RETR text.txt")
    wire = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        wire += chunk
    conn.close()
    ftp.voidresp()
    check("TYPE A wire is CRLF", wire == text.replace("\n", "\r\n").encode(), repr(wire))

    # REST: resume a download from an offset.
    rest = io.BytesIO()
    ftp.retrbinary("RETR bin.dat", rest.write, rest=100_000)
    check("REST resume of RETR", rest.getvalue() == payload[100_000:])

    ftp.mkd("sub dir")
    ftp.storbinary("STOR sub dir/データ.csv", io.BytesIO(b"a,b\n1,2\n"))
    facts = dict(ftp.mlsd("sub dir", facts=["type", "size"]))
    check("MLSD", facts.get("データ.csv", {}).get("size") == "8" and facts["データ.csv"]["type"] == "file", repr(facts))
    names = sorted(ftp.nlst())
    check("NLST", names == ["bin.dat", "sub dir", "text.txt"], repr(names))

    ftp.rename("text.txt", "renamed.txt")
    check("rename", "renamed.txt" in ftp.nlst())
    ftp.delete("renamed.txt")
    ftp.delete("sub dir/データ.csv")
    ftp.rmd("sub dir")
    check("delete and rmd", sorted(ftp.nlst()) == ["bin.dat"])
    ftp.quit()
    print("all ok")


if __name__ == "__main__":
    main()
