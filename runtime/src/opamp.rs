//! The OpAMP client: this process as an agent a server (the bundled collector, by
//! default) can see and reconfigure while it runs.
//!
//! Plain HTTP, polling: a POST of an `AgentToServer` every interval, whose answer may
//! carry a remote config (`remote`). Or, for a `ws://` endpoint, one WebSocket kept open
//! (`websocket`), on which a pushed config arrives at once. One thread of its own
//! ("instgo-opamp"), started with the SDK; the application's threads never wait for it.
//! A server that cannot be reached costs one failed connection per back-off step on that
//! thread.
//!
//! `INSTGO_OPAMP_ENDPOINT` (default `http://127.0.0.1:4320/v1/opamp`, `ws://…` for
//! WebSocket, `none`: off),
//! `INSTGO_OPAMP_INTERVAL` (default 30 s, `1s`, `500ms`, `2m`; the server's
//! `heartbeat_interval_seconds` wins), `INSTGO_OPAMP_TOKEN` (sent as a bearer token).

mod agent;
pub mod proto;
pub(crate) mod remote;
mod value;
mod websocket;

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_http::{Bytes, Request};
use prost::Message as _;

use crate::diag::{debug, warning};
use agent::{Agent, Status};

pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4320/v1/opamp";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The longest wait between attempts while the server cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Answers larger than this are refused (the spec asks clients for a limit).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

struct Settings {
    endpoint: String,
    interval: Duration,
    token: Option<String>,
    /// Whether the endpoint was chosen (then failures are warnings, else debug lines:
    /// most programs run without the bundled collector).
    explicit: bool,
    /// A `ws://` endpoint: one WebSocket kept open instead of polling.
    websocket: bool,
}

fn settings() -> Result<Option<Settings>, String> {
    let endpoint = crate::sdk::env("INSTGO_OPAMP_ENDPOINT");
    if endpoint
        .as_deref()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    let interval = match crate::sdk::env("INSTGO_OPAMP_INTERVAL") {
        Some(v) => parse_interval(&v).map_err(|e| format!("INSTGO_OPAMP_INTERVAL={v:?}: {e}"))?,
        None => DEFAULT_INTERVAL,
    };
    let explicit = endpoint.is_some();
    let endpoint = endpoint.map_or_else(|| DEFAULT_ENDPOINT.to_string(), |e| e.trim().to_string());
    let scheme = endpoint
        .split("://")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if scheme != "http" && scheme != "ws" {
        return Err(format!(
            "INSTGO_OPAMP_ENDPOINT={endpoint:?}: the runtime speaks OpAMP over http:// or ws:// \
             only (it has no TLS)"
        ));
    }
    Ok(Some(Settings {
        explicit,
        websocket: scheme == "ws",
        endpoint,
        interval,
        token: crate::sdk::env("INSTGO_OPAMP_TOKEN").map(|t| t.trim().to_string()),
    }))
}

