#!/usr/bin/env python3
"""bench/'s table: every benchmark of the project, each as a ratio against a baseline
measured in the same run.

    python3 bench/run.py            # everything
    python3 bench/run.py span       # the runtime's per-call cost only (criterion)
    python3 bench/run.py build      # build times only
    python3 bench/run.py http       # the axum service under load (needs wrk)
    INSTGO_BENCH_ONLY=regex python3 bench/run.py build   # only the rows whose label has "regex"

Numbers depend on the machine; the ratios are what the targets are written against.
"""
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser("~/.cache/instgo-rs")


def sh(cmd, cwd, env=None, quiet=True):
    t = time.time()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE if quiet else None,
                       stderr=subprocess.PIPE if quiet else None, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)} in {cwd}\n{p.stderr if quiet else ''}")
    return time.time() - t


def span_bench():
    d = os.path.join(ROOT, "bench", "runtime")
    # The queue holds more than the benches' flush chunks (16384 and 4096), so every
    # sampled span is exported and none is dropped.
    env = dict(os.environ, OTEL_TRACES_EXPORTER="discard", OTEL_METRICS_EXPORTER="none",
               OTEL_BSP_MAX_QUEUE_SIZE="32768",
               CARGO_TARGET_DIR=os.path.join(CACHE, "bench-target"))
    env.pop("RUSTC_WRAPPER", None)
    sh(["cargo", "bench", "--bench", "span", "--", "--noplot"], d, env, quiet=False)
    base = os.path.join(env["CARGO_TARGET_DIR"], "criterion", "span")
    ns = {}
    for name in os.listdir(base):
        est = os.path.join(base, name, "new", "estimates.json")
        if os.path.exists(est):
            ns[name] = json.load(open(est))["median"]["point_estimate"]
    p = subprocess.run(["cargo", "bench", "--quiet", "--bench", "paired"], cwd=d, env=env,
                       stdout=subprocess.PIPE, text=True, check=True)
    paired = json.loads(p.stdout.strip().splitlines()[-1])
    out = ["| per call | instgo | baseline | ratio | target |", "|---|---|---|---|---|"]
    for label, a, b, target in [
        ("switched off (criterion median)", "instgo_off", "plain", "≤ +1 ns over plain"),
        ("on, not sampled (criterion median)", "instgo_not_sampled", "hand_sdk_not_sampled", ""),
    ]:
        if a in ns and b in ns:
            ratio = f"+{ns[a] - ns[b]:.2f} ns" if b == "plain" else f"{ns[a] / ns[b]:.2f}×"
            out.append(f"| {label} | {ns[a]:.1f} ns | {b} {ns[b]:.1f} ns | {ratio} | {target} |")
    for label, a, b, target in [
        ("sampled, sync (paired)", "instgo_sampled", "hand_sdk_sampled", "≤ 1.05× hand SDK"),
        ("sampled, async (paired)", "instgo_sampled_async", "hand_sdk_sampled", ""),
        ("sampled vs tracing-opentelemetry (paired)", "instgo_sampled",
         "tracing_opentelemetry_sampled", "≤ 0.33× (3× cheaper)"),
    ]:
        q1, m, q3 = paired[f"{a}/{b}"]
        out.append(f"| {label} | {paired[a]:.1f} ns | {b} {paired[b]:.1f} ns "
                   f"| {m:.3f}× (quartiles {q1:.3f}–{q3:.3f}) | {target} |")
    out.append("")
    out.append("criterion medians: " + ", ".join(f"{k} {v:.1f} ns" for k, v in sorted(ns.items())))
    return out


def timed(cmd, cwd, env, runs):
    return statistics.median(sh(cmd, cwd, env) for _ in range(runs))


