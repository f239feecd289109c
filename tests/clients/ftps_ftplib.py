#!/usr/bin/env python3
"""Python's ftplib.FTP_TLS against lakeftpd (explicit FTPS, PROT P).

    ftps_ftplib.py PORT USER PASSWORD passive|active ACTION [reuse] [tls1.2] [FILE...]

ACTION: `roundtrip` uploads 200 KB and reads it back (prints OK when equal);
`store-small` stores 100 bytes (prints STORED, or ERR and the reply);
`store-files` stores each FILE under its base name (prints OK, or
`ERR put #N` and the reply); `prot-c` asks for PROT C (prints OK, or ERR and the reply). ftplib never
resumes the control connection's TLS session on data connections; with
`reuse` each data connection resumes the control connection's current
session (`session=`, the usual recipe for servers that require reuse);
`tls1.2` caps the version at TLS 1.2; `no-ticket` refuses RFC 5077
tickets, so TLS 1.2 resumes by session id. `foreign:OTHER` logs in a second
control connection as OTHER (same password) and stores 100 bytes with
`reuse`, but resuming OTHER's session (prints STORED, or ERR and the reply).
"""
import ftplib
import io
import ssl
import sys

port, user, password, mode, action = sys.argv[1:6]
options = [a for a in sys.argv[6:] if a in ("reuse", "tls1.2", "no-ticket")]
files = [a for a in sys.argv[6:] if a not in options]


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """Data connections resume the TLS session of `session_of` (by default
    this control connection)."""

    session_of = None

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            source = self.session_of or self
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=source.sock.session
            )
        return conn, size


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if "tls1.2" in options:
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if "no-ticket" in options:
    # No RFC 5077 ticket: TLS 1.2 resumes by session id.
    ctx.options |= ssl.OP_NO_TICKET
f = (ReusingFTP_TLS if "reuse" in options else ftplib.FTP_TLS)(context=ctx)
f.connect("127.0.0.1", int(port), timeout=10)
f.login(user, password)
f.set_pasv(mode == "passive")
try:
    if action == "prot-c":
        f.prot_c()
        print("OK")
    elif action.startswith("foreign:"):
        other = ReusingFTP_TLS(context=ctx)
        other.connect("127.0.0.1", int(port), timeout=10)
        other.login(action.split(":", 1)[1], password)
        other.voidcmd("NOOP")  # reads the TLS 1.3 tickets sent after login
        f.session_of = other
        f.prot_p()
        f.storbinary("STOR small.bin", io.BytesIO(b"x" * 100))
        print("STORED")
    elif action == "store-files":
        f.prot_p()
        for n, path in enumerate(files, 1):
            try:
                with open(path, "rb") as data:
                    f.storbinary("STOR " + path.rsplit("/", 1)[-1], data)
            except ftplib.error_perm as e:
                print(f"ERR put #{n}", e)
                break
        else:
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
