#!/usr/bin/env python3
"""bench/'s table: every benchmark of the project, each as a ratio against a baseline
measured in the same run.

    python3 bench/run.py            # everything
    python3 bench/run.py span       # the runtime's per-call cost only (criterion)
    python3 bench/run.py build      # build times only
    INSTGO_BENCH_ONLY=regex python3 bench/run.py build   # only the rows whose label has "regex"

Numbers depend on the machine; the ratios are what the targets are written against.
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

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
    tool = os.path.join(CACHE, "bench-tool")
    sh(["cargo", "install", "--quiet", "--path", os.path.join(ROOT, "instgo-rs"), "--root", tool, "--force"], ROOT)
    exe = os.path.join(tool, "bin", "cargo-instrument")
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


def main():
    which = sys.argv[1:] or ["span", "build"]
    lines = []
    if "span" in which:
        lines += span_bench() + [""]
    if "build" in which:
        lines += build_bench(os.environ.get("INSTGO_BENCH_ONLY"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