def build_bench(only=None):
    exe = install_tool()
    projects = [("examples/shapes (rules.toml)", os.path.join(ROOT, "examples", "shapes"), [])]
    # The mid-size real crate comes from crates.io the way the corpus fetches its crates.
    sys.path.insert(0, os.path.join(ROOT, "tests", "corpus"))
    from run import fetch
    corpus_dir = os.path.join(CACHE, "corpus")
    os.makedirs(corpus_dir, exist_ok=True)
    regex = fetch("regex", "1.11.1", corpus_dir)
    rules = os.path.join(CACHE, "bench-regex.rules.toml")
    with open(rules, "w") as f:
        f.write('[[rule]]\nname = "bench-all"\ncrate = "regex"\nfn = "*"\n')
    projects.append(("regex 1.11.1 (every fn of regex)", regex, ["--rules", rules]))
    out = ["| build | plain | instrumented | ratio | target |", "|---|---|---|---|---|"]
    for label, path, extra in projects:
        if only and only not in label:
            continue
        work = tempfile.mkdtemp(prefix="instgo-bench-")
        src = os.path.join(work, "src")
        shutil.copytree(path, src, ignore=shutil.ignore_patterns("target"))
        target = os.path.join(work, "target")
        # Run as users do, `cargo instrument`, so cargo's subcommand dispatch is counted.
        env = dict(os.environ, CARGO_TARGET_DIR=target, OTEL_TRACES_EXPORTER="none")
        env["PATH"] = os.path.dirname(exe) + os.pathsep + env["PATH"]
        env.pop("RUSTC_WRAPPER", None)
        sh(["cargo", "fetch", "--quiet"], src, env)
        # One-time runtime build: the first instrumented build pays for it.
        first = sh(["cargo", "instrument", "build", *extra], src, env)
        cleans_p, cleans_i = [], []
        for _ in range(3):
            shutil.rmtree(os.path.join(target, "debug"), ignore_errors=True)
            cleans_p.append(sh(["cargo", "build"], src, env))
            shutil.rmtree(os.path.join(target, "instrument", "debug"), ignore_errors=True)
            cleans_i.append(sh(["cargo", "instrument", "build", *extra], src, env))
        p, i = statistics.median(cleans_p), statistics.median(cleans_i)
        out.append(f"| {label}: clean | {p:.2f} s | {i:.2f} s | {i / p:.2f}× | ≤ 1.15× |")
        np_ = timed(["cargo", "build"], src, env, 10)
        ni = timed(["cargo", "instrument", "build", *extra], src, env, 10)
        out.append(f"| {label}: no-op | {np_:.3f} s | {ni:.3f} s | {ni / np_:.2f}× | ≤ 1.05× |")
        # A second cargo start-up is the price of any external cargo subcommand; this row
        # shows what is left once it is taken out, i.e. the tool's own work.
        dispatch = timed(["cargo", "instrument", "--version"], src, env, 10)
        out.append(
            f"| {label}: no-op minus cargo's subcommand dispatch ({dispatch * 1000:.0f} ms) "
            f"| {np_:.3f} s | {ni - dispatch:.3f} s | {(ni - dispatch) / np_:.2f}× | ≤ 1.05× |"
        )
        out.append(f"| {label}: one-time runtime build | | {first - i:.1f} s | | once per toolchain/target/flags |")
        shutil.rmtree(work, ignore_errors=True)
    return out


def install_tool():
    tool = os.path.join(CACHE, "bench-tool")
    sh(["cargo", "install", "--quiet", "--path", os.path.join(ROOT, "instgo-rs"), "--root", tool, "--force"], ROOT)
    return os.path.join(tool, "bin", "cargo-instrument")


