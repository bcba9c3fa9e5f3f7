//! The OpAMP agent's state, apart from any I/O: what goes into the next message, and what
//! a server's answer changes.
//!
//! Status compression: a status field (description, health, effective config, remote
//! config status) is sent when it differs from what the server last acknowledged, so a
//! poll with nothing new carries only the id, the sequence number and the capabilities.
//! A field counts as delivered only once an answer came back; `ReportFullState` and a
//! changed instance id forget what was delivered.

use std::time::Duration;

use super::proto::{
    self, agent_capabilities as cap, AgentToServer, ServerToAgent, CONFIG_FILE, CONFIG_TYPE,
};
use crate::control::Catalog;
use crate::diag::{debug, warning};

pub(crate) const CAPABILITIES: u64 = cap::REPORTS_STATUS
    | cap::ACCEPTS_REMOTE_CONFIG
    | cap::REPORTS_EFFECTIVE_CONFIG
    | cap::REPORTS_HEALTH
    | cap::REPORTS_REMOTE_CONFIG
    | cap::REPORTS_HEARTBEAT;

/// The description's attribute listing the rules compiled in.
const RULES_KEY: &str = "instgo.rules";

/// Things the agent reads from the process each time it builds a message.
pub(crate) struct Status {
    pub health: proto::ComponentHealth,
    pub effective: String,
}

pub(crate) struct Agent {
    pub uid: Vec<u8>,
    seq: u64,
    description: proto::AgentDescription,
    remote_status: Option<proto::RemoteConfigStatus>,
    /// What the server acknowledged last, per field (the description: whether it named
    /// the compiled-in rules, which `main` may tell after the SDK started).
    acked_description: Option<bool>,
    acked_health: Option<proto::ComponentHealth>,
    acked_effective: Option<String>,
    acked_status: Option<proto::RemoteConfigStatus>,
    /// The server's `heartbeat_interval_seconds`, when it set one.
    pub heartbeat: Option<Duration>,
    /// The rules to check configs against; the process's (`control::catalog`) if `None`.
    catalog: Option<Catalog>,
}

/// What an answer asks of the client.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outcome {
    /// Send a status report now, not at the next poll.
    pub report: bool,
    /// The server refused the message and asked to wait this long.
    pub retry_after: Option<Duration>,
}

impl Agent {
    pub(crate) fn new(
        uid: Vec<u8>,
        description: proto::AgentDescription,
        catalog: Option<Catalog>,
    ) -> Agent {
        Agent {
            uid,
            seq: 0,
            description,
            remote_status: None,
            acked_description: None,
            acked_health: None,
            acked_effective: None,
            acked_status: None,
            heartbeat: None,
            catalog,
        }
    }

    /// The next message: every status field the server does not have yet.
    pub(crate) fn message(&mut self, now: &Status) -> AgentToServer {
        let health = (self.acked_health.as_ref().map(comparable) != Some(comparable(&now.health)))
            .then(|| now.health.clone());
        let effective = (self.acked_effective.as_deref() != Some(now.effective.as_str()))
            .then(|| effective_config(&now.effective));
        let msg = AgentToServer {
            instance_uid: self.uid.clone(),
            sequence_num: self.seq,
            agent_description: self.description_news(),
            capabilities: CAPABILITIES,
            health,
            effective_config: effective,
            remote_config_status: self
                .remote_status
                .clone()
                .filter(|s| self.acked_status.as_ref() != Some(s)),
            agent_disconnect: None,
            flags: 0,
        };
        self.seq += 1;
        msg
    }

    fn catalog(&self) -> Option<Catalog> {
        self.catalog.or_else(crate::control::catalog)
    }

    /// The description, if the server lacks it or it lacks the rules known since.
    fn description_news(&self) -> Option<proto::AgentDescription> {
        let catalog = self.catalog();
        if self.acked_description == Some(true)
            || (self.acked_description == Some(false) && catalog.is_none())
        {
            return None;
        }
        let mut d = self.description.clone();
        if let Some(catalog) = catalog {
            let names = catalog.iter().map(|(n, _)| proto::AnyValue {
                value: Some(proto::any_value::Value::StringValue(n.to_string())),
            });
            d.non_identifying_attributes.push(proto::KeyValue {
                key: RULES_KEY.into(),
                value: Some(proto::AnyValue {
                    value: Some(proto::any_value::Value::ArrayValue(proto::ArrayValue {
                        values: names.collect(),
                    })),
                }),
            });
        }
        Some(d)
    }

    /// The last message, sent when the process exits.
    pub(crate) fn disconnect(&mut self) -> AgentToServer {
        let msg = AgentToServer {
            instance_uid: self.uid.clone(),
            sequence_num: self.seq,
            capabilities: CAPABILITIES,
            agent_disconnect: Some(proto::AgentDisconnect {}),
            ..Default::default()
        };
        self.seq += 1;
        msg
    }

