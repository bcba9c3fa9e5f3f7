#!/usr/bin/env python3
"""The "never break a build" corpus.

For each crate in CRATES: fetch its published source from crates.io (with its own tests),
run its test suite plainly (`cargo test`), then under `cargo instrument test` with a rule
that instruments every function of that crate, and compare the sets of passing tests.
The pass sets must be equal; the program prints a table and exits non-zero otherwise.

    python3 tests/corpus/run.py              # the whole corpus (long: see README)
    python3 tests/corpus/run.py --ci         # the subset CI runs
    python3 tests/corpus/run.py semver url   # chosen crates

Needs `cargo-instrument` on PATH or INSTGO_BIN. Work happens under
$INSTGO_CORPUS_DIR (default ~/.cache/instgo-rs/corpus), with one shared target directory.
"""
import json, os, re, shutil, subprocess, sys, tarfile, time, urllib.request

# name, version, (edition as we last saw it; the table reads it from the package), what it exercises
CRATES = [
    ("semver", "1.0.26", "2018", "sync, parsing"),
    ("once_cell", "1.21.3", "2021", "sync, unsafe, statics"),
    ("itoa", "1.0.15", "2018", "unsafe, const generics"),
    ("smallvec", "1.15.1", "2018", "unsafe, generic containers"),
    ("anyhow", "1.0.98", "2018", "error types, macros, backtraces"),
    ("bytes", "1.10.1", "2018", "unsafe, traits"),
    ("http", "1.4.0", "2018", "types, macros"),
    ("url", "2.5.4", "2018", "parsing, workspace-style deps"),
    ("indexmap", "2.10.0", "2021", "generic containers"),
    ("itertools", "0.14.0", "2018", "iterator adaptors, impl Trait"),
    ("either", "1.15.0", "2018", "generic enum, closures, many trait impls"),
    ("regex", "1.11.1", "2021", "large, generic"),
    ("serde_json", "1.0.140", "2021", "macro-heavy, serde"),
    ("chrono", "0.4.41", "2021", "large, many cfgs"),
    ("rand", "0.8.5", "2018", "traits, generics"),
    ("futures-util", "0.3.31", "2018", "async, Pin, poll fns"),
    ("tokio-stream", "0.1.17", "2021", "async, tokio"),
    ("clap_lex", "0.7.5", "2021", "clap's lexer"),
    ("memchr", "2.7.5", "2021", "unsafe, SIMD, cfg"),
    ("hashbrown", "0.15.4", "2021", "unsafe, generics"),
    ("log", "0.4.27", "2021", "macros, statics"),
    ("byteorder", "1.5.0", "2021", "traits, macros"),
    ("base64", "0.22.1", "2018", "engines, traits"),
    ("unicode-width", "0.2.1", "2021", "tables"),
]
CI = ["semver", "once_cell", "itoa", "anyhow", "log"]

TEST_LINE = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored.*)$")


def run(cmd, cwd, env=None, log=None):
    t = time.time()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log:
        with open(log, "w") as f:
            f.write(p.stdout)
    return p.returncode, p.stdout, time.time() - t


def fetch(name, version, into):
    dst = os.path.join(into, f"{name}-{version}")
    if os.path.isdir(dst):
        return dst
    url = f"https://static.crates.io/crates/{name}/{name}-{version}.crate"
    archive = os.path.join(into, f"{name}-{version}.crate")
    urllib.request.urlretrieve(url, archive)
    with tarfile.open(archive) as t:
        t.extractall(into)
    # A published package is its own workspace root.
    with open(os.path.join(dst, "Cargo.toml"), "a") as f:
        f.write("\n[workspace]\n")
    return dst


def results(output):
    """Test name → outcome; names are prefixed by the test binary they ran in."""
    out, binary = {}, "?"
    for line in output.splitlines():
        if line.strip().startswith("Running ") or line.strip().startswith("Doc-tests "):
            binary = line.strip().split(" (")[0]
        m = TEST_LINE.match(line.strip())
        if m:
            out[f"{binary} :: {m.group(1)}"] = "ignored" if m.group(2).startswith("ignored") else m.group(2)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    chosen = [c for c in CRATES if (c[0] in CI if "--ci" in sys.argv else (not args or c[0] in args))]
    work = os.environ.get("INSTGO_CORPUS_DIR", os.path.expanduser("~/.cache/instgo-rs/corpus"))
    os.makedirs(work, exist_ok=True)
    tool = os.environ.get("INSTGO_BIN") or shutil.which("cargo-instrument")
    if not tool:
        sys.exit("cargo-instrument is not on PATH (cargo install --path instgo-rs, or set INSTGO_BIN)")
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(work, "target"), OTEL_TRACES_EXPORTER="none")
    env.pop("RUSTC_WRAPPER", None)
    rows, bad = [], 0
    for name, version, edition, what in chosen:
        src = fetch(name, version, work)
        m = re.search(r'^edition\s*=\s*"(\d+)"', open(os.path.join(src, "Cargo.toml")).read(), re.M)
        edition = m.group(1) if m else "2015"
        rules = os.path.join(work, f"{name}.rules.toml")
        with open(rules, "w") as f:
            f.write(f'[[rule]]\nname = "corpus-all"\ncrate = "{name}"\nfn = "*"\n')
        logs = os.path.join(work, "logs")
        os.makedirs(logs, exist_ok=True)
        # Same lock file for both runs.
        run(["cargo", "generate-lockfile"], src, env)
        _, plain_out, _ = run(["cargo", "test", "--no-fail-fast"], src, env, os.path.join(logs, f"{name}.plain.log"))
        _, inst_out, _ = run([tool, "instrument", "test", "--no-fail-fast", "--rules", rules], src, env,
                             os.path.join(logs, f"{name}.instrumented.log"))
        plain, inst = results(plain_out), results(inst_out)
        passed_p = {t for t, r in plain.items() if r == "ok"}
        passed_i = {t for t, r in inst.items() if r == "ok"}
        inst_log = os.path.join(logs, f"{name}.instrumented.log")
        fell_back = inst_out.count("building it without instrumentation")
        # How many functions the rule instrumented, from the tool's reports.
        sites = 0
        reports = os.path.join(work, "target", "instrument", "reports")
        for fn in os.listdir(reports) if os.path.isdir(reports) else []:
            if fn.startswith(name.replace("-", "_")):
                try:
                    rep = json.load(open(os.path.join(reports, fn)))
                except Exception:
                    continue
                for r in rep.get("rules", []):
                    m = r.get("outcome", {})
                    if isinstance(m, dict) and "Matched" in m:
                        sites = max(sites, len(m["Matched"]))
        same = passed_p == passed_i and fell_back == 0 and len(passed_p) > 0
        bad += 0 if same else 1
        rows.append((name, version, edition, len(passed_p), len(passed_i), sites, fell_back,
                     "same" if same else "DIFFERENT"))
        if not same:
            for t in sorted(passed_p - passed_i)[:10]:
                print(f"  {name}: passes plain, not instrumented: {t}", file=sys.stderr)
            for t in sorted(passed_i - passed_p)[:10]:
                print(f"  {name}: passes instrumented, not plain: {t}", file=sys.stderr)
            print(f"  logs: {inst_log}", file=sys.stderr)
        print(f"{name} {version}: {rows[-1][-1]}", file=sys.stderr, flush=True)
    head = ("crate", "version", "edition", "pass plain", "pass instr.", "fns instr.", "fell back", "result")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
