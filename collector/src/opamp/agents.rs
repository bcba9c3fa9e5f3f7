//! What the OpAMP server knows: each agent's last report, and the configs pushed to one
//! agent or to every agent of a service.
//!
//! Agents send only what changed (the spec's status compression), so the server keeps
//! the last value of each field. When it cannot trust what it has — an agent it never
//! saw, or a gap in the sequence numbers — it asks for the full state
//! (`ReportFullState`). A pushed config is offered in every answer until the agent
//! reports a status for its hash: APPLIED, or FAILED with the reason, which is kept.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::proto::{self, AgentToServer, ServerToAgent};

/// A pushed config larger than this is refused.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Agents remembered at most; past it the one heard from longest ago is forgotten.
const MAX_AGENTS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the config is {size} bytes; at most {MAX_CONFIG_BYTES} are accepted")]
    TooLarge { size: usize },
    #[error("no agent {0} has reported to this collector (see `cargo instrument control list`)")]
    UnknownAgent(String),
    #[error("cannot keep the pushed configs in {path}: {source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A config pushed from the viewer or `control set`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pushed {
    pub body: String,
    /// SHA-256 of `body`, hex: the `config_hash` agents report back.
    pub hash: String,
    pub pushed_unix_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PushedConfigs {
    /// By instance uid (UUID text).
    #[serde(default)]
    agents: BTreeMap<String, Pushed>,
    /// By `service.name`.
    #[serde(default)]
    services: BTreeMap<String, Pushed>,
}