    /// `sent` reached the server (an answer came back).
    pub(crate) fn delivered(&mut self, sent: &AgentToServer) {
        if let Some(d) = &sent.agent_description {
            let named = d
                .non_identifying_attributes
                .iter()
                .any(|kv| kv.key == RULES_KEY);
            self.acked_description = Some(named);
        }
        if let Some(h) = &sent.health {
            self.acked_health = Some(h.clone());
        }
        if let Some(e) = &sent.effective_config {
            self.acked_effective = e
                .config_map
                .as_ref()
                .and_then(|m| m.config_map.get(CONFIG_FILE))
                .map(|f| String::from_utf8_lossy(&f.body).into_owned());
        }
        if let Some(s) = &sent.remote_config_status {
            self.acked_status = Some(s.clone());
        }
    }

    fn forget_acknowledged(&mut self) {
        self.acked_description = None;
        self.acked_health = None;
        self.acked_effective = None;
        self.acked_status = None;
    }

    /// Processes a server's answer; a remote config is applied here.
    pub(crate) fn receive(&mut self, reply: ServerToAgent) -> Outcome {
        let mut out = Outcome::default();
        if let Some(e) = reply.error_response {
            warning!(
                "the OpAMP server refused a status report: {}",
                e.error_message
            );
            out.retry_after = e
                .retry_info
                .map(|r| Duration::from_nanos(r.retry_after_nanoseconds));
            return out;
        }
        if let Some(id) = reply.agent_identification {
            if id.new_instance_uid.len() == 16 && id.new_instance_uid != self.uid {
                debug!(
                    "OpAMP: the server renamed this agent {}",
                    proto::uuid_text(&id.new_instance_uid)
                );
                self.uid = id.new_instance_uid;
                self.forget_acknowledged();
                out.report = true;
            }
        }
        if reply.flags & proto::REPORT_FULL_STATE != 0 {
            self.forget_acknowledged();
            out.report = true;
        }
        if let Some(secs) = reply
            .connection_settings
            .and_then(|c| c.opamp)
            .map(|o| o.heartbeat_interval_seconds)
            .filter(|s| *s > 0)
        {
            self.heartbeat = Some(Duration::from_secs(secs));
        }
        if let Some(config) = reply.remote_config {
            out.report |= self.apply(config);
        }
        out
    }

    /// Applies a remote config unless this one (by hash) was dealt with already. Returns
    /// whether the status to report changed.
    fn apply(&mut self, config: proto::AgentRemoteConfig) -> bool {
        let seen = self
            .remote_status
            .as_ref()
            .is_some_and(|s| s.last_remote_config_hash == config.config_hash);
        if seen {
            return false;
        }
        let result = document(&config).and_then(|text| super::remote::parse(&text, self.catalog()));
        let status = match result {
            Ok(remote) => {
                crate::control::apply_remote(&remote);
                debug!("OpAMP: remote config applied");
                proto::RemoteConfigStatus {
                    last_remote_config_hash: config.config_hash,
                    status: proto::RemoteConfigStatuses::Applied as i32,
                    error_message: String::new(),
                }
            }
            Err(e) => {
                warning!("OpAMP: remote config refused, the running one is kept: {e}");
                proto::RemoteConfigStatus {
                    last_remote_config_hash: config.config_hash,
                    status: proto::RemoteConfigStatuses::Failed as i32,
                    error_message: e,
                }
            }
        };
        self.remote_status = Some(status);
        true
    }
}

/// Health without its timestamp: a new time alone is no news.
fn comparable(h: &proto::ComponentHealth) -> (bool, &str, &str) {
    (h.healthy, &h.status, &h.last_error)
}

fn effective_config(text: &str) -> proto::EffectiveConfig {
    proto::EffectiveConfig {
        config_map: Some(proto::AgentConfigMap::instgo(text)),
    }
}