/// `30s`, `500ms`, `2m`, or bare seconds; at least 100 ms.
fn parse_interval(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (number, unit) = match v.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| "expected a duration such as 30s, 500ms or 2m".to_string())?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => return Err(format!("unknown unit {other:?} (ms, s, m)")),
    };
    if !(0.1..=86_400.0).contains(&secs) {
        return Err("must be between 100ms and 24h".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What the exit hook needs to say goodbye.
struct Client {
    settings: Settings,
    agent: Mutex<Agent>,
    phase: Mutex<Phase>,
    /// Notified on every change of `phase`.
    changed: Condvar,
}

#[derive(Default)]
struct Phase {
    /// Set at exit: the loop stops and the last message goes out.
    stop: bool,
    /// Set by the thread when it ends (over WebSocket, after its goodbye).
    ended: bool,
}

impl Client {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, change: impl FnOnce(&mut Phase)) {
        change(&mut self.phase());
        self.changed.notify_all();
    }

    /// Waits at most `wait` for `until`; returns the phase then.
    fn wait(
        &self,
        wait: Duration,
        until: impl Fn(&Phase) -> bool,
    ) -> std::sync::MutexGuard<'_, Phase> {
        self.changed
            .wait_timeout_while(self.phase(), wait, |p| !until(p))
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

static CLIENT: OnceLock<Client> = OnceLock::new();

/// Starts the client thread once the SDK is up (called from `sdk::init`).
pub(crate) fn start(resource: &opentelemetry_sdk::Resource) {
    let settings = match settings() {
        Ok(Some(s)) => s,
        Ok(None) => {
            debug!("INSTGO_OPAMP_ENDPOINT=none: no remote control");
            return;
        }
        Err(e) => {
            warning!("{e}; no remote control");
            return;
        }
    };
    // The SDK's start, close to the process's and without reading /proc.
    let _ = START_NANOS.get_or_init(now_nanos);
    let uid = crate::resource::instance_uid().to_vec();
    let agent = Agent::new(uid, description(resource), None);
    let client = CLIENT.get_or_init(|| Client {
        settings,
        agent: Mutex::new(agent),
        phase: Mutex::default(),
        changed: Condvar::new(),
    });
    let spawned = std::thread::Builder::new()
        .name("instgo-opamp".into())
        .spawn(move || {
            crate::call::mark_runtime_thread();
            if client.settings.websocket {
                run_websocket(client);
            } else {
                run_http(client);
            }
            client.set(|p| p.ended = true);
        });
    if let Err(e) = spawned {
        warning!("cannot start the OpAMP thread: {e}; no remote control");
    }
}

/// `service.name`, `service.namespace` and `service.instance.id` identify the agent;
/// the rest of the Resource describes it (the agent adds the rules compiled in).
fn description(resource: &opentelemetry_sdk::Resource) -> proto::AgentDescription {
    const IDENTIFYING: &[&str] = &["service.name", "service.namespace", "service.instance.id"];
    let mut d = proto::AgentDescription::default();
    let mut attrs: Vec<_> = resource.iter().collect();
    attrs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for (k, v) in attrs {
        let kv = proto::KeyValue::string(k.as_str(), v.as_str().into_owned());
        if IDENTIFYING.contains(&k.as_str()) {
            d.identifying_attributes.push(kv);
        } else {
            d.non_identifying_attributes.push(kv);
        }
    }
    d
}

/// Failed attempts in a row, and the wait they earn.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn succeeded(&mut self, s: &Settings) {
        if self.failures > 0 {
            debug!("OpAMP: {} answers again", s.endpoint);
        }
        self.failures = 0;
    }

    /// Says so on the first failure in a row; returns how long to wait: `wait` doubled
    /// per failure, up to [`MAX_BACKOFF`], less up to a quarter at random so that
    /// programs started together do not retry together (the spec asks for jitter).
    fn failed(&mut self, s: &Settings, e: &str, wait: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            let msg = format!(
                "OpAMP server {} cannot be reached: {e} (retrying with back-off; \
                 INSTGO_OPAMP_ENDPOINT=none turns remote control off)",
                s.endpoint
            );
            if s.explicit {
                warning!("{msg}");
            } else {
                debug!("{msg}");
            }
        }
        let factor = 1u32 << self.failures.min(12).saturating_sub(1);
        let spread = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| f64::from(d.subsec_nanos()) / 1e9);
        (wait * factor)
            .min(MAX_BACKOFF.max(s.interval))
            .mul_f64(1.0 - spread / 4.0)
    }
}

/// Waits `wait` unless the process exits first; returns whether it does.
fn wait_or_stop(client: &Client, wait: Duration) -> bool {
    client.wait(wait, |p| p.stop).stop
}

