#!/usr/bin/env python3
"""Turn the raw data of `make bench` (target/bench by default) into
bench/results.md (tables) and the data files bench/plot.gp draws.

    bench/report.py RAW_DIR RESULTS_MD MACHINE_LINE LOAD_LINE
"""
import os
import statistics
import sys

raw, results, machine, load = sys.argv[1:5]
PATHS = [
    ("pam_permit", "pam_permit.so (floor)"),
    ("pam_google_authenticator", "pam_google_authenticator.so"),
    ("pam_oath", "pam_oath.so"),
    ("stepup_allow", "stepup, allow path"),
    ("stepup_totp", "stepup, TOTP path"),
]
PEERS = ("pam_google_authenticator", "pam_oath")


def ints(path, field="us"):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if "=" in line:
                kv = dict(p.split("=", 1) for p in line.split())
                out.append(float(kv[field]))
            else:
                out.append(float(line))
    return out


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def ms(us):
    return f"{us / 1000:.2f}"


lines = []
w = lines.append
w("# stepup benchmark results")
w("")
w("Written by `make bench` (bench/run.sh); the method is in docs/performance.md.")
w("")
w(f"- machine: {machine}")
w(f"- load average before / after the run: {load}")
w("")
GOALS_AT = len(lines)  # the goals table goes here, once every section is read
goals = []

# 1. Per-authentication cost
auth = os.path.join(raw, "auth")
w("## 1. Per-authentication cost (in-process driver, pam_start → pam_end)")
w("")
stats = {}
for key, _ in PATHS:
    warm = ints(os.path.join(auth, key + ".warm"))
    cold = ints(os.path.join(auth, key + ".cold"))
    stats[key] = dict(n=len(warm), med=statistics.median(warm), p90=q(warm, 0.9),
                      p99=q(warm, 0.99), cold=statistics.median(cold), ncold=len(cold))
    with open(os.path.join(auth, key + ".cdf"), "w") as f:
        xs = sorted(warm)
        for i, x in enumerate(xs):
            f.write(f"{x / 1000:.4f} {(i + 1) / len(xs):.5f}\n")
floor = stats["pam_permit"]["med"]
peer = min(PEERS, key=lambda k: stats[k]["med"])
w(f"Median over {stats['pam_permit']['n']} authentications per path, in ms; "
  f"× floor = median / pam_permit's median; × peer = median / the fastest peer's "
  f"({peer}) median. Cold = the first authentication in a new process (module "
  f"load included), median of {stats['pam_permit']['ncold']}.")
w("")
w("| path | median | p90 | p99 | × floor | × fastest peer | cold (1st in process) |")
w("|---|---:|---:|---:|---:|---:|---:|")
for key, label in PATHS:
    s = stats[key]
    w(f"| {label} | {ms(s['med'])} | {ms(s['p90'])} | {ms(s['p99'])} | "
      f"{s['med'] / floor:.2f} | {s['med'] / stats[peer]['med']:.2f} | {ms(s['cold'])} |")
w("")
ga = stats["pam_google_authenticator"]["med"]
allow = stats["stepup_allow"]["med"]
totp = stats["stepup_totp"]["med"]
w(f"- allow path / pam_permit: **{allow / floor:.2f}×** (goal ≤ 1.3×: "
  f"{'met' if allow / floor <= 1.3 else 'missed'}); overhead {ms(allow - floor)} ms per authentication")
w(f"- TOTP path / pam_google_authenticator: **{totp / ga:.2f}×**; "
  f"/ the fastest peer ({peer}): **{totp / stats[peer]['med']:.2f}×**")
w("")
verdict = lambda ok: "met" if ok else "missed"
goals.append(("allow path ≤ 1.3 × pam_permit (median, warm)",
              f"{allow / floor:.2f} × ({ms(allow)} ms vs {ms(floor)} ms)",
              verdict(allow / floor <= 1.3)))
goals.append((f"TOTP path ≤ 1.0 × the fastest peer ({peer})",
              f"{totp / stats[peer]['med']:.2f} × ({ms(totp)} ms vs {ms(stats[peer]['med'])} ms)",
              verdict(totp <= stats[peer]["med"])))

# 2. Concurrency
conc = os.path.join(raw, "conc")
w("## 2. Concurrency (closed loop, allow path, every client its own process)")
w("")
rows = []
with open(os.path.join(conc, "summary.tsv")) as f:
    header = f.readline().split()
    for line in f:
        rows.append(dict(zip(header, line.split())))