/// The TOML text of a remote config: its `instgo.toml`, or its only file. No file at
/// all is an empty document, which takes the remote settings back.
fn document(config: &proto::AgentRemoteConfig) -> Result<String, String> {
    let files = config
        .config
        .as_ref()
        .map(|m| &m.config_map)
        .filter(|m| !m.is_empty());
    let Some(files) = files else {
        return Ok(String::new());
    };
    let file = match files.get(CONFIG_FILE) {
        Some(f) => f,
        None if files.len() == 1 => files.values().next().expect("one file"),
        None => {
            let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
            names.sort_unstable();
            return Err(format!(
                "expected one config file or one named {CONFIG_FILE}, got {}",
                names.join(", ")
            ));
        }
    };
    let ct = file.content_type.trim();
    if !(ct.is_empty() || ct == CONFIG_TYPE || ct == "text/toml" || ct == "text/plain") {
        return Err(format!("content type {ct:?}: expected {CONFIG_TYPE}"));
    }
    String::from_utf8(file.body.clone()).map_err(|_| "the config is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            health: proto::ComponentHealth {
                healthy: true,
                status: "running".into(),
                ..Default::default()
            },
            effective: "sampling_ratio = 1.0\n".into(),
        }
    }

    fn agent() -> Agent {
        let description = proto::AgentDescription {
            identifying_attributes: vec![proto::KeyValue::string("service.name", "svc")],
            non_identifying_attributes: Vec::new(),
        };
        Agent::new(
            vec![7; 16],
            description,
            Some(&[("axum", &["capture_headers"])]),
        )
    }

    fn config(text: &str, hash: u8) -> proto::AgentRemoteConfig {
        proto::AgentRemoteConfig {
            config: Some(proto::AgentConfigMap::instgo(text)),
            config_hash: vec![hash; 32],
        }
    }

    #[test]
    fn only_what_changed_is_sent_once_delivered() {
        let mut a = agent();
        let first = a.message(&status());
        assert_eq!(first.sequence_num, 0);
        assert!(first.agent_description.is_some() && first.health.is_some());
        assert!(first.effective_config.is_some());
        // Not delivered (no answer): everything again, with the next number.
        let again = a.message(&status());
        assert_eq!(again.sequence_num, 1);
        assert!(again.agent_description.is_some());
        a.delivered(&again);
        let poll = a.message(&status());
        assert_eq!(
            (poll.agent_description, poll.health, poll.effective_config),
            (None, None, None)
        );
        assert_eq!(poll.capabilities, CAPABILITIES);
        // A change of health is news; a new timestamp alone is not.
        let mut s = status();
        s.health.status_time_unix_nano = 99;
        assert!(a.message(&s).health.is_none());
        s.health.healthy = false;
        assert!(a.message(&s).health.is_some());
    }

    #[test]
    fn full_state_when_the_server_asks() {
        let mut a = agent();
        let m = a.message(&status());
        a.delivered(&m);
        let out = a.receive(ServerToAgent {
            flags: proto::REPORT_FULL_STATE,
            ..Default::default()
        });
        assert!(out.report);
        let m = a.message(&status());
        assert!(m.agent_description.is_some() && m.effective_config.is_some());
    }

    #[test]
    fn a_bad_config_fails_and_is_not_applied_twice() {
        let mut a = agent();
        let out = a.receive(ServerToAgent {
            remote_config: Some(config("sampling_ratio = 7", 1)),
            ..Default::default()
        });
        assert!(out.report);
        let m = a.message(&status());
        let st = m.remote_config_status.clone().unwrap();
        assert_eq!(st.status, proto::RemoteConfigStatuses::Failed as i32);
        assert!(
            st.error_message.contains("between 0 and 1"),
            "{}",
            st.error_message
        );
        a.delivered(&m);
        // The same config (same hash) again: nothing new to say.
        let out = a.receive(ServerToAgent {
            remote_config: Some(config("sampling_ratio = 7", 1)),
            ..Default::default()
        });
        assert!(!out.report);
        assert!(a.message(&status()).remote_config_status.is_none());
    }

    #[test]
    fn config_files_are_picked_by_name_or_alone() {
        let mut c = config("", 1);
        c.config
            .as_mut()
            .unwrap()
            .config_map
            .insert("other.toml".into(), proto::AgentConfigFile::default());
        assert_eq!(document(&c).unwrap(), "");
        c.config.as_mut().unwrap().config_map.remove(CONFIG_FILE);
        c.config
            .as_mut()
            .unwrap()
            .config_map
            .insert("third.toml".into(), proto::AgentConfigFile::default());
        assert!(document(&c).unwrap_err().contains("other.toml, third.toml"));
        let mut json = config("{}", 2);
        json.config
            .as_mut()
            .unwrap()
            .config_map
            .get_mut(CONFIG_FILE)
            .unwrap()
            .content_type = "application/json".into();
        assert!(document(&json).unwrap_err().contains("application/json"));
        assert_eq!(document(&proto::AgentRemoteConfig::default()).unwrap(), "");
    }

    #[test]
    fn new_instance_uid_and_heartbeat() {
        let mut a = agent();
        let out = a.receive(ServerToAgent {
            agent_identification: Some(proto::AgentIdentification {
                new_instance_uid: vec![9; 16],
            }),
            connection_settings: Some(proto::ConnectionSettingsOffers {
                hash: vec![],
                opamp: Some(proto::OpAmpConnectionSettings {
                    destination_endpoint: String::new(),
                    heartbeat_interval_seconds: 5,
                }),
            }),
            ..Default::default()
        });
        assert!(out.report);
        assert_eq!(a.uid, vec![9; 16]);
        assert_eq!(a.heartbeat, Some(Duration::from_secs(5)));
        let out = a.receive(ServerToAgent {
            error_response: Some(proto::ServerErrorResponse {
                r#type: proto::ServerErrorResponseType::Unavailable as i32,
                error_message: "busy".into(),
                retry_info: Some(proto::RetryInfo {
                    retry_after_nanoseconds: 2_000_000_000,
                }),
            }),
            ..Default::default()
        });
        assert_eq!(out.retry_after, Some(Duration::from_secs(2)));
    }
}