fn run_http(client: &'static Client) {
    let s = &client.settings;
    let mut backoff = Backoff::default();
    loop {
        // Not under the lock while the request is out: the exit hook takes it.
        let (sent, uid) = {
            let mut agent = client.agent.lock().unwrap_or_else(|e| e.into_inner());
            (agent.message(&status()), agent.uid.clone())
        };
        let answer = exchange(s, &uid, &sent);
        let mut agent = client.agent.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = agent.heartbeat.unwrap_or(s.interval);
        match answer {
            Ok(reply) => {
                backoff.succeeded(s);
                agent.delivered(&sent);
                let out = agent.receive(reply);
                if out.report {
                    wait = Duration::ZERO;
                }
                if let Some(after) = out.retry_after {
                    wait = after.min(MAX_BACKOFF);
                }
            }
            Err(e) => wait = backoff.failed(s, &e, wait),
        }
        drop(agent);
        if wait_or_stop(client, wait) {
            return;
        }
    }
}

/// How often a WebSocket client looks up from its socket: to send a heartbeat when due,
/// and to say goodbye when the process exits.
const TICK: Duration = Duration::from_millis(250);

/// How a WebSocket connection ended.
enum Ended {
    /// The process exits; the goodbye was sent.
    Stopped,
    /// The connection failed, after `lasted`.
    Broken { error: String, lasted: Duration },
    /// The server asked to come back after this long.
    Refused(Duration),
}

/// The first wait after a failed WebSocket connection. Not the interval: over a
/// WebSocket that is only the heartbeat, and a lost connection is worth restoring soon.
const RECONNECT: Duration = Duration::from_secs(1);

fn run_websocket(client: &'static Client) {
    let s = &client.settings;
    let mut backoff = Backoff::default();
    loop {
        let wait = match websocket::Socket::connect(s, request_timeout()) {
            Ok(mut socket) => match session(client, &mut socket) {
                Ended::Stopped => return,
                Ended::Refused(after) => after.min(MAX_BACKOFF),
                // A connection lost after it worked is restored at once, as the spec
                // asks; one the server drops straight away counts as a failure.
                Ended::Broken { error, lasted } if lasted >= Duration::from_secs(1) => {
                    backoff.succeeded(s);
                    debug!("OpAMP: the connection to {} was lost: {error}", s.endpoint);
                    Duration::ZERO
                }
                Ended::Broken { error, .. } => backoff.failed(s, &error, RECONNECT),
            },
            Err(e) => backoff.failed(s, &e, RECONNECT),
        };
        if wait_or_stop(client, wait) {
            return;
        }
    }
}

/// One WebSocket connection: a status report at once and then every interval (only what
/// changed, as over HTTP), each server message processed as it comes, a report at once
/// when one asks for it, a goodbye when the process exits.
fn session(client: &Client, socket: &mut websocket::Socket) -> Ended {
    let s = &client.settings;
    let began = Instant::now();
    let broken = |error: String| Ended::Broken {
        error,
        lasted: began.elapsed(),
    };
    // The last message sent, until a server message shows it arrived.
    let mut awaiting: Option<(proto::AgentToServer, Instant)> = None;
    let mut next = Instant::now();
    loop {
        if client.phase().stop {
            let bye = client
                .agent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .disconnect();
            let _ = socket.send(&bye);
            socket.close_normally("the process exits");
            return Ended::Stopped;
        }
        let now = Instant::now();
        match &awaiting {
            Some((_, at)) if now.duration_since(*at) > request_timeout() => {
                return broken(format!("no answer within {:?}", request_timeout()));
            }
            None if now >= next => {
                let mut agent = client.agent.lock().unwrap_or_else(|e| e.into_inner());
                let msg = agent.message(&status());
                next = now + agent.heartbeat.unwrap_or(s.interval);
                drop(agent);
                if let Err(e) = socket.send(&msg) {
                    return broken(e);
                }
                awaiting = Some((msg, now));
            }
            _ => {}
        }
        let wait = next.saturating_duration_since(Instant::now()).min(TICK);
        if let Err(e) = socket.read_timeout(wait) {
            return broken(e);
        }
        match socket.read() {
            Ok(Some(reply)) => {
                let mut agent = client.agent.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((sent, _)) = awaiting.take() {
                    agent.delivered(&sent);
                }
                let out = agent.receive(reply);
                if out.report {
                    next = Instant::now();
                }
                if let Some(after) = out.retry_after {
                    drop(agent);
                    socket.close_normally("asked to retry later");
                    return Ended::Refused(after);
                }
            }
            Ok(None) => {}
            Err(e) => return broken(e),
        }
    }
}

