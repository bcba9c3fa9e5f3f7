//! The bundled collector, as users run it: `cargo instrument collector` in the
//! background, an instrumented program sending to it, `cargo instrument traces` printing
//! the trees from the running collector and from its `--file` output.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{binaries, export_to, lock, run, text, BIN};

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the collector when the test ends, passing or not.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo instrument collector ARGS` in the background, its output discarded; no OpAMP
/// server unless `args` ask (tests run side by side, and its port is fixed by default).
pub(crate) fn spawn_collector(args: &[&str]) -> Running {
    let opamp: &[&str] = if args.contains(&"--opamp") {
        &[]
    } else {
        &["--opamp", "off"]
    };
    Running(
        Command::new(BIN)
            .args(["instrument", "collector"])
            .args(args)
            .args(opamp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

pub(crate) fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn traces(args: &[&str]) -> String {
    let out = run(Command::new(BIN).arg("instrument").arg("traces").args(args));
    assert!(
        out.status.success(),
        "traces {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn collector_receives_and_traces_prints_the_trees() {
    let _l = lock();
    let (_, inst) = binaries();
    let (http, ui) = (free_port(), free_port());
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("collector-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("traces.jsonl");
    let storage = dir.join("storage");
    let collector = || {
        spawn_collector(&[
            "--grpc",
            "off",
            "--http",
            &format!("127.0.0.1:{http}"),
            "--ui",
            &format!("127.0.0.1:{ui}"),
            "--file",
            file.to_str().unwrap(),
            "--storage",
            storage.to_str().unwrap(),
        ])
    };
    let mut first = collector();
    until("the collector to listen", || {
        TcpStream::connect(("127.0.0.1", http)).ok()
    });

    // A garbage request is refused and changes nothing for the next sender.
    let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
          Content-Length: 4\r\nConnection: close\r\n\r\n\xff\xff\xff\xff",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let out = run(export_to(
        &mut Command::new(inst),
        &format!("http://127.0.0.1:{http}"),
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));

    let endpoint = format!("http://127.0.0.1:{ui}");
    let live = until("the trace in the collector", || {
        let t = traces(&[
            "--endpoint",
            &endpoint,
            "--service",
            "shapes-app",
            "--last",
            "20",
        ]);
        t.contains("on_thread").then_some(t)
    });
    // Trees: a header per trace, spans indented under their parents.
    assert!(
        live.lines()
            .any(|l| l.starts_with("trace ") && l.contains("shapes-app")),
        "{live}"
    );
    assert!(
        live.lines()
            .any(|l| l.starts_with("  ") && !l.starts_with("   ")),
        "{live}"
    );
    assert!(
        live.lines().any(|l| l.starts_with("    ")),
        "nothing nested:\n{live}"
    );

    let from_file = traces(&["--file", file.to_str().unwrap(), "--last", "20"]);
    let headers = |t: &str| {
        let mut h: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("trace "))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&live), headers(&from_file), "file:\n{from_file}");

    // Killed and started again on the same storage: the viewer still has every trace.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let _second = collector();
    let again = until("the collector back with its traces", || {
        TcpStream::connect(("127.0.0.1", ui)).ok()?;
        let t = traces(&["--endpoint", &endpoint, "--last", "1000"]);
        (headers(&t) == headers(&live)).then_some(t)
    });
    assert!(again.contains("on_thread"));

    let none =
        run(Command::new(BIN).args(["instrument", "traces", "--endpoint", "http://127.0.0.1:1"]));
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains("is `cargo instrument collector` running?"),
        "{}",
        text(&none.stderr)
    );
}

/// `--forward-queue`: what the collector acknowledged reaches the upstream even though
/// the collector was killed with SIGKILL while the upstream was down.
#[test]
fn forward_queue_survives_kill_9() {
    let _l = lock();
    let (_, inst) = binaries();
    let (agent_http, up_http, up_ui) = (free_port(), free_port(), free_port());
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("collector-kill");
    let _ = std::fs::remove_dir_all(&dir);
    let (queue, file) = (dir.join("queue"), dir.join("agent.jsonl"));
    let agent = || {
        spawn_collector(&[
            "--grpc",
            "off",
            "--ui",
            "off",
            "--storage",
            "off",
            "--http",
            &format!("127.0.0.1:{agent_http}"),
            "--forward",
            &format!("http://127.0.0.1:{up_http}"),
            "--forward-queue",
            queue.to_str().unwrap(),
            "--file",
            file.to_str().unwrap(),
        ])
    };
    let mut first = agent();
    until("the collector to listen", || {
        TcpStream::connect(("127.0.0.1", agent_http)).ok()
    });
    let out = run(export_to(
        &mut Command::new(&inst),
        &format!("http://127.0.0.1:{agent_http}"),
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids = |t: &str| {
        let mut h: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("trace "))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect();
        h.sort();
        h
    };
    // What it acknowledged, as its file exporter wrote it.
    let acked = until("the agent's file", || {
        let t = traces(&["--file", file.to_str().unwrap(), "--last", "1000"]);
        t.contains("on_thread").then(|| ids(&t))
    });
    first.0.kill().unwrap(); // SIGKILL: no flush, no goodbye
    first.0.wait().unwrap();

    let _upstream = spawn_collector(&[
        "--grpc",
        "off",
        "--storage",
        "off",
        "--http",
        &format!("127.0.0.1:{up_http}"),
        "--ui",
        &format!("127.0.0.1:{up_ui}"),
    ]);
    let _second = agent();
    let endpoint = format!("http://127.0.0.1:{up_ui}");
    until("every acknowledged trace upstream", || {
        let got = TcpStream::connect(("127.0.0.1", up_ui))
            .ok()
            .map(|_| ids(&traces(&["--endpoint", &endpoint, "--last", "1000"])))?;
        acked.iter().all(|id| got.contains(id)).then_some(())
    });
}

/// `--config FILE`: the OpenTelemetry Collector's shape; a broken edit is reported with
/// its position and the running config kept; a good edit takes over without a restart.
#[test]
fn config_file_reloads_and_keeps_running_through_a_bad_edit() {
    let _l = lock();
    let (_, inst) = binaries();
    let (http, ui) = (free_port(), free_port());
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("collector-config");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cfg, log) = (dir.join("collector.yaml"), dir.join("stderr.txt"));
    let config = |file: &str, extra: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      http: {{ endpoint: 127.0.0.1:{http} }}\n\
             exporters:\n  file/{file}: {{ path: {} }}\n{extra}\
             service:\n  pipelines:\n    traces: {{ receivers: [otlp], exporters: [file/{file}] }}\n\
             viewer: {{ endpoint: 127.0.0.1:{ui} }}\n",
            dir.join(format!("{file}.jsonl")).display()
        )
    };
    std::fs::write(&cfg, config("one", "")).unwrap();
    let _collector = Running(
        Command::new(BIN)
            .args([
                "instrument",
                "collector",
                "--storage",
                "off",
                "--opamp",
                "off",
                "--config",
            ])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    until("the collector to listen", || {
        TcpStream::connect(("127.0.0.1", http)).ok()
    });
    let send = || {
        let out = run(export_to(
            &mut Command::new(&inst),
            &format!("http://127.0.0.1:{http}"),
        ));
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    let lines = |name: &str| {
        std::fs::read_to_string(dir.join(format!("{name}.jsonl")))
            .map(|t| t.lines().filter(|l| l.contains("on_thread")).count())
            .unwrap_or(0)
    };
    send();
    until("spans in one.jsonl", || (lines("one") == 1).then_some(()));

    // A typo: reported with its position, and the collector goes on as it was.
    std::fs::write(
        &cfg,
        config("one", "processors:\n  batch: { timeot: 1s }\n"),
    )
    .unwrap();
    let said = until("the bad config reported", || {
        let t = std::fs::read_to_string(&log).unwrap();
        t.contains("keeping the running config").then_some(t)
    });
    assert!(
        said.contains(&format!("{}:8:", cfg.display())) && said.contains("unknown field `timeot`"),
        "{said}"
    );
    send();
    until("more spans in one.jsonl", || {
        (lines("one") == 2).then_some(())
    });

    // A good edit: a new file exporter takes over, the viewer keeps what it had.
    std::fs::write(&cfg, config("two", "")).unwrap();
    until("the reload", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("collector: reloaded")
            .then_some(())
    });
    send();
    until("spans in two.jsonl", || (lines("two") == 1).then_some(()));
    assert_eq!(lines("one"), 2);
    let listed = traces(&[
        "--endpoint",
        &format!("http://127.0.0.1:{ui}"),
        "--last",
        "1000",
    ]);
    let on_thread = listed
        .lines()
        .filter(|l| l.trim_start().starts_with("on_thread"))
        .count();
    assert_eq!(on_thread, 3, "{listed}");
}

/// `traces --file … --follow` prints traces as they are appended, each once it settled.
#[test]
fn traces_follow_prints_appended_traces() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::io::{BufRead, BufReader};

    let line = |trace: u8, name: &str| {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![trace; 16],
                        span_id: vec![1; 8],
                        name: name.into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 1_000_001,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        serde_json::to_string(&req).unwrap() + "\n"
    };
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("traces-follow");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("t.jsonl");
    std::fs::write(&file, line(1, "first")).unwrap();
    let mut child = Running(
        Command::new(BIN)
            .args(["instrument", "traces", "--follow", "--file"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut seen = String::new();
    let mut wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    seen.push_str(&l);
                    seen.push('\n');
                }
                Err(_) => panic!("{needle:?} never printed; got:\n{seen}"),
            }
        }
    };
    wait_for("  first");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(line(2, "second").as_bytes())
        .unwrap();
    wait_for("  second");
    assert_eq!(seen.matches("  first").count(), 1, "printed once:\n{seen}");
}
