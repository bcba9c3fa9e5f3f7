//! A tiny "service" for the hooks example: a client that sends requests with headers to a
//! server in the same process, plus functions that show span attributes taken from
//! arguments, a hook that fails, and work on a thread started with `std::thread::spawn`.
#![deny(warnings, missing_docs)]

use std::collections::BTreeMap;

/// An outgoing or incoming request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path such as `/orders/7`.
    pub path: String,
    /// Header map as it travels "over the wire".
    pub headers: BTreeMap<String, String>,
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP-like status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

/// A customer.
pub struct User {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// Sends `req` to the server. The headers are all that crosses the "wire".
pub fn send(req: Request) -> Result<Response, String> {
    if req.path.is_empty() {
        return Err("empty path".to_string());
    }
    let wire = Request {
        path: req.path.clone(),
        headers: req.headers.clone(),
    };
    Ok(serve(wire))
}

/// Handles one request: `/orders/N` answers 200, anything else 500.
pub fn serve(req: Request) -> Response {
    match req.path.strip_prefix("/orders/") {
        Some(id) => Response {
            status: 200,
            body: format!("order {id}"),
        },
        None => Response {
            status: 500,
            body: "no such route".into(),
        },
    }
}

/// Charges a user.
pub fn checkout(user: &User, cents: u64) -> bool {
    cents > 0 && !user.name.is_empty()
}

/// Doubles `n`; its rule's hook panics on 13.
pub fn fragile(n: u32) -> u32 {
    n * 2
}

/// Computes on another thread.
pub fn on_thread(n: u64) -> u64 {
    let handle = std::thread::spawn(move || crunch(n));
    handle.join().unwrap_or(0)
}

/// Some work.
pub fn crunch(n: u64) -> u64 {
    (1..=n).product()
}
