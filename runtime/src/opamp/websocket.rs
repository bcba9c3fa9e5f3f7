//! OpAMP over WebSocket (`INSTGO_OPAMP_ENDPOINT=ws://…`): one connection kept open, on
//! which the server can send a config the moment it is pushed instead of waiting for
//! the next poll.
//!
//! Each message both ways is the spec's header (a varint, 0) followed by the protobuf.
//! The socket is read with a short timeout, so the one thread can also send its
//! heartbeats and notice the process exiting without a second thread or a wake-up pipe.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::Duration;

use tungstenite::client::ClientRequestBuilder;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error, Message, WebSocket};

use super::proto;
use super::Settings;

pub(super) struct Socket {
    ws: WebSocket<TcpStream>,
}

impl Socket {
    /// Connects and upgrades, within `timeout` for each step.
    pub(super) fn connect(s: &Settings, timeout: Duration) -> Result<Socket, String> {
        let uri: http::Uri = s
            .endpoint
            .parse()
            .map_err(|e| format!("{}: {e}", s.endpoint))?;
        let (host, port) = crate::transport::host_port(&uri, 80)?;
        let tcp = crate::transport::connect(host, port, timeout).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .map_err(|e| e.to_string())?;
        let mut request = ClientRequestBuilder::new(uri);
        if let Some(t) = &s.token {
            request = request.with_header("Authorization", format!("Bearer {t}"));
        }
        // The spec asks clients to bound what they accept; the same bound as over HTTP.
        let config = WebSocketConfig::default()
            .max_message_size(Some(super::MAX_ANSWER))
            .max_frame_size(Some(super::MAX_ANSWER));
        let (ws, _) = tungstenite::client::client_with_config(request, tcp, Some(config)).map_err(
            |e| match e {
                tungstenite::HandshakeError::Failure(Error::Http(r)) => {
                    let body = r.body().as_deref().unwrap_or_default();
                    let body = String::from_utf8_lossy(&body[..body.len().min(300)]);
                    format!("HTTP {}: {}", r.status(), body.trim())
                }
                e => e.to_string(),
            },
        )?;
        Ok(Socket { ws })
    }

    /// How long a read waits before it returns `None`.
    pub(super) fn read_timeout(&mut self, wait: Duration) -> Result<(), String> {
        self.ws
            .get_mut()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())
    }

    pub(super) fn send(&mut self, msg: &proto::AgentToServer) -> Result<(), String> {
        self.ws
            .send(Message::Binary(proto::ws_frame(msg).into()))
            .map_err(|e| e.to_string())
    }

    /// The next server message; `None` when none came within the read timeout.
    pub(super) fn read(&mut self) -> Result<Option<proto::ServerToAgent>, String> {
        loop {
            return match self.ws.read() {
                Ok(Message::Binary(data)) => proto::ws_unframe(&data, "a ServerToAgent").map(Some),
                Ok(Message::Close(frame)) => Err(match frame {
                    Some(f) => format!("the server closed the connection: {} {}", f.code, f.reason),
                    None => "the server closed the connection".into(),
                }),
                Ok(Message::Text(_)) => {
                    self.close(CloseCode::Unsupported, "OpAMP messages are binary");
                    Err("the server sent a text message".into())
                }
                // Pings are answered by the library on the next read or write.
                Ok(_) => continue,
                Err(Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    Ok(None)
                }
                Err(Error::Capacity(e)) => {
                    self.close(CloseCode::Size, "over the client's limit");
                    Err(format!("a server message is too large: {e}"))
                }
                Err(e) => Err(e.to_string()),
            };
        }
    }

    /// Closes the connection as the agent's own choice (exit, or asked to come back).
    pub(super) fn close_normally(&mut self, reason: &str) {
        self.close(CloseCode::Normal, reason);
    }

    /// Closes the connection, waiting briefly for the server's close in return.
    fn close(&mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.to_string().into(),
        };
        if self.ws.close(Some(frame)).is_err() {
            return;
        }
        let _ = self.read_timeout(Duration::from_millis(200));
        // Until the server's close frame (an error then) or the timeout.
        while self.ws.read().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn unframe(data: &[u8]) -> Result<proto::ServerToAgent, String> {
        proto::ws_unframe(data, "a ServerToAgent")
    }

    #[test]
    fn headers_other_than_zero_and_garbage_are_refused() {
        let msg = proto::ServerToAgent {
            instance_uid: vec![1; 16],
            flags: proto::REPORT_FULL_STATE,
            ..Default::default()
        };
        let mut data = vec![0];
        data.extend(msg.encode_to_vec());
        assert_eq!(proto::ws_frame(&msg), data);
        assert_eq!(unframe(&data).unwrap(), msg);
        data[0] = 1;
        assert!(unframe(&data).unwrap_err().contains("header 1"));
        assert!(unframe(&[0, 0xff, 0xff])
            .unwrap_err()
            .contains("not a ServerToAgent"));
        assert!(unframe(&[]).unwrap_err().contains("varint"));
    }
}
