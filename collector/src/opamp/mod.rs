//! The OpAMP server: instrumented programs (and any OpAMP agent) report here, are listed
//! in the viewer and by `cargo instrument control list`, and get the configs pushed to
//! them (`control set`, the viewer, `POST /api/{agents,services}/…/config`).
//!
//! [`agents`] holds what agents reported and what was pushed (kept in a JSON file, so a
//! restarted collector offers the same configs); [`server`] is the transport side
//! (plain HTTP on `/v1/opamp`).

pub mod agents;
pub mod server;

/// The messages, from the same file the runtime compiles.
#[path = "../../../runtime/src/opamp/proto.rs"]
pub mod proto;

/// Where the bundled collector serves OpAMP unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4320";

/// An answer refusing a message, with the reason (`instance_uid` empty when unknown).
pub(crate) fn bad_request(instance_uid: Vec<u8>, why: String) -> proto::ServerToAgent {
    proto::ServerToAgent {
        instance_uid,
        error_response: Some(proto::ServerErrorResponse {
            r#type: proto::ServerErrorResponseType::BadRequest as i32,
            error_message: why,
            retry_info: None,
        }),
        ..Default::default()
    }
}
