#!/usr/bin/env python3
"""Prints the benchmark table from the load generator's JSON lines.

    table.py results.jsonl [full|smoke]   # markdown table, ratios vs vsftpd
    table.py --check results.jsonl        # exit 1 if any scenario saw errors
"""
import datetime
import json
import os
import sys

SERVERS = ["lakeftpd", "vsftpd", "pure-ftpd"]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    r = json.loads(line)
                    # The FTPS matrix (certificate x TLS version, run.sh
                    # tlsmatrix) has a table of its own.
                    if r.get("matrix"):
                        r["scenario"] = "matrix-" + r.get("scenario", "?")
                        rows.append(r)
                        continue
                    # FTPS rows ("tls": the negotiated version) are their
                    # own scenarios, beside the plain ones.
                    if r.get("tls") not in (None, "-"):
                        r["scenario"] = "tls-" + r.get("scenario", "?")
                    # Open-loop runs (a fixed rate) beside the closed-loop ones.
                    if r.get("rate"):
                        r["scenario"] += "-open"
                    # The same scenario with another certificate (run.sh tags it).
                    if r.get("cert"):
                        r["scenario"] += "-" + r["cert"]
                    rows.append(r)
                except json.JSONDecodeError:
                    rows.append({"scenario": "?", "label": "?", "errors": 1, "raw": line})
    return rows


def check(path):
    rows = load(path)
    bad = [r for r in rows if r.get("errors", 1) or r.get("dead_after", 0)]
    for r in bad:
        print("FAILED:", json.dumps(r), file=sys.stderr)
    passed = len(rows) - len(bad)
    print(f"{passed} passed, {len(bad)} failed")
    return 1 if bad or not rows else 0


def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def main(path, mode):
    rows = load(path)
    disk = os.environ.get("BENCH_DISK", "/var/tmp/lakeftpd-bench-disk")
    homes = {r.get("home", "tmpfs") for r in rows}
    kinds = [("tmpfs", "homes on tmpfs"), ("disk", f"homes on disk ({disk}, root filesystem)"),
             ("xfs", "homes on XFS (a loop device, its image on the root filesystem)")]
    for home, title in kinds:
        if home in homes:
            render([r for r in rows if r.get("home", "tmpfs") == home], mode, title)
            print()


