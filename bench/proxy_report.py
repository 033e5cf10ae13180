#!/usr/bin/env python3
"""Turns bench/proxy.sh's raw values into bench/proxy-results.md (markdown on stdout).

    proxy_report.py VALUES CONNECT_TIMES SECONDS ROUNDS

VALUES holds key=value lines and pgbench lines "S|C CLIENTS ARM ROUND TPS";
CONNECT_TIMES holds "ARM MILLISECONDS" lines. TPS per arm is the median over the rounds;
a fraction is the arm's median over direct's median, and the range is the lowest and
highest of the per-round fractions (each round's arm against that round's direct run).
"""
import statistics
import sys


def main(values_path, connect_path, seconds, rounds):
    kv, runs = {}, []
    for line in open(values_path):
        line = line.rstrip("\n")
        if line[:2] in ("S ", "C "):
            kind, c, arm, r, tps = line.split()
            runs.append((kind, int(c), arm, int(r), float(tps)))
        elif "=" in line:
            k, v = line.split("=", 1)
            kv[k] = v
    times = {}
    for line in open(connect_path):
        arm, ms = line.split()
        times.setdefault(arm, []).append(float(ms))

    def tps(kind, c, arm):
        return {r: t for k, cc, a, r, t in runs if (k, cc, a) == (kind, c, arm)}

    def fraction(kind, c, arm):
        d, x = tps(kind, c, "direct"), tps(kind, c, arm)
        per_round = [x[r] / d[r] for r in x if r in d]
        med = statistics.median(x.values()) / statistics.median(d.values())
        return med, min(per_round), max(per_round)

    out = []
    w = out.append
    w("# Proxy benchmark results (bench/proxy.sh)")
    w("")
    w(f"Run of {kv['date']}, commit {kv['commit']}. Proxy: {kv['proxy_kind']}.")
    w(f"Machine: {kv['machine']}. {kv['versions']}.")
    loads = [f"{k[5:]} {v}" for k, v in kv.items() if k.startswith("load.")]
    w(f"Load average (1/5/15 min) per phase: {'; '.join(loads)}.")
    w(f"pgbench: -T {seconds} per run, {rounds} interleaved rounds; TPS is the median over the rounds.")
    w("")
    w("| Measure | Clients | direct TPS | proxy TPS | pgbouncer TPS | proxy / direct | pgbouncer / direct | proxy / pgbouncer |")
    w("|---|---|---|---|---|---|---|---|")
    for c in sorted({c for k, c, *_ in runs if k == "S"}):
        d = statistics.median(tps("S", c, "direct").values())
        p = statistics.median(tps("S", c, "proxy").values())
        b = statistics.median(tps("S", c, "pgbouncer").values())
        fp, fb = fraction("S", c, "proxy"), fraction("S", c, "pgbouncer")
        w(f"| pgbench -S | {c} | {d:.0f} | {p:.0f} | {b:.0f} | {fp[0]:.2f} ({fp[1]:.2f}–{fp[2]:.2f}) "
          f"| {fb[0]:.2f} ({fb[1]:.2f}–{fb[2]:.2f}) | {p / b:.2f} |")
    for c in sorted({c for k, c, *_ in runs if k == "C"}):
        d = statistics.median(tps("C", c, "direct").values())
        p = statistics.median(tps("C", c, "proxy").values())
        fp = fraction("C", c, "proxy")
        w(f"| pgbench -C -S | {c} | {d:.0f} | {p:.0f} | – | {fp[0]:.2f} ({fp[1]:.2f}–{fp[2]:.2f}) | – | – |")
    w("")
    w("Per run (TPS): " + "; ".join(
        f"{k} c={c} {a} r{r + 1} {t:.0f}" for k, c, a, r, t in runs))
    w("")
    w("Connection set-up (connect, log in, `select 1`, from bench/pgclient.py), interleaved:")
    w("")
    w("| Arm | Median ms | p10 ms | p90 ms | Runs |")
    w("|---|---|---|---|---|")
    for arm, ms in times.items():
        q = statistics.quantiles(ms, n=10)
        w(f"| {arm} | {statistics.median(ms):.2f} | {q[0]:.2f} | {q[-1]:.2f} | {len(ms)} |")
    added = statistics.median(times["proxy"]) - statistics.median(times["direct"])
    w("")
    w(f"Added by the proxy (median proxy − median direct): {added:+.2f} ms. "
      f"GetClusterCredentials calls the counting server received in the whole run: {kv.get('api_calls', '?')}.")
    w("")
    kib = lambda k: int(kv[k])
    w(f"Proxy memory (fresh process): idle VmHWM {kib('rss.idle_hwm') / 1024:.1f} MiB "
      f"(VmRSS {kib('rss.idle_rss') / 1024:.1f} MiB); with {kv['rss.sessions']} sessions open "
      f"(PostgreSQL backends of the role: {kv['rss.backends']}, opened in {kv['rss.sessions_open_s']} s) "
      f"VmHWM {kib('rss.held_hwm') / 1024:.1f} MiB (VmRSS {kib('rss.held_rss') / 1024:.1f} MiB, "
      f"{kv['rss.threads']} threads).")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
