//! What the three services share: the inventory gRPC service's messages, server and
//! client, written by hand the way tonic's code generator writes them (so the example
//! builds without `protoc`).

pub mod inventory;

/// Binds `127.0.0.1:PORT` (`PORT` from the environment variable `var`, else any free
/// port) and prints `listening on ADDR` as the first line, so a caller learns the port.
pub fn listen(var: &str) -> std::net::TcpListener {
    let port = std::env::var(var).unwrap_or_else(|_| "0".into());
    let l = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    l.set_nonblocking(true).unwrap();
    println!("listening on {}", l.local_addr().unwrap());
    l
}