def render(rows, mode, title):
    by = {}
    for r in rows:
        key = (r.get("scenario"), r.get("label"), r.get("n"), r.get("c"), r.get("mode"))
        by[key] = r

    def get(scn, srv, field, n=None, c=None, mode=None):
        r = by.get((scn, srv, n, c, mode))
        return None if r is None else r.get(field)

    def per_upload(scn, srv, c, m):
        cpu, ok = get(scn, srv, "server_cpu_s", c=c, mode=m), get(scn, srv, "ok", c=c, mode=m)
        return None if not cpu or not ok else cpu * 1000 / ok

    def flushes(scn, srv, c=None, m=None, n=None):
        """Flush syscalls (fsync, fdatasync, sync_file_range, syncfs) of
        the server's whole run per acknowledged upload."""
        f, ok = get(scn, srv, "flushes", n=n, c=c, mode=m), get(scn, srv, "ok", n=n, c=c, mode=m)
        return None if f is None or not ok else f / ok

    lines = []
    out = lines.append
    cpu = os.cpu_count()
    out(f"Benchmark ({mode}) {datetime.date.today().isoformat()}, {cpu} cores, loopback, {title}")
    out("")
    out("| scenario | metric | " + " | ".join(SERVERS) + " | lakeftpd / vsftpd | lakeftpd / pure-ftpd |")
    out("|---|---|" + "---|" * (len(SERVERS) + 2))

    def row(name, metric, vals, better="higher", nd=1):
        cells = [fmt(v, nd) for v in vals]
        ratios = []
        for other in vals[1:]:
            if vals[0] is None or other is None or other == 0 or vals[0] == 0:
                ratios.append("–")
            elif better == "higher":
                ratios.append(f"{vals[0] / other:.1f}×")
            else:  # lower is better: show how many times less
                r = other / vals[0]
                ratios.append(f"{r:.1f}× less" if r >= 1 else f"{1 / r:.1f}× more")
        out(f"| {name} | {metric} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")

    idle_ns = sorted({r["n"] for r in rows if r.get("scenario") == "idle"})
    for n in idle_ns:
        v = [get("idle", s, "kib_per_session", n=n) for s in SERVERS]
        row(f"idle N={n:,}", "KiB/session (Pss at N − Pss at 0) / N", v, better="lower", nd=1)
        v = [None if get("idle", s, "pssn_kib", n=n) is None or not get("idle", s, "ok", n=n)
             else get("idle", s, "pssn_kib", n=n) / get("idle", s, "ok", n=n) for s in SERVERS]
        row(f"idle N={n:,}", "KiB/session (Pss at N / N, base included)", v, better="lower", nd=1)
        v = [get("idle", s, "pssn_kib", n=n) for s in SERVERS]
        row(f"idle N={n:,}", "server Pss at N (KiB)", v, better="lower")
        v = [get("idle", s, "pss0_kib", n=n) for s in SERVERS]
        row(f"idle N={n:,}", "server Pss at 0 (KiB)", v, better="lower")
        v = [(get("idle", s, "ok", n=n), get("idle", s, "errors", n=n)) for s in SERVERS]
        out(f"| idle N={n:,} | held / errors | " + " | ".join(
            "–" if a is None else f"{a:,} / {b:,}" for a, b in v) + " | | |")
    ups = sorted({(r["c"], r["mode"]) for r in rows
                  if r.get("scenario") == "upload" and r.get("label") in SERVERS},
                 key=lambda x: (x[0], x[1]))
    for c, m in ups:
        name = f"uploads C={c:,} {m}"
        row(name, "uploads/s", [get("upload", s, "per_s", c=c, mode=m) for s in SERVERS])
        row(name, "p50 ms", [get("upload", s, "p50_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "p99 ms", [get("upload", s, "p99_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "max ms", [get("upload", s, "max_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "errors", [get("upload", s, "errors", c=c, mode=m) for s in SERVERS], "lower")
        row(name, "server CPU s", [get("upload", s, "server_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "server CPU ms per upload", [per_upload("upload", s, c, m) for s in SERVERS], "lower", 2)
        row(name, "flushes per upload", [flushes("upload", s, c, m) for s in SERVERS], "lower", 2)
    # lakeftpd with ack = s3 (226 after S3 confirmed the object) beside the
    # peers' local-disk figures from the same run.
    s3ups = sorted({(r["label"], r["c"], r["mode"]) for r in rows
                    if r.get("scenario") == "upload" and r.get("label", "").startswith("lakeftpd-s3")})
    for label, c, m in s3ups:
        ack = "disk" if label == "lakeftpd-s3-disk" else "s3"
        name = f"uploads C={c:,} {m}, lakeftpd with S3, ack = {ack} (peers: local disk)"

        def s3v(field, s):
            return get("upload", label if s == "lakeftpd" else s, field, c=c, mode=m)
        row(name, "uploads/s", [s3v("per_s", s) for s in SERVERS])
        row(name, "p50 ms", [s3v("p50_ms", s) for s in SERVERS], "lower", 2)
        row(name, "p99 ms", [s3v("p99_ms", s) for s in SERVERS], "lower", 2)
        row(name, "max ms", [s3v("max_ms", s) for s in SERVERS], "lower", 2)
        row(name, "errors", [s3v("errors", s) for s in SERVERS], "lower")
        row(name, "server CPU s (lakeftpd: without s3s-fs)", [s3v("server_cpu_s", s) for s in SERVERS], "lower", 2)
        row(name, "flushes per upload", [flushes("upload", label if s == "lakeftpd" else s, c, m)
                                         for s in SERVERS], "lower", 2)
        chk = by.get(("s3check", label, None, c, m))
        if chk:
            out(f"| {name} | S3 objects stored / acknowledged; s3s-fs CPU s | "
                f"{chk['objects']:,} / {chk['ok']:,}; {chk['s3s_fs_cpu_s']:.2f} | | | | |")
    storms = sorted({(r["n"], r.get("mode")) for r in rows if r.get("scenario") == "storm"})
    for n, m in storms:
        name = f"login storm {n:,} {m}"
        # "Until all have a 226" exists only when all did.
        row(name, "s until all 226", [get("storm", s, "all_226_s", n=n, mode=m)
                                       if get("storm", s, "errors", n=n, mode=m) == 0 else None
                                       for s in SERVERS], "lower", 2)
        row(name, "s until last 226 seen", [get("storm", s, "all_226_s", n=n, mode=m) for s in SERVERS], "lower", 2)
        row(name, "acknowledged", [get("storm", s, "ok", n=n, mode=m) for s in SERVERS])
        row(name, "errors", [get("storm", s, "errors", n=n, mode=m) for s in SERVERS], "lower")
        row(name, "server CPU s", [get("storm", s, "server_cpu_s", n=n, mode=m) for s in SERVERS], "lower", 2)
        row(name, "load generator CPU s", [get("storm", s, "loadgen_cpu_s", n=n, mode=m) for s in SERVERS], "lower", 2)
        row(name, "flushes per upload", [flushes("storm", s, m=m, n=n) for s in SERVERS], "lower", 2)
        v = [get("storm", s, "shard_peak_fds", n=n, mode=m) for s in SERVERS]
        out(f"| {name} | load generator peak fds per process | " + " | ".join(
            "–" if not x else ", ".join(f"{y:,}" for y in x) for x in v) + " | | |")
    if any(r.get("scenario") == "bulk" for r in rows):
        def b(s, f):
            for r in rows:
                if r.get("scenario") == "bulk" and r.get("label") == s:
                    return r.get(f)
            return None
        size = next((r.get("bytes") for r in rows if r.get("scenario") == "bulk" and r.get("bytes")), 0)
        name = f"bulk {size / 2**20:,.0f} MiB"
        row(name, "STOR MiB/s", [b(s, "up_mib_s") for s in SERVERS])
        row(name, "RETR MiB/s", [b(s, "down_mib_s") for s in SERVERS])
        row(name, "STOR server CPU s/GiB", [b(s, "up_cpu_s_per_gib") for s in SERVERS], "lower", 3)
        row(name, "RETR server CPU s/GiB", [b(s, "down_cpu_s_per_gib") for s in SERVERS], "lower", 3)
        row(name, "flushes (one STOR, one RETR)", [b(s, "flushes") for s in SERVERS], "lower")
    # Explicit FTPS (AUTH TLS, PROT P, data connections resuming the
    # control session): lakeftpd and vsftpd (pure-ftpd is not run with TLS).
    tls_rows = [r for r in rows if r.get("scenario", "").startswith("tls-")]
    if tls_rows:
        ver = {s: ", ".join(sorted({r.get("tls") for r in tls_rows if r.get("label") == s})) or "–"
               for s in SERVERS}
        out(f"| FTPS | TLS version negotiated | " + " | ".join(ver[s] for s in SERVERS) + " | | |")
    for n in sorted({r["n"] for r in tls_rows if r.get("scenario") == "tls-idle"}):
        name = f"FTPS idle N={n:,}"
        row(name, "KiB/session (Pss at N − Pss at 0) / N",
            [get("tls-idle", s, "kib_per_session", n=n) for s in SERVERS], "lower")
        v = [(get("tls-idle", s, "ok", n=n), get("tls-idle", s, "errors", n=n)) for s in SERVERS]
        out(f"| {name} | held / errors | " + " | ".join(
            "–" if a is None else f"{a:,} / {b:,}" for a, b in v) + " | | |")
    for c, m in sorted({(r["c"], r["mode"]) for r in tls_rows if r.get("scenario") == "tls-login"}):
        name = f"FTPS logins C={c:,}"
        row(name, "logins/s (connect, AUTH TLS, USER/PASS, QUIT)", [get("tls-login", s, "per_s", c=c, mode=m) for s in SERVERS])
        row(name, "p50 ms", [get("tls-login", s, "p50_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "p99 ms", [get("tls-login", s, "p99_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "errors", [get("tls-login", s, "errors", c=c, mode=m) for s in SERVERS], "lower")
        row(name, "server CPU s", [get("tls-login", s, "server_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "load generator CPU s (one thread)", [get("tls-login", s, "loadgen_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
    for c, m in sorted({(r["c"], r["mode"]) for r in tls_rows if r.get("scenario") == "tls-upload"}):
        name = f"FTPS uploads C={c:,} {m}"
        row(name, "uploads/s", [get("tls-upload", s, "per_s", c=c, mode=m) for s in SERVERS])
        row(name, "p50 ms", [get("tls-upload", s, "p50_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "p99 ms", [get("tls-upload", s, "p99_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "max ms", [get("tls-upload", s, "max_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "errors", [get("tls-upload", s, "errors", c=c, mode=m) for s in SERVERS], "lower")
        row(name, "server CPU s", [get("tls-upload", s, "server_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "server CPU ms per upload", [per_upload("tls-upload", s, c, m) for s in SERVERS], "lower", 2)
        row(name, "load generator CPU s (one thread)", [get("tls-upload", s, "loadgen_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
    for c, m in sorted({(r["c"], r["mode"]) for r in tls_rows if r.get("scenario") == "tls-upload-open"}):
        rate = next(r["rate"] for r in tls_rows if r.get("scenario") == "tls-upload-open")
        name = f"FTPS uploads C={c:,} {m}, open loop {rate}/s"
        row(name, "uploads/s done", [get("tls-upload-open", s, "per_s", c=c, mode=m) for s in SERVERS])
        row(name, "p50 ms (from the scheduled start)", [get("tls-upload-open", s, "p50_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "p99 ms (from the scheduled start)", [get("tls-upload-open", s, "p99_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "errors", [get("tls-upload-open", s, "errors", c=c, mode=m) for s in SERVERS], "lower")
        row(name, "server CPU s", [get("tls-upload-open", s, "server_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
    for c, m in sorted({(r["c"], r["mode"]) for r in tls_rows if r.get("scenario") == "tls-upload-ecdsa-p256"}):
        name = f"FTPS uploads C={c:,} {m}, ECDSA P-256 certificate"
        sc = "tls-upload-ecdsa-p256"
        row(name, "uploads/s", [get(sc, s, "per_s", c=c, mode=m) for s in SERVERS])
        row(name, "p50 ms", [get(sc, s, "p50_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "p99 ms", [get(sc, s, "p99_ms", c=c, mode=m) for s in SERVERS], "lower", 2)
        row(name, "errors", [get(sc, s, "errors", c=c, mode=m) for s in SERVERS], "lower")
        row(name, "server CPU ms per upload", [per_upload(sc, s, c, m) for s in SERVERS], "lower", 2)
        row(name, "load generator CPU s (one thread)", [get(sc, s, "loadgen_cpu_s", c=c, mode=m) for s in SERVERS], "lower", 2)
    if any(r.get("scenario") == "tls-bulk" for r in rows):
        def tb(s, f):
            for r in rows:
                if r.get("scenario") == "tls-bulk" and r.get("label") == s:
                    return r.get(f)
            return None
        size = next((r.get("bytes") for r in rows if r.get("scenario") == "tls-bulk" and r.get("bytes")), 0)
        name = f"FTPS bulk PROT P {size / 2**20:,.0f} MiB"
        row(name, "STOR MiB/s", [tb(s, "up_mib_s") for s in SERVERS])
        row(name, "RETR MiB/s", [tb(s, "down_mib_s") for s in SERVERS])
        row(name, "STOR server CPU s/GiB", [tb(s, "up_cpu_s_per_gib") for s in SERVERS], "lower", 3)
        row(name, "RETR server CPU s/GiB", [tb(s, "down_cpu_s_per_gib") for s in SERVERS], "lower", 3)
    matrix(rows, row, out)
    errs = [r for r in rows if r.get("errors")]
    if errs:
        out("")
        out("Errors by kind:")
        for r in errs:
            kinds = r.get("error_kinds") or r.get("shard_error_kinds")
            out(f"- {r.get('label')} {r.get('scenario')} n={r.get('n')} c={r.get('c')} {r.get('mode')}: {r.get('errors')} {json.dumps(kinds)}")
    print("\n".join(lines))


def matrix(rows, row, out):
    """The tlsmatrix rows: per certificate and TLS version (the version the
    client offered alone), the saturated rate (closed loop) of each server
    and the open loop at 50 % and 80 % of that server's own saturated rate."""
    mx = [r for r in rows if r.get("matrix")]
    if not mx:
        return

    def find(srv, scn, **kw):
        for r in mx:
            if r.get("label") == srv and r.get("scenario") == scn and all(r.get(k) == v for k, v in kw.items()):
                return r
        return None

    def text(name, metric, cells):
        out(f"| {name} | {metric} | " + " | ".join("–" if v is None else v for v in cells) + " | | |")

    def vals(scn, field, **kw):
        return [(find(s, scn, **kw) or {}).get(field) for s in SERVERS]

    for ver in sorted({r["tls_asked"] for r in mx if r["scenario"] == "matrix-idle"}):
        for n in sorted({r["n"] for r in mx if r["scenario"] == "matrix-idle" and r["tls_asked"] == ver}):
            name = f"FTPS TLS {ver} idle N={n:,}"
            row(name, "KiB/session (Pss at N − Pss at 0) / N",
                vals("matrix-idle", "kib_per_session", tls_asked=ver, n=n), "lower")
            text(name, "held / errors", [None if r is None else f"{r.get('ok', 0):,} / {r.get('errors', 0):,}"
                                         for r in (find(s, "matrix-idle", tls_asked=ver, n=n) for s in SERVERS)])
    combos = sorted({(r.get("cert"), r["tls_asked"], r["mode"], r["c"]) for r in mx if r["scenario"] == "matrix-upload"})
    pcts = sorted({r["load_pct"] for r in mx if r["scenario"] == "matrix-upload" and r["load_pct"] < 100})
    for cert, ver, m, c in combos:
        name = f"FTPS {cert}, TLS {ver}, C={c:,} {m}"
        kw = dict(cert=cert, tls_asked=ver, mode=m, c=c)
        text(name, "TLS version negotiated", vals("matrix-upload", "tls", load_pct=100, **kw))
        row(name, "saturated uploads/s (closed loop)", vals("matrix-upload", "per_s", load_pct=100, **kw))
        row(name, "closed loop p99 ms", vals("matrix-upload", "p99_ms", load_pct=100, **kw), "lower", 2)
        cpu = vals("matrix-upload", "server_cpu_s", load_pct=100, **kw)
        ok = vals("matrix-upload", "ok", load_pct=100, **kw)
        row(name, "server CPU ms per upload", [None if not a or not b else a * 1000 / b for a, b in zip(cpu, ok)], "lower", 2)
        row(name, "load generator CPU s (one thread)", vals("matrix-upload", "loadgen_cpu_s", load_pct=100, **kw), "lower", 2)
        # Each server at its own rate: no ratio between the columns.
        for pct in pcts:
            def cells(field, nd=1):
                return [None if v is None else fmt(v, nd) for v in vals("matrix-upload", field, load_pct=pct, **kw)]
            text(name, f"open loop at {pct} % of its own saturated rate: uploads/s asked", cells("rate"))
            text(name, f"open loop at {pct} %: uploads/s done", cells("per_s"))
            text(name, f"open loop at {pct} %: p50 ms", cells("p50_ms", 2))
            text(name, f"open loop at {pct} %: p99 ms", cells("p99_ms", 2))
        errs = [sum(r.get("errors", 0) for r in mx if r.get("label") == s and r["scenario"] == "matrix-upload"
                    and all(r.get(k) == v for k, v in kw.items())) for s in SERVERS]
        row(name, "errors (all loads)", [e if any(r.get("label") == s for r in mx) else None
                                         for e, s in zip(errs, SERVERS)], "lower")


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "full")