/// One agent as the viewer and `control list` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentView {
    pub uid: String,
    pub service: Option<String>,
    pub identifying: Vec<(String, String)>,
    pub non_identifying: Vec<(String, String)>,
    pub capabilities: u64,
    pub health: Option<Health>,
    /// The agent's effective config, file name → text.
    pub effective_config: BTreeMap<String, String>,
    pub remote_config_status: Option<ConfigStatus>,
    /// What this collector offers it, and whether that is per agent or per service.
    pub offered: Option<Offered>,
    pub last_seen_unix_ms: u64,
    pub sequence_num: u64,
    pub disconnected: bool,
    /// `http` (polling) or `websocket`: how it reported last.
    #[serde(default)]
    pub transport: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Health {
    pub healthy: bool,
    pub status: String,
    pub last_error: String,
    pub start_time_unix_nano: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfigStatus {
    /// APPLIED, APPLYING, FAILED or UNSET.
    pub status: String,
    pub error: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offered {
    /// `agent` or `service`.
    pub scope: String,
    pub hash: String,
    pub body: String,
}

pub struct Agents {
    inner: Mutex<Inner>,
    /// Where pushed configs are kept (`None`: memory only).
    path: Option<PathBuf>,
    /// Bumped on every push, so WebSocket connections offer it at once.
    pushes: tokio::sync::watch::Sender<u64>,
}

struct Inner {
    /// The last report of each, by instance uid. `offered` is filled in by `list`.
    agents: HashMap<Vec<u8>, AgentView>,
    pushed: PushedConfigs,
    /// Told once in the first answer to each agent, and whenever it asks again.
    capabilities: u64,
    /// The WebSocket connection each agent spoke on last (by connection number): only
    /// that one's end means the agent is gone, not an older one closing after a reconnect.
    sockets: HashMap<Vec<u8>, u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(body: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, body.as_bytes())
        .as_ref()
        .to_vec()
}

fn status_name(s: i32) -> &'static str {
    match proto::RemoteConfigStatuses::try_from(s) {
        Ok(proto::RemoteConfigStatuses::Applied) => "APPLIED",
        Ok(proto::RemoteConfigStatuses::Applying) => "APPLYING",
        Ok(proto::RemoteConfigStatuses::Failed) => "FAILED",
        _ => "UNSET",
    }
}

fn pairs(kvs: &[proto::KeyValue]) -> Vec<(String, String)> {
    kvs.iter().map(|kv| (kv.key.clone(), kv.text())).collect()
}

impl Agents {
    /// The registry, with the configs pushed before (read from `path` if it exists).
    pub fn open(path: Option<PathBuf>) -> Result<Agents, String> {
        let pushed = match &path {
            Some(p) if p.exists() => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not a pushed-configs file: {e}", p.display()))?
            }
            _ => PushedConfigs::default(),
        };
        Ok(Agents {
            inner: Mutex::new(Inner {
                agents: HashMap::new(),
                pushed,
                capabilities: proto::server_capabilities::ACCEPTS_STATUS
                    | proto::server_capabilities::OFFERS_REMOTE_CONFIG
                    | proto::server_capabilities::ACCEPTS_EFFECTIVE_CONFIG,
                sockets: HashMap::new(),
            }),
            path,
            pushes: tokio::sync::watch::channel(0).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one report and answers it; `socket` is the WebSocket connection's number,
    /// `None` over plain HTTP.
    pub fn handle(&self, msg: AgentToServer, socket: Option<u64>) -> ServerToAgent {
        if msg.instance_uid.len() != 16 {
            let why = format!(
                "instance_uid must be 16 bytes, got {}",
                msg.instance_uid.len()
            );
            return super::bad_request(msg.instance_uid, why);
        }
        let mut reply = ServerToAgent {
            instance_uid: msg.instance_uid.clone(),
            ..Default::default()
        };
        let mut inner = self.lock();
        reply.capabilities = inner.capabilities;
        let uid = msg.instance_uid.clone();
        let known = inner.agents.contains_key(&uid);
        if !known && inner.agents.len() >= MAX_AGENTS {
            let oldest = inner
                .agents
                .iter()
                .min_by_key(|(_, a)| a.last_seen_unix_ms)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.agents.remove(&k);
            }
        }
        let Inner {
            agents,
            pushed,
            sockets,
            ..
        } = &mut *inner;
        let v = agents.entry(uid.clone()).or_insert_with(|| AgentView {
            uid: proto::uuid_text(&uid),
            service: None,
            identifying: Vec::new(),
            non_identifying: Vec::new(),
            capabilities: 0,
            health: None,
            effective_config: BTreeMap::new(),
            remote_config_status: None,
            offered: None,
            last_seen_unix_ms: 0,
            sequence_num: 0,
            disconnected: false,
            transport: String::new(),
        });
        // What was omitted as unchanged is unknown here after a gap or a restart.
        let gap = known && msg.sequence_num != v.sequence_num.wrapping_add(1);
        if (!known && msg.agent_description.is_none()) || gap {
            reply.flags |= proto::REPORT_FULL_STATE;
        }
        v.sequence_num = msg.sequence_num;
        v.last_seen_unix_ms = now_ms();
        v.capabilities = msg.capabilities;
        v.disconnected = msg.agent_disconnect.is_some();
        v.transport = if socket.is_some() {
            "websocket"
        } else {
            "http"
        }
        .into();
        if let Some(d) = &msg.agent_description {
            v.identifying = pairs(&d.identifying_attributes);
            v.non_identifying = pairs(&d.non_identifying_attributes);
            v.service = v
                .identifying
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone());
        }
        if let Some(h) = &msg.health {
            v.health = Some(Health {
                healthy: h.healthy,
                status: h.status.clone(),
                last_error: h.last_error.clone(),
                start_time_unix_nano: h.start_time_unix_nano,
            });
        }
        if let Some(e) = &msg.effective_config {
            v.effective_config = e
                .config_map
                .iter()
                .flat_map(|m| &m.config_map)
                .map(|(name, f)| (name.clone(), String::from_utf8_lossy(&f.body).into_owned()))
                .collect();
        }
        if let Some(s) = &msg.remote_config_status {
            v.remote_config_status = Some(ConfigStatus {
                status: status_name(s.status).to_string(),
                error: s.error_message.clone(),
                hash: hex(&s.last_remote_config_hash),
            });
        }
        if msg.agent_disconnect.is_none() {
            reply.remote_config = remote_config(pushed, v);
        }
        match socket {
            Some(n) if msg.agent_disconnect.is_none() => {
                sockets.insert(uid, n);
            }
            _ => {
                sockets.remove(&uid);
            }
        }
        reply
    }

    /// The config to send `uid` now, unreported yet, if there is one: what a WebSocket
    /// connection sends when [`Agents::pushes`] says something was pushed.
    pub fn pending(&self, uid: &[u8]) -> Option<proto::AgentRemoteConfig> {
        let inner = self.lock();
        let v = inner.agents.get(uid).filter(|v| !v.disconnected)?;
        remote_config(&inner.pushed, v)
    }

    /// Changes on every push.
    pub fn pushes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.pushes.subscribe()
    }

    /// WebSocket connection `socket` of agent `uid` ended. If it was the agent's last
    /// one, the agent is gone, whether or not it said goodbye.
    pub fn socket_closed(&self, uid: &[u8], socket: u64) {
        let mut inner = self.lock();
        if inner.sockets.get(uid) == Some(&socket) {
            inner.sockets.remove(uid);
            if let Some(v) = inner.agents.get_mut(uid) {
                v.disconnected = true;
            }
        }
    }

    /// Every agent, services first by name, then by id.
    pub fn list(&self) -> Vec<AgentView> {
        let inner = self.lock();
        // What is offered now, not at the agent's last report: a config pushed since is
        // pending until the agent reports on its hash.
        let mut all: Vec<AgentView> = inner
            .agents
            .values()
            .map(|a| {
                let mut v = a.clone();
                v.offered =
                    offer(&inner.pushed, &v.uid, v.service.as_deref()).map(|(scope, p)| Offered {
                        scope: scope.into(),
                        hash: p.hash.clone(),
                        body: p.body.clone(),
                    });
                v
            })
            .collect();
        all.sort_by(|a, b| (&a.service, &a.uid).cmp(&(&b.service, &b.uid)));
        all
    }

    /// Pushes `body` to one agent (by uid text); it gets it at its next poll.
    pub fn push_to_agent(&self, uid: &str, body: String) -> Result<Pushed, PushError> {
        let uid = uid.trim().to_ascii_lowercase();
        {
            let inner = self.lock();
            if !inner.agents.values().any(|a| a.uid == uid) {
                return Err(PushError::UnknownAgent(uid));
            }
        }
        self.push(
            |p, pushed| {
                p.agents.insert(uid.clone(), pushed);
            },
            body,
        )
    }

    /// Pushes `body` to every agent whose `service.name` is `service`, now and later; an
    /// agent's own pushed config comes before its service's. Returns the config and how
    /// many such agents are known now.
    pub fn push_to_service(
        &self,
        service: &str,
        body: String,
    ) -> Result<(Pushed, usize), PushError> {
        let service = service.trim().to_string();
        let pushed = self.push(
            |p, pushed| {
                p.services.insert(service.clone(), pushed);
            },
            body,
        )?;
        let n = self
            .lock()
            .agents
            .values()
            .filter(|a| a.service.as_deref() == Some(service.as_str()))
            .count();
        Ok((pushed, n))
    }

    fn push(
        &self,
        put: impl FnOnce(&mut PushedConfigs, Pushed),
        body: String,
    ) -> Result<Pushed, PushError> {
        if body.len() > MAX_CONFIG_BYTES {
            return Err(PushError::TooLarge { size: body.len() });
        }
        let pushed = Pushed {
            hash: hex(&sha256(&body)),
            body,
            pushed_unix_ms: now_ms(),
        };
        let mut inner = self.lock();
        put(&mut inner.pushed, pushed.clone());
        if let Some(path) = &self.path {
            let text = serde_json::to_string_pretty(&inner.pushed).expect("plain data");
            write_atomically(path, text.as_bytes()).map_err(|source| PushError::Persist {
                path: path.clone(),
                source,
            })?;
        }
        drop(inner);
        self.pushes.send_modify(|n| *n += 1);
        Ok(pushed)
    }
}

