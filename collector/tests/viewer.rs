//! The web viewer in headless Chromium.
//!
//! - Traces from three services and a request-duration histogram go in over OTLP/HTTP,
//!   then `tests/viewer/check.cjs` (playwright-core) loads the page, searches, opens a
//!   trace, reads a span's attributes, the service map and the RED cards.
//! - An OpAMP agent reports over HTTP while `tests/viewer/agents.cjs` lists it, reads its
//!   detail and pushes configs from the editor, which the agent applies or fails.
//!
//! Needs Debian's chromium and playwright-core: `.ci/run` installs both and runs this
//! test with `INSTGO_CHROMIUM` and `INSTGO_PLAYWRIGHT` set (`cargo test -p
//! instgo-collector --test viewer -- --ignored`). Run without them, it fails and says so.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use instgo_collector::opamp::proto;
use instgo_collector::{start, Config};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    status::StatusCode, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One service's spans: (trace, id, parent, name, kind, error, attributes).
type SpanSpec<'a> = (u8, u8, u8, &'a str, i32, bool, &'a [(&'a str, &'a str)]);

fn service(name: &str, spans: &[SpanSpec<'_>], now: u64) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", name)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: spans
                .iter()
                .map(|&(trace, id, parent, span, kind, error, attrs)| Span {
                    trace_id: vec![trace; 16],
                    span_id: vec![id; 8],
                    parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
                    name: span.into(),
                    kind,
                    start_time_unix_nano: now - 5_000_000 + u64::from(id) * 100_000,
                    end_time_unix_nano: now - u64::from(id) * 100_000,
                    attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
                    status: error.then(|| Status {
                        code: StatusCode::Error as i32,
                        message: "out of stock".into(),
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        schema_url: String::new(),
    }
}

/// `orders`' request-duration histogram, cumulative: `count` requests by `time`.
fn histogram(now: u64, time: u64, count: u64) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "orders")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "http.server.request.duration".into(),
                    unit: "s".into(),
                    data: Some(Data::Histogram(Histogram {
                        aggregation_temporality: 2,
                        data_points: vec![HistogramDataPoint {
                            start_time_unix_nano: now - 60_000_000_000,
                            time_unix_nano: time,
                            count,
                            bucket_counts: vec![0, count, 0],
                            explicit_bounds: vec![0.01, 0.1],
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

fn post(addr: SocketAddr, body: &[u8]) {
    post_to(addr, "traces", body)
}

fn post_to(addr: SocketAddr, signal: &str, body: &[u8]) {
    post_path(addr, &format!("/v1/{signal}"), body);
}

/// A protobuf POST to `path` that must be answered 200; the answer's body.
fn post_path(addr: SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    out.split_off(head_end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs INSTGO_CHROMIUM and INSTGO_PLAYWRIGHT; .ci/run provides them"]
async fn viewer_in_headless_chromium() {
    let any = "127.0.0.1:0".parse().ok();
    let running = start(Config {
        grpc: None,
        http: any,
        ui: any,
        ..Config::default()
    })
    .await
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            service(
                "gateway",
                &[
                    (
                        1,
                        1,
                        0,
                        "GET /users/{id}",
                        2,
                        false,
                        &[("http.route", "/users/{id}")],
                    ),
                    (
                        2,
                        3,
                        0,
                        "POST /orders",
                        2,
                        false,
                        &[("http.route", "/orders")],
                    ),
                ],
                now,
            ),
            service("users", &[(1, 2, 1, "SELECT users", 2, false, &[])], now),
            service("orders", &[(2, 4, 3, "reserve stock", 2, true, &[])], now),
        ],
    }
    .encode_to_vec();
    let http = running.http.unwrap();
    let (early, late) = (
        histogram(now, now - 10_000_000_000, 50),
        histogram(now, now, 250),
    );
    tokio::task::spawn_blocking(move || {
        post(http, &request);
        post_to(http, "metrics", &early);
        post_to(http, "metrics", &late);
    })
    .await
    .unwrap();
    while running.store.search(&Default::default()).len() < 2
        || running
            .metrics
            .red(now + 1_000_000_000, 900_000_000_000)
            .is_empty()
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser("check.cjs", running.ui.unwrap()).await;
    running.stop().await;
}

/// Runs `tests/viewer/{script}` against the viewer at `ui`; fails with what it printed.
async fn browser(script: &str, ui: SocketAddr) {
    let (chromium, playwright) = (
        std::env::var("INSTGO_CHROMIUM")
            .expect("INSTGO_CHROMIUM: a chromium binary (.ci/run installs Debian's)"),
        std::env::var("INSTGO_PLAYWRIGHT").expect(
            "INSTGO_PLAYWRIGHT: the playwright-core module directory (.ci/run installs it)",
        ),
    );
    // Where the package is now (cargo sets this for the test process): a binary reused
    // from a shared target directory may have been compiled in another checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let script = format!("{dir}/tests/viewer/{script}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(format!("http://{ui}"))
            .env("INSTGO_CHROMIUM", chromium)
            .env("INSTGO_PLAYWRIGHT", playwright)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One OpAMP exchange over plain HTTP: `msg` in, the answer out.
fn opamp_post(addr: SocketAddr, msg: &proto::AgentToServer) -> proto::ServerToAgent {
    proto::ServerToAgent::decode(&post_path(addr, "/v1/opamp", &msg.encode_to_vec())[..]).unwrap()
}

/// An agent of service `orders` that polls every 100 ms until `stop`: it applies any
/// config it is sent and reports it as its effective config, except one whose
/// `sampling_ratio` is not a number, which it reports FAILED as the runtime words it.
fn scripted_agent(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    use proto::agent_capabilities as cap;
    std::thread::spawn(move || {
        let config = |text: &str| proto::EffectiveConfig {
            config_map: Some(proto::AgentConfigMap::instgo(text)),
        };
        let full = |seq: u64, effective: &str| proto::AgentToServer {
            instance_uid: vec![0x42; 16],
            sequence_num: seq,
            agent_description: Some(proto::AgentDescription {
                identifying_attributes: vec![proto::KeyValue::string("service.name", "orders")],
                non_identifying_attributes: vec![proto::KeyValue::string(
                    "instgo.rules",
                    "axum, reqwest",
                )],
            }),
            capabilities: cap::REPORTS_STATUS
                | cap::ACCEPTS_REMOTE_CONFIG
                | cap::REPORTS_EFFECTIVE_CONFIG
                | cap::REPORTS_HEALTH
                | cap::REPORTS_REMOTE_CONFIG,
            health: Some(proto::ComponentHealth {
                healthy: true,
                status: "exporting".into(),
                ..Default::default()
            }),
            effective_config: Some(config(effective)),
            ..Default::default()
        };
        let mut effective = "# nothing set\n".to_string();
        let mut status = None;
        let mut seq = 0;
        let mut msg = full(seq, &effective);
        while !stop.load(Ordering::Relaxed) {
            let reply = opamp_post(addr, &msg);
            seq += 1;
            msg = if reply.flags & proto::REPORT_FULL_STATE != 0 {
                let mut m = full(seq, &effective);
                m.remote_config_status = status.clone();
                m
            } else {
                proto::AgentToServer {
                    instance_uid: msg.instance_uid.clone(),
                    sequence_num: seq,
                    capabilities: msg.capabilities,
                    ..Default::default()
                }
            };
            if let Some(rc) = reply.remote_config {
                let file = &rc.config.unwrap().config_map[proto::CONFIG_FILE];
                let body = String::from_utf8(file.body.clone()).unwrap();
                let failed = body.contains("sampling_ratio = \"");
                status = Some(proto::RemoteConfigStatus {
                    last_remote_config_hash: rc.config_hash,
                    status: if failed {
                        proto::RemoteConfigStatuses::Failed
                    } else {
                        proto::RemoteConfigStatuses::Applied
                    } as i32,
                    error_message: if failed {
                        "sampling_ratio: expected a number".into()
                    } else {
                        String::new()
                    },
                });
                msg.remote_config_status = status.clone();
                if !failed {
                    effective = body;
                    msg.effective_config = Some(config(&effective));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs INSTGO_CHROMIUM and INSTGO_PLAYWRIGHT; .ci/run provides them"]
async fn agents_page_in_headless_chromium() {
    let any = "127.0.0.1:0".parse().ok();
    let running = start(Config {
        grpc: None,
        http: None,
        ui: any,
        opamp: any,
        ..Config::default()
    })
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let agent = scripted_agent(running.opamp.unwrap(), stop.clone());
    while running.agents.list().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    browser("agents.cjs", running.ui.unwrap()).await;
    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || agent.join().unwrap())
        .await
        .unwrap();
    // The pushes were real: the service's config and the agent's own are both kept, and
    // the agent's (which it failed) is the one offered.
    let a = &running.agents.list()[0];
    let offered = a.offered.as_ref().unwrap();
    assert_eq!(offered.scope, "agent");
    assert_eq!(offered.body, "sampling_ratio = \"lots\"\n");
    let status = a.remote_config_status.as_ref().unwrap();
    assert_eq!(
        (status.status.as_str(), &status.hash),
        ("FAILED", &offered.hash)
    );
    assert_eq!(
        a.effective_config[proto::CONFIG_FILE],
        "sampling_ratio = 0.25\n"
    );
    running.stop().await;
}
