//! The collector against peers from PyPI:
//! - the official OpenTelemetry Python SDK exporters (`opentelemetry-exporter-otlp-proto-http`
//!   and `-proto-grpc`) sending to it;
//! - the official OpAMP client (`opentelemetry-opamp-client`) polling its OpAMP server, and
//!   our message types against that package's `opamp_pb2`;
//! - OpAMP over WebSocket from the `websockets` package with `opamp_pb2`.
//!
//! Needs a Python with those packages: `.ci/run` makes one and runs this test with
//! `INSTGO_PYTHON` pointing at it (`cargo test -p instgo-collector --test interop --
//! --ignored`). Run without it, the test fails and says so.

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use instgo_collector::signal::Signal;
use instgo_collector::{start, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs INSTGO_PYTHON with the OTLP exporters; .ci/run provides it"]
async fn python_sdk_exporters_over_http_and_grpc() {
    let python = std::env::var("INSTGO_PYTHON").expect(
        "INSTGO_PYTHON must name a python with opentelemetry-exporter-otlp-proto-http and \
         -proto-grpc installed (.ci/run makes one)",
    );
    let any = "127.0.0.1:0".parse().ok();
    let running = start(Config {
        grpc: any,
        http: any,
        ui: None,
        ..Config::default()
    })
    .await
    .unwrap();
    // Where the package is now (cargo sets this for the test process): a binary reused
    // from a shared target directory may have been compiled in another checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let script = format!("{dir}/tests/python/send.py");
    for (protocol, endpoint, service) in [
        (
            "http",
            format!("http://{}", running.http.unwrap()),
            "py-http",
        ),
        ("grpc", running.grpc.unwrap().to_string(), "py-grpc"),
    ] {
        let out = tokio::task::spawn_blocking({
            let python = python.clone();
            let script = script.clone();
            move || {
                Command::new(python)
                    .args([&script, protocol, &endpoint, service])
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut found = Vec::new();
    for _ in 0..100 {
        found = running.store.search(&Default::default());
        if found.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut services: Vec<&str> = found.iter().map(|t| t.service.as_str()).collect();
    services.sort();
    assert_eq!(services, ["py-grpc", "py-http"]);
    for t in &found {
        assert_eq!(
            (t.root.as_str(), t.spans, t.errors),
            ("GET /python", 2, 1),
            "{t:?}"
        );
        let spans = running.store.trace(&t.trace_id).unwrap();
        let child = spans.iter().find(|s| s.name == "call upstream").unwrap();
        let root = spans.iter().find(|s| s.name == "GET /python").unwrap();
        assert_eq!(child.parent_id, root.span_id);
        assert_eq!((root.kind, child.kind), (2, 3));
        assert_eq!(child.status_message, "upstream said no");
        assert_eq!(root.attr("http.request.method"), Some("GET"));
    }
    // The counter came too: the script fails unless each flush was accepted, and the
    // SDK exports once more at shutdown.
    assert!(running.pipeline.accepted(Signal::Metrics) >= 2);
    assert_eq!(running.pipeline.refused.load(Relaxed), 0);
    running.stop().await;
}

fn python() -> (String, String) {
    let python = std::env::var("INSTGO_PYTHON").expect(
        "INSTGO_PYTHON must name a python with opentelemetry-opamp-client installed \
         (.ci/run makes one)",
    );
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    (python, format!("{dir}/tests/python"))
}

/// A collector serving only OpAMP, on a free port.
async fn opamp_collector() -> instgo_collector::Running {
    start(Config {
        grpc: None,
        http: None,
        ui: None,
        opamp: "127.0.0.1:0".parse().ok(),
        ..Config::default()
    })
    .await
    .unwrap()
}

type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// `python args`, its stdin kept open (closing it ends the agents) and its stdout as lines.
fn spawn_python(python: &str, args: &[&str]) -> (std::process::Child, Lines) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = Command::new(python)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Waits up to 10 s for agent `uid` to be listed as `pred` wants.
fn wait_for_agent(
    agents: &instgo_collector::opamp::agents::Agents,
    uid: &str,
    what: &str,
    pred: &dyn Fn(&instgo_collector::opamp::agents::AgentView) -> bool,
) -> instgo_collector::opamp::agents::AgentView {
    for _ in 0..200 {
        if let Some(a) = agents.list().into_iter().find(|a| a.uid == uid && pred(a)) {
            return a;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the agent never {what}: {:?}", agents.list());
}

/// The official Python OpAMP client (`opentelemetry-opamp-client`) against the
/// collector's OpAMP server: it connects and is listed with its description, receives a
/// pushed config and reports its status, APPLIED or FAILED with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs INSTGO_PYTHON with opentelemetry-opamp-client; .ci/run provides it"]
async fn python_opamp_client_is_listed_and_reports_on_pushed_configs() {
    let (python, dir) = python();
    let running = opamp_collector().await;
    let endpoint = format!("http://{}/v1/opamp", running.opamp.unwrap());
    let (mut child, mut lines) =
        spawn_python(&python, &[&format!("{dir}/opamp_agent.py"), &endpoint]);
    let uid = lines.next().unwrap().unwrap();
    let uid = uid.strip_prefix("uid ").expect("uid line").to_string();
    let agents = running.agents.clone();
    let wait_for =
        |what: &str, pred: &dyn Fn(&instgo_collector::opamp::agents::AgentView) -> bool| {
            wait_for_agent(&agents, &uid, what, pred)
        };
    let a = wait_for("was listed", &|a| a.service.is_some());
    assert_eq!(a.service.as_deref(), Some("py-agent"));
    assert!(a
        .non_identifying
        .contains(&("host.name".into(), "interop".into())));

    let pushed = running
        .agents
        .push_to_agent(&uid, "sampling_ratio = 0.5\n".into())
        .unwrap();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "config instgo.toml 'sampling_ratio = 0.5\\n'"
    );
    let a = wait_for("reported APPLIED", &|a| {
        a.remote_config_status
            .as_ref()
            .is_some_and(|s| s.status == "APPLIED" && s.hash == pushed.hash)
    });
    assert_eq!(a.effective_config["instgo.toml"], "sampling_ratio = 0.5\n");

    let (failing, _) = running
        .agents
        .push_to_service("py-agent", "FAIL\n".into())
        .unwrap();
    // The agent's own config comes before its service's: over three of its polls it
    // is offered nothing new and stays on its own.
    std::thread::sleep(Duration::from_millis(1500));
    let a = agents.list().into_iter().find(|a| a.uid == uid).unwrap();
    assert_eq!(a.offered.as_ref().unwrap().scope, "agent");
    assert_eq!(a.remote_config_status.as_ref().unwrap().hash, pushed.hash);
    running.agents.push_to_agent(&uid, "FAIL\n".into()).unwrap();
    let a = wait_for("reported FAILED", &|a| {
        a.remote_config_status
            .as_ref()
            .is_some_and(|s| s.status == "FAILED" && s.hash == failing.hash)
    });
    assert_eq!(a.remote_config_status.unwrap().error, "asked to fail");
    drop(child.stdin.take());
    let _ = child.wait();
    running.stop().await;
}

/// OpAMP over WebSocket, from the `websockets` package with the official `opamp_pb2`
/// messages: an agent that never polls is listed as on a WebSocket, gets a config the
/// moment it is pushed, reports it APPLIED, and is gone when its socket closes. A bad
/// header or body is answered with an error, an oversized message closes the
/// connection with 1009 and a text message with 1003.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs INSTGO_PYTHON with opentelemetry-opamp-client and websockets; .ci/run provides it"]
async fn opamp_over_websocket() {
    use std::time::Instant;

    let (python, dir) = python();
    let running = opamp_collector().await;
    let url = format!("ws://{}/v1/opamp", running.opamp.unwrap());
    let script = format!("{dir}/opamp_ws.py");
    let (mut child, mut lines) = spawn_python(&python, &[&script, "agent", &url]);
    let first = lines.next().unwrap().unwrap();
    let uid = first.split(' ').nth(1).expect("uid line").to_string();
    assert!(first.ends_with(" capabilities 7"), "{first}");
    let agents = running.agents.clone();
    let find = || agents.list().into_iter().find(|a| a.uid == uid);
    let a = find().expect("listed after its first message");
    assert_eq!(
        (a.service.as_deref(), a.transport.as_str()),
        (Some("ws-agent"), "websocket")
    );

    let pushed_at = Instant::now();
    let (pushed, _) = running
        .agents
        .push_to_service("ws-agent", "sampling_ratio = 0.5\n".into())
        .unwrap();
    // The agent sends nothing until it has a config, so only the push can bring it.
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "config 'sampling_ratio = 0.5\\n'"
    );
    let took = pushed_at.elapsed();
    assert!(took < Duration::from_secs(5), "delivered after {took:?}");
    let a = wait_for_agent(&agents, &uid, "reported APPLIED", &|a| {
        a.remote_config_status
            .as_ref()
            .is_some_and(|s| s.status == "APPLIED" && s.hash == pushed.hash)
    });
    assert_eq!(a.effective_config["instgo.toml"], "sampling_ratio = 0.5\n");
    assert!(!a.disconnected);

    // Closed without a goodbye: gone all the same.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    wait_for_agent(&agents, &uid, "was listed as gone", &|a| a.disconnected);

    let out = Command::new(&python)
        .args([&script, "malformed", &url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Vec<&str> = said.lines().collect();
    assert_eq!(said[0], "header 1: OpAMP header 1: only 0 is defined");
    assert!(
        said[1].starts_with("garbage: not an OpAMP AgentToServer message"),
        "{}",
        said[1]
    );
    assert_eq!(
        said[2],
        "oversized: closed 1009 an OpAMP message is at most 4194304 bytes"
    );
    assert_eq!(said[3], "text: closed 1003 OpAMP messages are binary");

    // A connected agent does not hold up the collector's stop: its socket is closed.
    let (mut child, mut lines) = spawn_python(&python, &[&script, "agent", &url]);
    assert!(lines.next().unwrap().unwrap().starts_with("uid "));
    tokio::time::timeout(Duration::from_secs(20), running.stop())
        .await
        .expect("the collector stopped with an agent connected");
    assert!(child.wait().unwrap().success());
}

/// Our OpAMP types against the generated ones of the same Python package (`opamp_pb2`):
/// what the runtime sends decodes there with the same values, and what a server made
/// with them (fields our types leave out included) decodes here.
#[test]
#[ignore = "needs INSTGO_PYTHON with opentelemetry-opamp-client; .ci/run provides it"]
fn opamp_wire_format_matches_the_python_package() {
    use instgo_collector::opamp::proto::{self, any_value::Value};
    use prost::Message as _;

    let (python, dir) = python();
    let mut effective = proto::AgentConfigMap::default();
    effective.config_map.insert(
        "instgo.toml".into(),
        proto::AgentConfigFile {
            body: b"sampling_ratio = 1.0\n".to_vec(),
            content_type: "application/toml".into(),
        },
    );
    let ours = proto::AgentToServer {
        instance_uid: (0..16).collect(),
        sequence_num: 42,
        agent_description: Some(proto::AgentDescription {
            identifying_attributes: vec![proto::KeyValue::string("service.name", "svc")],
            non_identifying_attributes: vec![proto::KeyValue {
                key: "instgo.rules".into(),
                value: Some(proto::AnyValue {
                    value: Some(Value::ArrayValue(proto::ArrayValue {
                        values: vec![proto::AnyValue {
                            value: Some(Value::StringValue("axum".into())),
                        }],
                    })),
                }),
            }],
        }),
        capabilities: 0x3807,
        health: Some(proto::ComponentHealth {
            healthy: false,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            last_error: "export refused".into(),
            status: "export failing".into(),
            status_time_unix_nano: 5,
        }),
        effective_config: Some(proto::EffectiveConfig {
            config_map: Some(effective),
        }),
        remote_config_status: Some(proto::RemoteConfigStatus {
            last_remote_config_hash: vec![1, 2],
            status: proto::RemoteConfigStatuses::Failed as i32,
            error_message: "bad".into(),
        }),
        agent_disconnect: Some(proto::AgentDisconnect {}),
        flags: 1,
    };
    let hex: String = ours
        .encode_to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let wire = |args: &[&str]| {
        let out = Command::new(&python)
            .arg(format!("{dir}/opamp_wire.py"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "opamp_wire.py {args:?}: {err}");
        out.stdout
    };
    let theirs: serde_json::Value = serde_json::from_slice(&wire(&["decode", &hex])).unwrap();
    // protobuf's JSON: bytes in base64, 64-bit integers as strings, enums by name.
    assert_eq!(theirs["instance_uid"], "AAECAwQFBgcICQoLDA0ODw==");
    assert_eq!(theirs["sequence_num"], "42");
    assert_eq!(theirs["capabilities"], "14343");
    assert_eq!(theirs["flags"], "1");
    let d = &theirs["agent_description"];
    assert_eq!(
        d["identifying_attributes"][0]["value"]["string_value"],
        "svc"
    );
    assert_eq!(
        d["non_identifying_attributes"][0]["value"]["array_value"]["values"][0]["string_value"],
        "axum"
    );
    let h = &theirs["health"];
    assert_eq!(h["start_time_unix_nano"], "1700000000000000000");
    assert_eq!(
        (h["last_error"].as_str(), h["status"].as_str()),
        (Some("export refused"), Some("export failing"))
    );
    assert_eq!(
        h.get("healthy"),
        None,
        "false is the default, so not on the wire"
    );
    let file = &theirs["effective_config"]["config_map"]["config_map"]["instgo.toml"];
    assert_eq!(file["content_type"], "application/toml");
    let s = &theirs["remote_config_status"];
    assert_eq!(s["status"], "RemoteConfigStatuses_FAILED");
    assert_eq!(s["error_message"], "bad");
    assert_eq!(theirs["agent_disconnect"], serde_json::json!({}));

    let text = String::from_utf8(wire(&["encode"])).unwrap();
    let mut msgs = text.lines().map(|l| {
        let bytes: Vec<u8> = (0..l.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
            .collect();
        proto::ServerToAgent::decode(&bytes[..]).unwrap()
    });
    let m = msgs.next().unwrap();
    assert_eq!(m.instance_uid, (0..16).collect::<Vec<u8>>());
    assert_eq!((m.flags, m.capabilities), (proto::REPORT_FULL_STATE, 3));
    assert_eq!(
        m.agent_identification.unwrap().new_instance_uid,
        vec![7; 16]
    );
    let opamp = m.connection_settings.unwrap().opamp.unwrap();
    assert_eq!(opamp.heartbeat_interval_seconds, 9);
    let rc = m.remote_config.unwrap();
    assert_eq!(rc.config_hash, vec![1, 2]);
    let f = &rc.config.unwrap().config_map["instgo.toml"];
    assert_eq!(
        (f.body.as_slice(), f.content_type.as_str()),
        (&b"sampling_ratio = 0.5\n"[..], "application/toml")
    );
    let e = msgs.next().unwrap().error_response.unwrap();
    assert_eq!(e.r#type, proto::ServerErrorResponseType::Unavailable as i32);
    assert_eq!(
        (
            e.error_message.as_str(),
            e.retry_info.unwrap().retry_after_nanoseconds
        ),
        ("busy", 5)
    );
}