class Server:
    """One variant of bench/http running on a free loopback port."""

    def __init__(self, exe, env):
        self.p = subprocess.Popen([exe], env=env, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        self.addr = line.removeprefix("listening on ")
        self.url = f"http://{self.addr}/users/42"

    def cpu_seconds(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.kill()
        self.p.wait()


def wrk(url, seconds):
    """Closed-loop load (as fast as the server answers): requests/s and p99 in ms."""
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", url],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    rps = float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])
    p99 = next(l for l in out.splitlines() if l.strip().startswith("99%")).split()[1]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    unit = next(u for u in ("us", "ms", "s") if p99.endswith(u))
    return rps, float(p99[: -len(unit)]) * scale[unit]


def fixed_rate(server, qps, seconds):
    """Open-loop load at `qps` over 8 keep-alive connections; the server's CPU seconds
    per second of wall time while it ran (1.0 = one core busy)."""
    import http.client, threading
    per = qps / 8
    stop = time.time() + seconds
    host, port = server.addr.rsplit(":", 1)

    def client():
        c = http.client.HTTPConnection(host, int(port))
        n, start = 0, time.time()
        while time.time() < stop:
            c.request("GET", "/users/42")
            c.getresponse().read()
            n += 1
            ahead = start + n / per - time.time()
            if ahead > 0:
                time.sleep(ahead)
        c.close()

    cpu0, t0 = server.cpu_seconds(), time.time()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (server.cpu_seconds() - cpu0) / (time.time() - t0)


def instructions(exe, env):
    """The server's instructions per request under callgrind (start-up included, spread
    over the requests of 10 s of `wrk -c4`): the server's own work, whatever the load."""
    out = os.path.join(CACHE, "bench-http-callgrind.out")
    # SIGINT ends it below; a shell without job control starts background jobs with SIGINT
    # ignored, and the server would inherit that and never end.
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", exe],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        addr = p.stdout.readline().strip().removeprefix("listening on ")
        res = subprocess.run(["wrk", "-t1", "-c4", "-d10s", f"http://{addr}/users/42"],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        requests = int(next(l for l in res.splitlines() if "requests in" in l).split()[0])
    finally:
        p.send_signal(signal.SIGINT)  # callgrind writes its counts as the process ends
        p.wait()
    with open(out) as f:
        total = int(next(l for l in f if l.startswith("summary:")).split()[1])
    return total / requests


def http_bench():
    """The axum service (bench/http) under load on loopback: plain, instrumented with no
    rules file at 100 % sampling, instrumented with its rules switched off at run time,
    and hand-instrumented (tower-http TraceLayer + tracing-opentelemetry). Spans of both
    instrumented variants are batched and dropped at export, so what differs is the
    instrumentation itself. Variants alternate within each round; medians of 3 rounds."""
    exe = install_tool()
    src = os.path.join(ROOT, "bench", "http")
    target = os.path.join(CACHE, "bench-http-target")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    env["PATH"] = os.path.dirname(exe) + os.pathsep + env["PATH"]
    env.pop("RUSTC_WRAPPER", None)
    bins = os.path.join(CACHE, "bench-http-bins")
    os.makedirs(bins, exist_ok=True)
    for name, cmd, built in [
        ("plain", ["cargo", "build", "--release", "--quiet"], "release"),
        ("hand", ["cargo", "build", "--release", "--quiet", "--features", "hand"], "release"),
        # --strict: a crate whose instrumented build fails would otherwise be built plain,
        # and the "instrumented" rows would measure uninstrumented code.
        ("instrumented", ["cargo", "instrument", "build", "--release", "--quiet", "--strict"],
         "instrument/release"),
    ]:
        sh(cmd, src, env)
        shutil.copy(os.path.join(target, built, "benchsrv"), os.path.join(bins, f"benchsrv-{name}"))
    run_env = dict(os.environ, OTEL_TRACES_EXPORTER="discard",
                   OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_LOG_LEVEL="off")
    variants = [
        ("plain", "plain", {}),
        ("instrumented, 100 % sampled", "instrumented", {}),
        ("instrumented, rules switched off at run time", "instrumented", {"INSTGO_DISABLED_RULES": "*"}),
        ("hand: TraceLayer + tracing-opentelemetry", "hand", {}),
    ]
    results = {v[0]: {"rps": [], "p99": [], "cpu": []} for v in variants}
    for _ in range(3):
        for label, binary, extra in variants:
            srv = Server(os.path.join(bins, f"benchsrv-{binary}"), dict(run_env, **extra))
            try:
                wrk(srv.url, 2)  # warm-up
                rps, p99 = wrk(srv.url, 10)
                cpu = fixed_rate(srv, 1000, 10)
            finally:
                srv.stop()
            results[label]["rps"].append(rps)
            results[label]["p99"].append(p99)
            results[label]["cpu"].append(cpu)
    # Instructions per request do not move with the machine's load, where the ratios
    # above move by several percent between runs: one callgrind run per variant.
    for label, binary, extra in variants:
        results[label]["instr"] = [instructions(os.path.join(bins, f"benchsrv-{binary}"),
                                                dict(run_env, **extra))]
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in results.items()}
    base = med["plain"]
    targets = {
        "instrumented, 100 % sampled": "≥ 0.90× throughput",
        "instrumented, rules switched off at run time": "≥ 0.98× throughput",
        "hand: TraceLayer + tracing-opentelemetry": "(instrumented must beat it)",
    }
    out = ["| axum, GET /users/{id} | req/s | vs plain | p99 | CPU at 1000 req/s | vs plain "
           "| instructions per request | vs plain | target |",
           "|---|---|---|---|---|---|---|---|---|"]
    for label, _, _ in variants:
        m = med[label]
        out.append(
            f"| {label} | {m['rps']:.0f} | {m['rps'] / base['rps']:.3f}× | {m['p99']:.2f} ms "
            f"| {m['cpu'] * 100:.1f} % of a core | {m['cpu'] / base['cpu']:.2f}× "
            f"| {m['instr'] / 1000:.1f} k | {m['instr'] / base['instr']:.2f}× | {targets.get(label, '')} |"
        )
    return out


def main():
    which = sys.argv[1:] or ["span", "build", "http"]
    lines = []
    if "span" in which:
        lines += span_bench() + [""]
    if "build" in which:
        lines += build_bench(os.environ.get("INSTGO_BENCH_ONLY")) + [""]
    if "http" in which:
        lines += http_bench()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