/// How long one exchange may take.
fn request_timeout() -> Duration {
    crate::sdk::otlp_timeout("TRACES").min(Duration::from_secs(10))
}

/// One POST; the answer decoded.
fn exchange(
    s: &Settings,
    uid: &[u8],
    msg: &proto::AgentToServer,
) -> Result<proto::ServerToAgent, String> {
    exchange_within(s, uid, msg, request_timeout())
}

fn exchange_within(
    s: &Settings,
    uid: &[u8],
    msg: &proto::AgentToServer,
    timeout: Duration,
) -> Result<proto::ServerToAgent, String> {
    let mut req = Request::post(&s.endpoint)
        .header("content-type", "application/x-protobuf")
        .header("opamp-instance-uid", proto::uuid_text(uid));
    if let Some(t) = &s.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .body(Bytes::from(msg.encode_to_vec()))
        .map_err(|e| format!("{}: {e}", s.endpoint))?;
    let resp = crate::transport::send(&req, timeout).map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        let body = String::from_utf8_lossy(&resp.body()[..resp.body().len().min(300)]);
        return Err(format!("HTTP {}: {}", resp.status(), body.trim()));
    }
    let gzipped = resp
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = if gzipped {
        crate::transport::gunzip(resp.body())?
    } else {
        resp.body().to_vec()
    };
    if body.len() > MAX_ANSWER {
        return Err(format!(
            "an answer of {} bytes is over the limit",
            body.len()
        ));
    }
    proto::ServerToAgent::decode(&body[..]).map_err(|e| format!("not a ServerToAgent message: {e}"))
}

/// Says goodbye (`agent_disconnect`) when the process exits, waiting at most `timeout`.
pub(crate) fn disconnect(timeout: Duration) {
    let Some(client) = CLIENT.get() else { return };
    client.set(|p| p.stop = true);
    if client.settings.websocket {
        // The thread says goodbye on its socket within a tick.
        drop(client.wait(timeout, |p| p.ended));
        return;
    }
    let (msg, uid) = {
        let mut agent = client.agent.lock().unwrap_or_else(|e| e.into_inner());
        (agent.disconnect(), agent.uid.clone())
    };
    let _ = exchange_within(&client.settings, &uid, &msg, timeout);
}

static START_NANOS: OnceLock<u64> = OnceLock::new();
static EXPORT_PROBLEM: Mutex<Option<(String, u64)>> = Mutex::new(None);

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The transport's last export outcome: `None` for success. Reported as health.
pub(crate) fn export_outcome(problem: Option<String>) {
    let mut p = EXPORT_PROBLEM.lock().unwrap_or_else(|e| e.into_inner());
    match (problem, p.is_some()) {
        (None, false) => {}
        (None, true) => *p = None,
        (Some(e), _) => *p = Some((e, now_nanos())),
    }
}

fn status() -> Status {
    let start = START_NANOS.get().copied().unwrap_or(0);
    let problem = EXPORT_PROBLEM
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let health = match problem {
        None => proto::ComponentHealth {
            healthy: true,
            start_time_unix_nano: start,
            status: "exporting".into(),
            ..Default::default()
        },
        Some((e, at)) => proto::ComponentHealth {
            healthy: false,
            start_time_unix_nano: start,
            last_error: e,
            status: "export failing".into(),
            status_time_unix_nano: at,
        },
    };
    Status {
        health,
        effective: remote::effective(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_interval(" 30 ").unwrap(), Duration::from_secs(30));
        assert!(parse_interval("10ms").is_err());
        assert!(parse_interval("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_interval("x").is_err());
    }
}
