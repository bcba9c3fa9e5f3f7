//! Remote control end to end: `examples/http` built with `cargo instrument build`, under
//! steady load, reporting to the bundled collector's OpAMP server
//! (`cargo instrument collector --opamp`), reconfigured with `cargo instrument control
//! set` while it runs. Spans go to the test's OTLP receiver, so what each config changed
//! is read from real exports.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instgo_collector::client::Endpoint;
use instgo_collector::opamp::agents::AgentView;

use crate::collector::{free_port, spawn_collector, until, Running};
use crate::receiver::{Receiver, Span};
use crate::{export_to, lock, run, text, BIN};

const SERVICE: &str = "opamp-demo";
const INTERVAL: Duration = Duration::from_secs(1);
const CLIENT: i32 = 3;
const SERVER: i32 = 2;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The app, killed when the test ends; its `load N UNIX_MS` lines collected.
struct App {
    child: Child,
    load: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    /// `inst` under steady load (`HTTPDEMO_LOAD`), exporting to `rx`, reporting to the
    /// OpAMP server at `endpoint` every `interval`.
    fn spawn(
        inst: &std::path::Path,
        rx: &Receiver,
        endpoint: &str,
        interval: &str,
        token: Option<&str>,
    ) -> App {
        let mut cmd = Command::new(inst);
        export_to(&mut cmd, &rx.endpoint)
            .env("HTTPDEMO_LOAD", "1")
            .env("OTEL_SERVICE_NAME", SERVICE)
            .env("INSTGO_OPAMP_ENDPOINT", endpoint)
            .env("INSTGO_OPAMP_INTERVAL", interval)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(t) = token {
            cmd.env("INSTGO_OPAMP_TOKEN", t);
        }
        let mut child = cmd.spawn().unwrap();
        let load = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stdout.take().unwrap());
        let seen = load.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let mut w = line.split_whitespace();
                if w.next() == Some("load") {
                    let n = w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    let ms = w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    seen.lock().unwrap().push((n, ms));
                }
            }
        });
        App { child, load }
    }

    /// Stops the load by closing stdin; the program exits, saying goodbye.
    fn exit(&mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success());
    }

    /// Requests made between two instants (unix ns), from the nearest counter lines.
    fn requests(&self, from: u64, to: u64) -> u64 {
        let load = self.load.lock().unwrap();
        let at = |t: u64| {
            let ms = t / 1_000_000;
            load.iter()
                .rev()
                .find(|(_, when)| *when <= ms)
                .map_or(0, |(n, _)| *n)
        };
        at(to) - at(from)
    }
}

struct Collector {
    args: Vec<String>,
    ui: String,
    /// The file holding the collector's token, if it has one.
    token: Option<std::path::PathBuf>,
    running: Option<Running>,
}

impl Collector {
    /// `cargo instrument collector` with the viewer on `ui`, OpAMP on `opamp`, the
    /// pushed configs kept in `dir`, and the token in `token` if given.
    fn new(ui: u16, opamp: u16, dir: &std::path::Path, token: Option<&str>) -> Collector {
        let mut args: Vec<String> = [
            "--grpc",
            "off",
            "--http",
            "off",
            "--storage",
            "off",
            "--ui",
            &format!("127.0.0.1:{ui}"),
            "--opamp",
            &format!("127.0.0.1:{opamp}"),
            "--opamp-configs",
            dir.join("configs.json").to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        let token = token.map(|t| {
            std::fs::create_dir_all(dir).unwrap();
            let f = dir.join("token");
            std::fs::write(&f, t).unwrap();
            args.extend(["--token-file".into(), f.to_str().unwrap().to_string()]);
            f
        });
        Collector {
            args,
            ui: format!("http://127.0.0.1:{ui}"),
            token,
            running: None,
        }
    }

    fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.running = Some(spawn_collector(&args));
        let api = self.api();
        until("the collector's viewer", || api.agents().ok());
    }
    fn stop(&mut self) {
        self.running = None;
    }
    fn api(&self) -> Endpoint {
        let token = self
            .token
            .as_ref()
            .map(|f| std::fs::read_to_string(f).unwrap().trim().to_string());
        Endpoint::new(&self.ui, None).unwrap().with_token(token)
    }
    fn agent(&self) -> Option<AgentView> {
        self.api()
            .agents()
            .ok()?
            .into_iter()
            .find(|a| a.service.as_deref() == Some(SERVICE) && !a.disconnected)
    }
    /// The agent, once it is listed with the rules compiled in (they come with `main`'s
    /// start, which may be after the SDK's: the runtime of `#[tokio::main]` is built
    /// first) and `also` holds.
    fn listed(&self, what: &str, also: impl Fn(&AgentView) -> bool) -> AgentView {
        until(what, || {
            self.agent().filter(|a| {
                also(a)
                    && a.non_identifying
                        .iter()
                        .any(|(k, v)| k == "instgo.rules" && v.contains("axum"))
            })
        })
    }

