//! The OpAMP client: this process as an agent a server (the bundled collector, by
//! default) can see and reconfigure while it runs.
//!
//! Plain HTTP, polling: a POST of an `AgentToServer` every interval, whose answer may
//! carry a remote config (`remote`). One thread of its own ("instgo-opamp"), started with
//! the SDK; the application's threads never wait for it. A server that cannot be reached
//! costs one failed connection per back-off step on that thread.
//!
//! `INSTGO_OPAMP_ENDPOINT` (default `http://127.0.0.1:4320/v1/opamp`, `none`: off),
//! `INSTGO_OPAMP_INTERVAL` (default 30 s, `1s`, `500ms`, `2m`; the server's
//! `heartbeat_interval_seconds` wins), `INSTGO_OPAMP_TOKEN` (sent as a bearer token).

mod agent;
pub mod proto;
pub(crate) mod remote;

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    Ok(Some(Settings {
        explicit: endpoint.is_some(),
        endpoint: endpoint.map_or_else(|| DEFAULT_ENDPOINT.to_string(), |e| e.trim().to_string()),
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
    /// Set at exit: the loop stops and the last message goes out.
    stop: Mutex<bool>,
    wake: Condvar,
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
        stop: Mutex::new(false),
        wake: Condvar::new(),
    });
    let spawned = std::thread::Builder::new()
        .name("instgo-opamp".into())
        .spawn(move || {
            crate::call::mark_runtime_thread();
            run(client)
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

fn run(client: &'static Client) {
    let s = &client.settings;
    let mut failures: u32 = 0;
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
                if failures > 0 {
                    debug!("OpAMP: {} answers again", s.endpoint);
                }
                failures = 0;
                agent.delivered(&sent);
                let out = agent.receive(reply);
                if out.report {
                    wait = Duration::ZERO;
                }
                if let Some(after) = out.retry_after {
                    wait = after.min(MAX_BACKOFF);
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
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
                let factor = 1u32 << failures.min(12).saturating_sub(1);
                wait = (wait * factor).min(MAX_BACKOFF.max(s.interval));
            }
        }
        drop(agent);
        let stop = client.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (stop, _) = client
            .wake
            .wait_timeout_while(stop, wait, |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        if *stop {
            return;
        }
    }
}

/// One POST; the answer decoded.
fn exchange(
    s: &Settings,
    uid: &[u8],
    msg: &proto::AgentToServer,
) -> Result<proto::ServerToAgent, String> {
    exchange_within(
        s,
        uid,
        msg,
        crate::sdk::otlp_timeout("TRACES").min(Duration::from_secs(10)),
    )
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
    *client.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
    client.wake.notify_all();
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
