//! The multi-service example (`examples/services`): gateway (axum + reqwest) → orders
//! (actix-web, a tokio task, tonic client) → inventory (tonic server), three processes
//! built with `cargo instrument build` and no rules file. One request must make one
//! trace across the three, with the right tree and the conventions' attributes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::{Receiver, Span};
use crate::{build_example, export_to, lock, parent_of, pinned_copy};

fn example() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| pinned_copy("services", "INSTGO_SERVICES_PRECISE"))
        .clone()
}

/// The folder of the three instrumented binaries.
fn build() -> PathBuf {
    let gateway = build_example(&example(), "gateway", true, &[]);
    gateway.parent().unwrap().to_path_buf()
}

/// A running service; killed when dropped.
struct Service {
    child: Child,
    addr: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, name: &str, endpoint: &str, env: &[(&str, &str)]) -> Service {
    let mut c = Command::new(dir.join(name));
    export_to(&mut c, endpoint)
        .env("OTEL_SERVICE_NAME", name)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = c.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name} said {first:?}"))
        .to_string();
    Service { child, addr }
}

/// One HTTP/1.1 GET; the status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn service(s: &Span) -> &str {
    s.resource_attr("service.name").unwrap_or("")
}

fn child<'a>(spans: &'a [Span], of: &Span, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.parent_span_id == of.span_id && s.name == name)
        .unwrap_or_else(|| panic!("no {name:?} under {:?}: {spans:#?}", of.name))
}

#[test]
fn one_request_one_trace_across_three_services() {
    let _l = lock();
    let dir = build();
    let rx = Receiver::start();
    let inventory = start(&dir, "inventory", &rx.endpoint, &[]);
    let inventory_url = format!("http://{}", inventory.addr);
    let orders = start(
        &dir,
        "orders",
        &rx.endpoint,
        &[("INVENTORY_URL", &inventory_url)],
    );
    let orders_url = format!("http://{}", orders.addr);
    let gateway = start(
        &dir,
        "gateway",
        &rx.endpoint,
        &[("ORDERS_URL", &orders_url)],
    );

    assert_eq!(
        get(&gateway.addr, "/checkout/widget"),
        (201, "reserved, 99 left".to_string())
    );
    assert_eq!(get(&gateway.addr, "/checkout/gadget").0, 404);

    let spans = rx.wait_for(Duration::from_secs(20), |s| {
        s.iter()
            .filter(|x| x.name == "inventory.Inventory/Reserve" && x.kind == 2)
            .count()
            >= 2
            && s.iter()
                .filter(|x| x.name == "GET /checkout/{item}")
                .count()
                >= 2
    });

    for (item, status) in [("widget", "201"), ("gadget", "404")] {
        let root = spans
            .iter()
            .find(|s| {
                s.name == "GET /checkout/{item}"
                    && s.attr("url.path") == Some(&*format!("/checkout/{item}"))
            })
            .unwrap_or_else(|| panic!("gateway span for {item}: {spans:#?}"));
        assert!(
            root.parent_span_id.is_empty(),
            "the gateway's span is the root"
        );
        assert_eq!((service(root), root.kind), ("gateway", 2));
        assert_eq!(root.attr("http.response.status_code"), Some(status));
        assert_eq!(
            root.status_code, 0,
            "a {status} is not the gateway's failure"
        );

        let post = child(&spans, root, "POST");
        assert_eq!((service(post), post.kind), ("gateway", 3));
        let order = child(&spans, post, "POST /orders/{item}");
        assert_eq!((service(order), order.kind), ("orders", 2));
        assert_eq!(order.attr("http.route"), Some("/orders/{item}"));
        assert_eq!(order.attr("http.response.status_code"), Some(status));
        // Made inside a tokio task the handler spawned: the task carried the context.
        let call = child(&spans, order, "inventory.Inventory/Reserve");
        assert_eq!((service(call), call.kind), ("orders", 3));
        let served = child(&spans, call, "inventory.Inventory/Reserve");
        assert_eq!((service(served), served.kind), ("inventory", 2));
        for s in [call, served] {
            assert_eq!(s.attr("rpc.system"), Some("grpc"));
            assert_eq!(s.attr("rpc.service"), Some("inventory.Inventory"));
            assert_eq!(s.attr("rpc.method"), Some("Reserve"));
        }
        let trace: Vec<&Span> = spans
            .iter()
            .filter(|s| s.trace_id == root.trace_id)
            .collect();
        assert_eq!(trace.len(), 5, "{trace:#?}");

        if item == "widget" {
            assert_eq!(served.attr("rpc.grpc.status_code"), Some("0"));
            assert_eq!(call.status_code, 0);
        } else {
            // NOT_FOUND: the caller's failure, not the server's.
            assert_eq!(served.attr("rpc.grpc.status_code"), Some("5"));
            assert_eq!(served.status_code, 0);
            assert_eq!(call.attr("rpc.grpc.status_code"), Some("5"));
            assert_eq!(call.attr("error.type"), Some("NOT_FOUND"));
            assert_eq!(call.status_code, 2);
            assert_eq!(post.status_code, 2, "a 404 fails the client span");
        }
        assert_eq!(
            parent_of(&spans, served).map(|p| p.span_id.clone()),
            Some(call.span_id.clone())
        );
    }

    // Each service exported its duration histogram.
    let points = rx.wait_for_points(Duration::from_secs(10), |p| {
        [
            "http.server.request.duration",
            "rpc.server.call.duration",
            "rpc.client.call.duration",
        ]
        .iter()
        .all(|m| p.iter().any(|x| x.metric == *m))
    });
    let rpc = points
        .iter()
        .rev()
        .find(|p| {
            p.metric == "rpc.server.call.duration"
                && p.attributes
                    .iter()
                    .any(|(k, v)| k == "rpc.method" && v == "Reserve")
        })
        .expect("rpc.server.call.duration point");
    assert_eq!(rpc.unit, "s");
    drop((gateway, orders, inventory));
}