    /// Waits for agent `uid` to be listed as gone.
    fn gone(&self, uid: &str) {
        until("the agent to be gone", || {
            let all = self.api().agents().ok()?;
            all.iter()
                .find(|a| a.uid == uid && a.disconnected)
                .map(|_| ())
        });
    }

    /// `cargo instrument control set`, as a user runs it.
    fn set(&self, target: &[&str], config: &str) {
        let file = std::env::temp_dir().join(format!("instgo-opamp-{}.toml", std::process::id()));
        std::fs::write(&file, config).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["instrument", "control", "set", "--endpoint", &self.ui])
            .args(target)
            .arg("--file")
            .arg(&file);
        if let Some(f) = &self.token {
            cmd.arg("--token-file").arg(f);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "control set: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("pushed"),
            "{}",
            text(&out.stdout)
        );
    }
    /// Waits for the agent's status on the config it is offered now.
    fn settled(&self, status: &str) -> AgentView {
        until(&format!("the agent to report {status}"), || {
            let a = self.agent()?;
            let offered = a.offered.as_ref()?;
            let s = a.remote_config_status.as_ref()?;
            (s.hash == offered.hash && s.status == status).then_some(a)
        })
    }
}

/// The load's spans (its `/chain` and `/hello` requests) that started in `[from, to)`.
fn window(rx: &Receiver, from: u64, to: u64) -> Vec<Span> {
    // The batch delay is 50 ms; a second covers the export of the window's last spans.
    std::thread::sleep(Duration::from_secs(1));
    rx.wait_for(Duration::ZERO, |_| true)
        .into_iter()
        .filter(|s| (from..to).contains(&s.start_unix_nano))
        .filter(|s| {
            s.attr("url.path")
                .or(s.attr("url.full"))
                .is_some_and(|p| p.contains("/chain/1") || p.contains("/hello/1"))
        })
        .collect()
}

fn kind(spans: &[Span], k: i32) -> usize {
    spans.iter().filter(|s| s.kind == k).count()
}

/// `n` trials at probability `p` gave `hits`: within 4.5 standard deviations (a false
/// alarm about once in 300 000 runs).
fn assert_binomial(hits: usize, n: u64, p: f64, what: &str) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (hits as f64 - mean).abs() <= 4.5 * sd,
        "{what}: {hits} sampled of {n} at {p} (expected {mean:.0} ± {:.0})",
        4.5 * sd
    );
}

/// Switches the client rules off: what both tests push first.
const CLIENTS_OFF: &str = "disabled_rules = [\"reqwest*\", \"hyper-util-client\"]\n";

/// `examples/http` built instrumented, a receiver for its spans, and a running collector
/// (state in a directory named `name`, with `token` if given); and its OpAMP port.
fn setup(name: &str, token: Option<&str>) -> (std::path::PathBuf, Receiver, Collector, u16) {
    let inst = {
        let _l = lock();
        crate::http::build(true)
    };
    let rx = Receiver::start();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let (ui, opamp) = (free_port(), free_port());
    let mut collector = Collector::new(ui, opamp, &dir, token);
    collector.start();
    (inst, rx, collector, opamp)
}