w("| clients | auth/s | p50 ms | p99 ms | errors | stepupd CPU | stepupd peak RSS | dbus-daemon CPU | pam_permit alone: auth/s, p50, p99 ms |")
w("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
with open(os.path.join(conc, "plot.dat"), "w") as plot:
    for r in rows:
        n = r["clients"]
        secs = float(r["seconds"])
        recs = [l.split() for l in open(os.path.join(conc, f"{n}.txt")) if l.strip()]
        lat = [float(a[3:]) for a, _ in recs]
        errors = sum(1 for _, rc in recs if rc != "rc=0")
        permit = ints(os.path.join(conc, f"permit-{n}.txt"))
        cpu = float(r["daemon_cpu_s"]) / secs * 100
        bus = float(r["bus_cpu_s"]) / secs * 100
        w(f"| {n} | {len(lat) / secs:.0f} | {ms(q(lat, .5))} | {ms(q(lat, .99))} | {errors} | "
          f"{cpu:.0f}% of a core ({float(r['daemon_cpu_s']) * 1e6 / max(1, len(lat)):.0f} µs/auth) | "
          f"{int(r['daemon_peak_kib']) / 1024:.1f} MiB | {bus:.0f}% | "
          f"{len(permit) / secs:.0f}, {ms(q(permit, .5))}, {ms(q(permit, .99))} |")
        plot.write(f"{n} {q(lat, .5) / 1000:.3f} {q(lat, .99) / 1000:.3f} "
                   f"{q(permit, .5) / 1000:.3f} {q(permit, .99) / 1000:.3f}\n")
        if n == "1":
            per = float(r["daemon_cpu_s"]) * 1e6 / max(1, len(lat))
            goals.append(("stepupd CPU per allow decision ≤ 60 µs (1 client, utime + stime over the window / decisions)",
                          f"{per:.0f} µs ({len(lat)} decisions)", verdict(per <= 60)))
        if n == "16":
            ratio = len(lat) / max(1, len(permit))
            goals.append(("16 clients: throughput ≥ 0.8 × pam_permit's, 0 errors",
                          f"{ratio:.2f} × ({len(lat) / secs:.0f} vs {len(permit) / secs:.0f} auth/s), {errors} errors",
                          verdict(ratio >= 0.8 and errors == 0)))
        if n == "256":
            goals.append(("256 clients: 0 errors", f"{errors} errors", verdict(errors == 0)))
w("")

# 3. Scale of state
scale = os.path.join(raw, "scale")
w("## 3. Scale of state (8 concurrent clients, random enrolled user per attempt, rules read the history)")
w("")
w("| users | history rows | decisions/s | errors | stepupd CPU per decision | RSS after start | peak RSS under load | database |")
w("|---:|---:|---:|---:|---:|---:|---:|---:|")
with open(os.path.join(scale, "summary.tsv")) as f:
    header = f.readline().split()
    for line in f:
        r = dict(zip(header, line.split()))
        d = int(r["decisions"])
        secs = float(r["seconds"])
        who = f"{int(r['users']):,}"
        hist = f"{int(r['history']):,}"
        if int(r["hot"]) > 0:
            who += " (every attempt by `hot`)"
            hist += f" + {int(r['hot']):,} of `hot`'s, none a success"
        w(f"| {who} | {hist} | {d / secs:.0f} | {r['failed']} | "
          f"{float(r['daemon_cpu_s']) * 1e6 / max(1, d):.0f} µs | {int(r['rss_start_kib']) / 1024:.1f} MiB | "
          f"{int(r['rss_peak_kib']) / 1024:.1f} MiB | {int(r['db_bytes']) / 1048576:.1f} MiB |")
w("")

# 4. Start-up
st = os.path.join(raw, "startup")
w("## 4. Start-up and module")
w("")
w("| what | median | min | max |")
w("|---|---:|---:|---:|")
for key, label in (("empty", "stepupd exec → owns org.stepup.Daemon1, empty state"),
                   ("large", "same, 100 000 users + 1 000 000 history rows")):
    xs = ints(os.path.join(st, key + ".txt"), "ms")
    w(f"| {label} (n={len(xs)}) | {statistics.median(xs):.1f} ms | {min(xs):.1f} ms | {max(xs):.1f} ms |")
w("")
w("| module | size | first dlopen + dlclose in a process, median | p90 |")
w("|---|---:|---:|---:|")
with open(os.path.join(st, "sizes.tsv")) as f:
    f.readline()
    for line in f:
        name, size, _ = line.rstrip("\n").split("\t")
        dl = os.path.join(st, f"dl-{name}.txt")
        if os.path.exists(dl):
            xs = ints(dl)
            w(f"| {name}.so | {int(size) / 1024:.0f} KiB | {statistics.median(xs):.0f} µs | {q(xs, .9):.0f} µs |")
        else:
            w(f"| {name} (binary) | {int(size) / 1048576:.1f} MiB | | |")
w("")

# 5. The shared store (optional)
shared = os.path.join(raw, "shared")
w("## 5. Shared store: two hosts on one PostgreSQL, next to SQLite")
w("")
if os.path.exists(os.path.join(shared, "summary.tsv")):
    w("Policy rules read the history (recent_failures, stepped_up_within) and "
      "every allow records its source address (one write per decision); "
      "with PostgreSQL the clients are split between two stepupd (two buses) "
      "on one server over a unix socket.")
    w("")
    w("| store | clients | decisions/s | errors | p50 | p99 |")
    w("|---|---:|---:|---:|---:|---:|")
    with open(os.path.join(shared, "summary.tsv")) as f:
        header = f.readline().split()
        for line in f:
            r = dict(zip(header, line.split()))
            rate = int(r["decisions"]) / float(r["seconds"])
            w(f"| {r['store']} | {r['clients']} | {rate:.0f} | {r['failed']} | "
              f"{ms(int(r['p50_us']))} ms | {ms(int(r['p99_us']))} ms |")
else:
    w("Skipped: PostgreSQL's server is not installed (`apt-get install postgresql`).")
w("")

table = ["## Goals (issue 19), this run", "",
         "| goal | result | |", "|---|---|---|"]
table += [f"| {g} | {r} | {v} |" for g, r, v in goals]
lines[GOALS_AT:GOALS_AT] = table + [""]

with open(results, "w") as f:
    f.write("\n".join(lines))
print("\n".join(lines))
