#!/usr/bin/env python3
"""Python's ftplib.FTP_TLS against lakeftpd (explicit FTPS, PROT P).

    ftps_ftplib.py PORT USER PASSWORD passive|active ACTION

ACTION: `roundtrip` uploads 200 KB and reads it back (prints OK when equal);
`store-small` stores 100 bytes (prints STORED, or ERR and the reply);
`prot-c` asks for PROT C (prints OK, or ERR and the reply). ftplib never
resumes the control connection's TLS session on data connections.
"""
import ftplib
import io
import ssl
import sys

port, user, password, mode, action = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx)
f.connect("127.0.0.1", int(port), timeout=10)
f.login(user, password)
f.set_pasv(mode == "passive")
try:
    if action == "prot-c":
        f.prot_c()
        print("OK")
    elif action == "store-small":
        f.prot_p()
        f.storbinary("STOR small.bin", io.BytesIO(b"x" * 100))
        print("STORED")
    else:
        f.prot_p()
        data = bytes((i * 7 + i // 251) % 256 for i in range(200_000))
        f.storbinary("STOR py.bin", io.BytesIO(data))
        out = io.BytesIO()
        f.retrbinary("RETR py.bin", out.write)
        print("OK" if out.getvalue() == data else "MISMATCH")
except ftplib.error_perm as e:
    print("ERR", e)
f.quit()