/// The two tests here each run the app under load; together they would slow each other
/// past the timings they check.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static S: Mutex<()> = Mutex::new(());
    S.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn remote_config_switches_rules_and_sampling_while_the_program_runs() {
    let _serial = serial();
    let (inst, rx, mut collector, opamp) = setup("opamp-e2e", None);

    let mut app = App::spawn(
        &inst,
        &rx,
        &format!("http://127.0.0.1:{opamp}/v1/opamp"),
        "1s",
        None,
    );

    // Listed, described and healthy, with its effective config.
    let agent = collector.listed("the agent to be listed with its rules", |_| true);
    let uid = agent.uid.clone();
    assert!(agent
        .identifying
        .iter()
        .any(|(k, v)| k == "service.instance.id" && *v == uid));
    assert!(
        agent.health.as_ref().is_some_and(|h| h.healthy),
        "{:?}",
        agent.health
    );
    let effective = &agent.effective_config["instgo.toml"];
    assert!(effective.contains("sampling_ratio = 1.0"), "{effective}");
    let listed =
        run(Command::new(BIN).args(["instrument", "control", "list", "--endpoint", &collector.ui]));
    assert!(
        text(&listed.stdout).contains(&uid),
        "{}",
        text(&listed.stdout)
    );

    // Everything on: client and server spans.
    let t = now_ns();
    std::thread::sleep(Duration::from_secs(1));
    let before = window(&rx, t, now_ns());
    assert!(
        kind(&before, CLIENT) > 0 && kind(&before, SERVER) > 0,
        "{} spans",
        before.len()
    );

    // Client rules off for the service: their spans stop within a poll interval, the
    // server spans go on.
    let pushed = now_ns();
    collector.set(&["--service", SERVICE], CLIENTS_OFF);
    collector.settled("APPLIED");
    let applied = now_ns();
    assert!(
        applied - pushed < 3 * INTERVAL.as_nanos() as u64,
        "applied after {} ms",
        (applied - pushed) / 1_000_000
    );
    let after = pushed + 2 * INTERVAL.as_nanos() as u64;
    std::thread::sleep(Duration::from_millis(1500));
    let off = window(&rx, after.max(applied), now_ns());
    assert_eq!(kind(&off, CLIENT), 0, "client spans after the switch");
    assert!(kind(&off, SERVER) > 50, "server spans go on: {}", off.len());

    // A tenth of new traces. Without client spans, /chain and /hello are each a root.
    collector.set(
        &["--service", SERVICE],
        &format!("{CLIENTS_OFF}sampling_ratio = 0.1\n"),
    );
    collector.settled("APPLIED");
    let from = now_ns() + 200_000_000;
    std::thread::sleep(Duration::from_secs(3));
    let to = now_ns();
    let sampled = window(&rx, from, to);
    let n = 2 * app.requests(from, to);
    assert!(n > 200, "only {n} requests in the window");
    assert_binomial(kind(&sampled, SERVER), n, 0.1, "sampling_ratio = 0.1");

    // The collector restarts: the agent reconnects, reports its full state again, and
    // the kept config is what it runs (no second apply: same hash).
    collector.stop();
    std::thread::sleep(Duration::from_secs(2));
    collector.start();
    let back = collector.settled("APPLIED");
    assert_eq!(back.uid, uid);
    assert!(back.effective_config["instgo.toml"].contains("sampling_ratio = 0.1"));

    // A malformed config: FAILED with the reason, and the running one is kept.
    collector.set(&["--agent", &uid], "sampling_ratio = \"lots\"\n");
    let failed = collector.settled("FAILED");
    let error = &failed.remote_config_status.as_ref().unwrap().error;
    assert!(
        error.contains("sampling_ratio: expected a number"),
        "{error}"
    );
    let from = now_ns();
    std::thread::sleep(Duration::from_secs(3));
    let to = now_ns();
    let kept = window(&rx, from, to);
    assert_eq!(kind(&kept, CLIENT), 0);
    assert_binomial(
        kind(&kept, SERVER),
        2 * app.requests(from, to),
        0.1,
        "after a bad config",
    );

    // An empty config takes the remote settings back; a rule's option is honoured.
    collector.set(
        &["--agent", &uid],
        "[rules.\"axum\"]\ncapture_headers = [\"traceparent\"]\n",
    );
    collector.settled("APPLIED");
    let from = now_ns() + 200_000_000;
    std::thread::sleep(Duration::from_millis(1500));
    let on = window(&rx, from, now_ns());
    assert!(kind(&on, CLIENT) > 0, "client spans are back");
    let servers: Vec<&Span> = on.iter().filter(|s| s.kind == SERVER).collect();
    assert!(
        servers
            .iter()
            .all(|s| s.attr("http.request.header.traceparent").is_some()),
        "{:?}",
        servers.first()
    );

    // The program ends: it says goodbye.
    app.exit();
    collector.gone(&uid);
}

