//! The OpAMP messages this project speaks, written from `opamp/v1/opamp.proto` and
//! `anyvalue.proto` of open-telemetry/opamp-spec (package `opamp.proto.v1`).
//!
//! Only the fields the runtime or the bundled collector use are declared; protobuf
//! decoders skip the others, so a peer that sends packages or connection settings for
//! other destinations is still understood. Tag numbers are the specification's. The
//! collector compiles this same file (`#[path]`), so both ends share one definition
//! without the collector depending on the runtime crate. The wire format is checked
//! against the official Python package's `opamp_pb2` in the collector's interop test.
//!
//! This file must not name anything outside itself and `prost`.

use std::collections::HashMap;

/// Agent → server: the body of every request (HTTP) or message (WebSocket).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentToServer {
    /// 16 bytes, a UUID (v7 for the ones we make).
    #[prost(bytes = "vec", tag = "1")]
    pub instance_uid: Vec<u8>,
    /// One more for every message, so the server sees a message it missed.
    #[prost(uint64, tag = "2")]
    pub sequence_num: u64,
    #[prost(message, optional, tag = "3")]
    pub agent_description: Option<AgentDescription>,
    /// A bit set of [`agent_capabilities`]; always set.
    #[prost(uint64, tag = "4")]
    pub capabilities: u64,
    #[prost(message, optional, tag = "5")]
    pub health: Option<ComponentHealth>,
    #[prost(message, optional, tag = "6")]
    pub effective_config: Option<EffectiveConfig>,
    #[prost(message, optional, tag = "7")]
    pub remote_config_status: Option<RemoteConfigStatus>,
    /// Set in the last message an agent sends.
    #[prost(message, optional, tag = "9")]
    pub agent_disconnect: Option<AgentDisconnect>,
    #[prost(uint64, tag = "10")]
    pub flags: u64,
}

/// `AgentCapabilities` bits.
pub mod agent_capabilities {
    pub const REPORTS_STATUS: u64 = 0x1;
    pub const ACCEPTS_REMOTE_CONFIG: u64 = 0x2;
    pub const REPORTS_EFFECTIVE_CONFIG: u64 = 0x4;
    pub const REPORTS_HEALTH: u64 = 0x800;
    pub const REPORTS_REMOTE_CONFIG: u64 = 0x1000;
    pub const REPORTS_HEARTBEAT: u64 = 0x2000;
}

/// `ServerCapabilities` bits.
pub mod server_capabilities {
    pub const ACCEPTS_STATUS: u64 = 0x1;
    pub const OFFERS_REMOTE_CONFIG: u64 = 0x2;
    pub const ACCEPTS_EFFECTIVE_CONFIG: u64 = 0x4;
}

/// `ServerToAgentFlags`: report every status field again (the server lost them).
pub const REPORT_FULL_STATE: u64 = 0x1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentDisconnect {}

