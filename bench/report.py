#!/usr/bin/env python3
"""Turn one bench/run.sh run into bench/results.md.

    report.py WORK_DIR OUT_FILE

WORK_DIR holds hyperfine's JSON exports (hit-file.json, hit-keyring.json,
aws.json, cold.json) and `values`, the key=value lines run.sh wrote (peak RSS,
burst results, binary size, load averages). The machine, commit and tool
versions come from the environment (BENCH_MACHINE_*, BENCH_VERSIONS, commit).
"""
import datetime
import glob
import json
import os
import statistics
import sys

MIB = 1024 * 1024


def main(work, out_path):
    values = {}
    bursts = []
    with open(os.path.join(work, "values")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            if key.startswith("burst."):
                wall, ok, distinct, calls = value.split()
                bursts.append((float(wall), int(ok), int(distinct), int(calls)))
            else:
                values[key] = value

    def load(name):
        """Pool the rounds of one comparison: one result per command, in the
        order of the first round, with the times of every round, and the
        per-round medians (for the spread of a ratio across rounds)."""
        pooled = {}
        paths = sorted(glob.glob(os.path.join(work, f"{name}.*.json")),
                       key=lambda p: int(p.rsplit(".", 2)[1]))
        for path in paths:
            with open(path) as f:
                for r in json.load(f)["results"]:
                    entry = pooled.setdefault(r["command"], {"command": r["command"], "times": [], "rounds": []})
                    entry["times"].extend(r["times"])
                    entry["rounds"].append(statistics.median(r["times"]))
        for entry in pooled.values():
            t = entry["times"]
            entry.update(median=statistics.median(t), mean=statistics.fmean(t),
                         stddev=statistics.stdev(t) if len(t) > 1 else 0.0, min=min(t), max=max(t))
        return list(pooled.values())

    hit_file = load("hit-file")
    hit_keyring = load("hit-keyring")
    aws = load("aws")
    cold = load("cold")
    rounds = len(hit_file[0]["rounds"])

    def spread(a, b):
        """The lowest and highest per-round ratio a/b."""
        ratios = [x / y for x, y in zip(a["rounds"], b["rounds"])]
        return f"rounds {min(ratios):.2f}–{max(ratios):.2f}x"

    def ms(result):
        return result["median"] * 1000

    def rss_mib(name):
        return int(values[f"rss.{name}"]) / 1024

    rows = []  # (goal, target, measured, passed)

    def row(goal, target, measured, passed):
        rows.append((goal, target, measured, passed))

    for label, runs in (("file store", hit_file), ("keyutils", hit_keyring)):
        noop, version, hit = runs
        ratio = ms(hit) / ms(noop)
        row(f"Cache hit ({label}) vs a do-nothing Rust binary", "≤ 1.3x",
            f"{ratio:.2f}x ({ms(hit):.2f} ms vs {ms(noop):.2f} ms; {spread(hit, noop)})", ratio <= 1.3)
        # `--version` is handed to the full program since the front builds only `get` and
        # `exec`: shown in the times table, no longer a goal.
        del version
    cli, aws_hit_file, aws_hit_keyring = aws
    for label, hit in (("file store", aws_hit_file), ("keyutils", aws_hit_keyring)):
        speedup = ms(cli) / ms(hit)
        row(f"Cache hit ({label}) vs `aws redshift get-cluster-credentials`", "≥ 150x faster",
            f"{speedup:.0f}x ({ms(hit):.2f} ms vs {ms(cli):.0f} ms)", speedup >= 150)
    for label, name in (("file store", "hit_file"), ("keyutils", "hit_keyring")):
        row(f"Cache hit ({label}) peak RSS", "≤ 8 MiB", f"{rss_mib(name):.1f} MiB", rss_mib(name) <= 8)
    cold_count, cold_moto = cold
    row("Cold call (`--cache none`), counting server with no delay: the goal's endpoint", "≤ 25 ms",
        f"{ms(cold_count):.1f} ms", ms(cold_count) <= 25)
    row("Cold call (`--cache none`), moto (for reference: includes moto's own latency)", "≤ 25 ms",
        f"{ms(cold_moto):.1f} ms", ms(cold_moto) <= 25)
    row("Cold call peak RSS, counting server", "≤ 30 MiB", f"{rss_mib('cold_count'):.1f} MiB",
        rss_mib("cold_count") <= 30)
    row("Cold call peak RSS, moto", "≤ 30 MiB", f"{rss_mib('cold_moto'):.1f} MiB", rss_mib("cold_moto") <= 30)
    n = len(bursts)
    calls = [b[3] for b in bursts]
    row(f"Burst of 64 on a cold cache, 500 ms endpoint: API calls per batch ({n} batches)", "exactly 1",
        ", ".join(map(str, calls)), all(c == 1 for c in calls))
    oks = [b[1] for b in bursts]
    row("Burst: invocations that succeeded, per batch", "64 of 64", ", ".join(map(str, oks)),
        all(o == 64 for o in oks))
    distinct = [b[2] for b in bursts]
    row("Burst: distinct passwords handed out, per batch", "1", ", ".join(map(str, distinct)),
        all(d == 1 for d in distinct))
    walls = [b[0] for b in bursts]
    wall = statistics.median(walls)
    row("Burst: wall time of the whole batch (median)", "≤ 1.0 s",
        f"{wall / 1000:.3f} s (min {min(walls) / 1000:.3f}, max {max(walls) / 1000:.3f})", wall <= 1000)
    front = int(values["size.bytes"]) / MIB
    helper = int(values["size.aws_bytes"]) / MIB
    row("The front (`redshift-creds`, --profile front), stripped", "≤ 2 MiB", f"{front:.2f} MiB",
        front <= 2)
    row("Release binaries, stripped, LTO, all features: redshift-creds + redshift-creds-aws together",
        "≤ 12 MiB", f"{front + helper:.2f} MiB ({front:.2f} + {helper:.2f})", front + helper <= 12)

    lines = []
    add = lines.append
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    add("# Benchmark results")
    add("")
    add("Written by `bench/run.sh`; see BENCHMARKS.md for the method and what the numbers mean.")
    add("")
    add(f"* Date: {now}")
    add(f"* Commit: {os.environ.get('commit', '?')}")
    add(f"* Machine: {os.environ.get('BENCH_MACHINE_NPROC', '?')} cores, "
        f"{os.environ.get('BENCH_MACHINE_CPU', '?')}, {os.environ.get('BENCH_MACHINE_MEM', '?')}, "
        f"{os.environ.get('BENCH_MACHINE_KERNEL', '?')}")
    add(f"* Tools: {os.environ.get('BENCH_VERSIONS', '?')}")
    loads = ", ".join(f"{k[5:]} {v}" for k, v in values.items() if k.startswith("load."))
    add(f"* Load average (1, 5, 15 min) at each phase: {loads}")
    add("")
    met = sum(1 for r in rows if r[3])
    add(f"## Goals: {met} of {len(rows)} met")
    add("")
    add("| Goal | Target | Measured | Result |")
    add("|---|---|---|---|")
    for goal, target, measured, passed in rows:
        add(f"| {goal} | {target} | {measured} | {'pass' if passed else '**MISS**'} |")
    add("")
    add("## Times (hyperfine, milliseconds)")
    add("")
    add(f"Each comparison was measured side by side: its runs were split into {rounds} hyperfine rounds "
        "that alternate the order of the commands; the numbers pool all rounds.")
    add("")
    add("| Comparison | Command | Median | Mean ± σ | Min | Max | Runs |")
    add("|---|---|---|---|---|---|---|")
    for title, runs in (("hit, file store", hit_file), ("hit, keyutils (in one `keyctl session -`)", hit_keyring),
                        ("AWS CLI (in one `keyctl session -`)", aws), ("cold call", cold)):
        for r in runs:
            add(f"| {title} | {r['command']} | {r['median'] * 1000:.2f} | {r['mean'] * 1000:.2f} ± "
                f"{r['stddev'] * 1000:.2f} | {r['min'] * 1000:.2f} | {r['max'] * 1000:.2f} | {len(r['times'])} |")
    add("")
    add("## Peak RSS (/usr/bin/time -v, median)")
    add("")
    add("| Command | Peak RSS |")
    add("|---|---|")
    for name, label in (("noop", "do-nothing Rust binary"), ("version", "redshift-creds --version"),
                        ("hit_file", "get, hit (file)"), ("hit_keyring", "get, hit (keyutils)"),
                        ("cold_count", "get, cold (counting server)"), ("cold_moto", "get, cold (moto)")):
        add(f"| {label} | {rss_mib(name):.2f} MiB ({values[f'rss.{name}']} KiB) |")
    add("")
    add("## Burst batches (64 × `get --cache file`, empty cache, endpoint answers after 500 ms)")
    add("")
    add("| Batch | Wall time | Succeeded | Distinct passwords | API calls |")
    add("|---|---|---|---|---|")
    for i, (wall_ms, ok, d, c) in enumerate(bursts, 1):
        add(f"| {i} | {wall_ms / 1000:.3f} s | {ok}/64 | {d} | {c} |")
    add("")
    add(f"Binaries: redshift-creds {int(values['size.bytes'])} bytes, redshift-creds-aws "
        f"{int(values['size.aws_bytes'])} bytes; `file`: {values.get('size.file', '?')}")
    add("")
    with open(out_path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