/// Over WebSocket, behind a token: the heartbeat is 30 s, so only the server's push can
/// bring a config within seconds. Also a collector restart (the agent reconnects with
/// back-off from 1 s, not from the heartbeat) and a goodbye on the socket.
#[test]
fn websocket_brings_a_pushed_config_at_once() {
    let _serial = serial();
    let token = "ws-e2e-token";
    let (inst, rx, mut collector, opamp) = setup("opamp-ws-e2e", Some(token));
    let mut app = App::spawn(
        &inst,
        &rx,
        &format!("ws://127.0.0.1:{opamp}/v1/opamp"),
        "30s",
        Some(token),
    );
    let agent = collector.listed(
        "the agent to be listed over WebSocket with its rules",
        |a| a.transport == "websocket",
    );
    let uid = agent.uid.clone();
    let t = now_ns();
    std::thread::sleep(Duration::from_secs(1));
    assert!(kind(&window(&rx, t, now_ns()), CLIENT) > 0);

    let pushed = now_ns();
    collector.set(&["--service", SERVICE], CLIENTS_OFF);
    collector.settled("APPLIED");
    let applied = now_ns();
    assert!(
        applied - pushed < 3_000_000_000,
        "applied {} ms after the push, with a 30 s heartbeat",
        (applied - pushed) / 1_000_000
    );
    std::thread::sleep(Duration::from_millis(1500));
    let off = window(&rx, applied, now_ns());
    assert_eq!(kind(&off, CLIENT), 0, "client spans after the switch");
    assert!(kind(&off, SERVER) > 50, "server spans go on: {}", off.len());

    // The collector restarts: the connection is restored and the kept config confirmed
    // well before the 30 s heartbeat.
    collector.stop();
    std::thread::sleep(Duration::from_secs(2));
    let restarted = std::time::Instant::now();
    collector.start();
    let back = until("the agent to reconnect over WebSocket", || {
        collector
            .agent()
            .filter(|a| a.transport == "websocket" && a.remote_config_status.is_some())
    });
    assert_eq!(back.uid, uid);
    assert_eq!(back.remote_config_status.unwrap().status, "APPLIED");
    assert!(
        restarted.elapsed() < Duration::from_secs(15),
        "reconnected after {:?}",
        restarted.elapsed()
    );

    // A config to the agent alone arrives at once on the restored connection.
    let pushed = std::time::Instant::now();
    collector.set(&["--agent", &uid], "sampling_ratio = 0.5\n");
    let a = collector.settled("APPLIED");
    assert!(
        pushed.elapsed() < Duration::from_secs(3),
        "{:?}",
        pushed.elapsed()
    );
    assert!(a.effective_config["instgo.toml"].contains("sampling_ratio = 0.5"));

    app.exit();
    collector.gone(&uid);
}