/// Server → agent: the body of every response (HTTP) or message (WebSocket).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerToAgent {
    #[prost(bytes = "vec", tag = "1")]
    pub instance_uid: Vec<u8>,
    /// When set, nothing else is.
    #[prost(message, optional, tag = "2")]
    pub error_response: Option<ServerErrorResponse>,
    #[prost(message, optional, tag = "3")]
    pub remote_config: Option<AgentRemoteConfig>,
    #[prost(message, optional, tag = "4")]
    pub connection_settings: Option<ConnectionSettingsOffers>,
    #[prost(uint64, tag = "6")]
    pub flags: u64,
    /// A bit set of [`server_capabilities`].
    #[prost(uint64, tag = "7")]
    pub capabilities: u64,
    #[prost(message, optional, tag = "8")]
    pub agent_identification: Option<AgentIdentification>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ServerErrorResponse {
    #[prost(enumeration = "ServerErrorResponseType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub error_message: String,
    #[prost(message, optional, tag = "3")]
    pub retry_info: Option<RetryInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServerErrorResponseType {
    Unknown = 0,
    BadRequest = 1,
    Unavailable = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(uint64, tag = "1")]
    pub retry_after_nanoseconds: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectionSettingsOffers {
    #[prost(bytes = "vec", tag = "1")]
    pub hash: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub opamp: Option<OpAmpConnectionSettings>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct OpAmpConnectionSettings {
    #[prost(string, tag = "1")]
    pub destination_endpoint: String,
    /// How often the agent should report when it has nothing new (0: its own choice).
    #[prost(uint64, tag = "4")]
    pub heartbeat_interval_seconds: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentIdentification {
    #[prost(bytes = "vec", tag = "1")]
    pub new_instance_uid: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentDescription {
    /// What names this agent among others (`service.name`, `service.instance.id`, …).
    #[prost(message, repeated, tag = "1")]
    pub identifying_attributes: Vec<KeyValue>,
    #[prost(message, repeated, tag = "2")]
    pub non_identifying_attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ComponentHealth {
    #[prost(bool, tag = "1")]
    pub healthy: bool,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(string, tag = "3")]
    pub last_error: String,
    #[prost(string, tag = "4")]
    pub status: String,
    #[prost(fixed64, tag = "5")]
    pub status_time_unix_nano: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EffectiveConfig {
    #[prost(message, optional, tag = "1")]
    pub config_map: Option<AgentConfigMap>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoteConfigStatus {
    /// The `config_hash` of the remote config this status is about.
    #[prost(bytes = "vec", tag = "1")]
    pub last_remote_config_hash: Vec<u8>,
    #[prost(enumeration = "RemoteConfigStatuses", tag = "2")]
    pub status: i32,
    #[prost(string, tag = "3")]
    pub error_message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum RemoteConfigStatuses {
    Unset = 0,
    Applied = 1,
    Applying = 2,
    Failed = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentRemoteConfig {
    #[prost(message, optional, tag = "1")]
    pub config: Option<AgentConfigMap>,
    #[prost(bytes = "vec", tag = "2")]
    pub config_hash: Vec<u8>,
}

/// Named configuration files.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentConfigMap {
    #[prost(map = "string, message", tag = "1")]
    pub config_map: HashMap<String, AgentConfigFile>,
}

/// The file instgo's configs travel as, remote and effective alike.
pub const CONFIG_FILE: &str = "instgo.toml";
pub const CONFIG_TYPE: &str = "application/toml";

impl AgentConfigMap {
    /// One [`CONFIG_FILE`] holding `text`.
    pub fn instgo(text: &str) -> AgentConfigMap {
        let mut map = AgentConfigMap::default();
        map.config_map.insert(
            CONFIG_FILE.to_string(),
            AgentConfigFile {
                body: text.as_bytes().to_vec(),
                content_type: CONFIG_TYPE.to_string(),
            },
        );
        map
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentConfigFile {
    #[prost(bytes = "vec", tag = "1")]
    pub body: Vec<u8>,
    #[prost(string, tag = "2")]
    pub content_type: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 7")]
    pub value: Option<any_value::Value>,
}

pub mod any_value {
    /// The kinds of value the runtime sends; arrays and maps are skipped when decoding.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        #[prost(bytes, tag = "7")]
        BytesValue(Vec<u8>),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

impl KeyValue {
    pub fn string(key: &str, value: impl Into<String>) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
        }
    }

    /// The value as text, for display (arrays joined with `, `).
    pub fn text(&self) -> String {
        fn one(v: &AnyValue) -> String {
            use any_value::Value as V;
            match &v.value {
                Some(V::StringValue(s)) => s.clone(),
                Some(V::BoolValue(b)) => b.to_string(),
                Some(V::IntValue(i)) => i.to_string(),
                Some(V::DoubleValue(d)) => d.to_string(),
                Some(V::ArrayValue(a)) => a.values.iter().map(one).collect::<Vec<_>>().join(", "),
                Some(V::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
                None => String::new(),
            }
        }
        self.value.as_ref().map(one).unwrap_or_default()
    }
}

/// One WebSocket message: the header (a varint, 0 in this version of the spec), then
/// `msg`.
pub fn ws_frame(msg: &impl prost::Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.encoded_len() + 1);
    out.push(0);
    msg.encode(&mut out).expect("a Vec grows");
    out
}

/// The message in one WebSocket message, once its header is checked; `what` names the
/// message in the error ("an OpAMP AgentToServer").
pub fn ws_unframe<M: prost::Message + Default>(data: &[u8], what: &str) -> Result<M, String> {
    let mut buf = data;
    let header = prost::encoding::decode_varint(&mut buf)
        .map_err(|e| format!("the OpAMP header is not a varint: {e}"))?;
    if header != 0 {
        return Err(format!("OpAMP header {header}: only 0 is defined"));
    }
    M::decode(buf).map_err(|e| format!("not {what} message: {e}"))
}

/// A 16-byte id in the UUID text form (`0190b8a4-…`), as `OpAMP-Instance-UID` carries it.
pub fn uuid_text(id: &[u8]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() != 32 {
        return hex;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