/// The config offered to an agent, and whether it is its own (`agent`) or its service's.
fn offer<'p>(
    p: &'p PushedConfigs,
    uid: &str,
    service: Option<&str>,
) -> Option<(&'static str, &'p Pushed)> {
    if let Some(c) = p.agents.get(uid) {
        return Some(("agent", c));
    }
    Some(("service", p.services.get(service?)?))
}

/// The config offered to agent `v` that it has not reported on yet, if it takes configs.
fn remote_config(pushed: &PushedConfigs, v: &AgentView) -> Option<proto::AgentRemoteConfig> {
    if v.capabilities & proto::agent_capabilities::ACCEPTS_REMOTE_CONFIG == 0 {
        return None;
    }
    let (_, p) = offer(pushed, &v.uid, v.service.as_deref())?;
    let has = v.remote_config_status.as_ref().map(|s| s.hash.as_str());
    (has != Some(p.hash.as_str())).then(|| proto::AgentRemoteConfig {
        config: Some(proto::AgentConfigMap::instgo(&p.body)),
        config_hash: unhex(&p.hash),
    })
}

/// The bytes of a [`hex`] hash (the configs file keeps it as text).
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// A reader never sees half a file: written beside it, then renamed over it.
fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(uid: u8, seq: u64, service: Option<&str>) -> AgentToServer {
        AgentToServer {
            instance_uid: vec![uid; 16],
            sequence_num: seq,
            agent_description: service.map(|s| proto::AgentDescription {
                identifying_attributes: vec![proto::KeyValue::string("service.name", s)],
                non_identifying_attributes: vec![proto::KeyValue::string("host.name", "h")],
            }),
            capabilities: proto::agent_capabilities::REPORTS_STATUS
                | proto::agent_capabilities::ACCEPTS_REMOTE_CONFIG,
            ..Default::default()
        }
    }

    #[test]
    fn unknown_agents_and_gaps_are_asked_for_everything() {
        let a = Agents::open(None).unwrap();
        let r = a.handle(report(1, 5, None), None);
        assert_eq!(r.flags & proto::REPORT_FULL_STATE, proto::REPORT_FULL_STATE);
        assert_ne!(r.capabilities, 0);
        let r = a.handle(report(1, 6, Some("shop")), None);
        assert_eq!(r.flags, 0);
        let r = a.handle(report(1, 9, None), None);
        assert_eq!(r.flags, proto::REPORT_FULL_STATE);
        let r = a.handle(
            AgentToServer {
                instance_uid: vec![1; 3],
                ..Default::default()
            },
            None,
        );
        assert!(r.error_response.unwrap().error_message.contains("16 bytes"));
        let list = a.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].service.as_deref(), Some("shop"));
        assert_eq!(
            list[0].non_identifying,
            vec![("host.name".into(), "h".into())]
        );
    }

    #[test]
    fn only_the_last_socket_closing_means_gone() {
        let a = Agents::open(None).unwrap();
        a.handle(report(3, 0, Some("shop")), Some(1));
        // Reconnected on socket 2 before socket 1's end was seen.
        a.handle(report(3, 1, None), Some(2));
        a.socket_closed(&[3; 16], 1);
        assert!(!a.list()[0].disconnected);
        assert_eq!(a.list()[0].transport, "websocket");
        a.socket_closed(&[3; 16], 2);
        assert!(a.list()[0].disconnected);
        // Back over plain HTTP: connected, and no socket's end concerns it any more.
        a.handle(report(3, 2, None), None);
        a.socket_closed(&[3; 16], 2);
        assert!(!a.list()[0].disconnected);
        assert_eq!(a.list()[0].transport, "http");
    }

    #[test]
    fn a_push_is_signalled_and_pending_until_reported() {
        let a = Agents::open(None).unwrap();
        let mut pushes = a.pushes();
        a.handle(report(4, 0, Some("shop")), Some(7));
        assert!(a.pending(&[4; 16]).is_none());
        let (p, _) = a
            .push_to_service("shop", "sampling_ratio = 0.5\n".into())
            .unwrap();
        assert!(pushes.has_changed().unwrap());
        pushes.mark_unchanged();
        let c = a.pending(&[4; 16]).unwrap();
        assert_eq!(hex(&c.config_hash), p.hash);
        let mut m = report(4, 1, None);
        m.remote_config_status = Some(proto::RemoteConfigStatus {
            last_remote_config_hash: c.config_hash,
            status: proto::RemoteConfigStatuses::Applied as i32,
            error_message: String::new(),
        });
        a.handle(m, Some(7));
        assert!(a.pending(&[4; 16]).is_none());
        assert!(!pushes.has_changed().unwrap());
    }

    #[test]
    fn a_pushed_config_is_offered_until_a_status_names_its_hash() {
        let dir = std::env::temp_dir().join(format!("instgo-opamp-{}", std::process::id()));
        let path = dir.join("configs.json");
        let a = Agents::open(Some(path.clone())).unwrap();
        a.handle(report(2, 0, Some("shop")), None);
        let (pushed, n) = a
            .push_to_service("shop", "sampling_ratio = 0.5\n".into())
            .unwrap();
        assert_eq!(n, 1);
        // Listed as offered at once, before the agent's next report.
        assert_eq!(a.list()[0].offered.as_ref().unwrap().hash, pushed.hash);
        let r = a.handle(report(2, 1, None), None);
        let rc = r.remote_config.expect("offered");
        assert_eq!(hex(&rc.config_hash), pushed.hash);
        let file = &rc.config.unwrap().config_map[proto::CONFIG_FILE];
        assert_eq!(file.body, b"sampling_ratio = 0.5\n");
        // The agent says it failed: not offered again, the reason kept.
        let mut m = report(2, 2, None);
        m.remote_config_status = Some(proto::RemoteConfigStatus {
            last_remote_config_hash: rc.config_hash.clone(),
            status: proto::RemoteConfigStatuses::Failed as i32,
            error_message: "bad".into(),
        });
        assert!(a.handle(m, None).remote_config.is_none());
        let v = &a.list()[0];
        assert_eq!(v.remote_config_status.as_ref().unwrap().status, "FAILED");
        assert_eq!(v.offered.as_ref().unwrap().scope, "service");
        // Per agent wins over per service, and survives a restart of the registry.
        a.push_to_agent(&proto::uuid_text(&[2; 16]), "".into())
            .unwrap();
        assert!(a.push_to_agent("nope", "".into()).is_err());
        drop(a);
        let b = Agents::open(Some(path)).unwrap();
        let r = b.handle(report(2, 0, Some("shop")), None);
        let body = &r.remote_config.unwrap().config.unwrap().config_map[proto::CONFIG_FILE].body;
        assert!(body.is_empty());
        assert!(matches!(
            b.push_to_service("shop", "x".repeat(MAX_CONFIG_BYTES + 1)),
            Err(PushError::TooLarge { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
