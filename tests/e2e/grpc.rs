//! tonic alone (examples/grpc: server and client in one process, no rules file): a CLIENT
//! span per call with the SERVER span under it, `rpc.*` attributes and status codes, and
//! the context in the metadata. The version matrix (tests/matrix.sh) runs the same test
//! against each tonic line the catalog claims (`INSTGO_GRPC_FEATURES`, `INSTGO_GRPC_PRECISE`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::receiver::{Receiver, Span};
use crate::{build_example, export_to, feature_args, lock, parent_of, pinned_copy, run, text};

fn example() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| pinned_copy("grpc", "INSTGO_GRPC_PRECISE"))
        .clone()
}

fn build(instrumented: bool) -> PathBuf {
    build_example(
        &example(),
        "grpcdemo",
        instrumented,
        &feature_args("INSTGO_GRPC_FEATURES"),
    )
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

#[test]
fn tonic_client_and_server_spans_with_status_codes_and_metadata_propagation() {
    let _l = lock();
    let plain = build(false);
    let inst = build(true);
    let rx = Receiver::start();
    let p = run(&mut Command::new(&plain));
    let i = run(export_to(&mut Command::new(&inst), &rx.endpoint));
    assert!(p.status.success(), "{}", text(&p.stderr));
    assert!(i.status.success(), "{}", text(&i.stderr));
    let (p, i) = (text(&p.stdout), text(&i.stdout));
    let answers = "widget: Ok(41)\ngadget: NotFound no item \"gadget\"\n";
    assert_eq!(p, format!("{answers}context reached the server: false\n"));
    assert_eq!(i, format!("{answers}context reached the server: true\n"));

    let spans = rx.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|x| x.kind == SERVER).count() >= 3
            && s.iter().filter(|x| x.kind == CLIENT).count() >= 3
    });
    let clients: Vec<&Span> = spans.iter().filter(|s| s.kind == CLIENT).collect();
    let servers: Vec<&Span> = spans.iter().filter(|s| s.kind == SERVER).collect();
    // One of each per call: the unary call's inner streaming calls make none.
    assert_eq!((clients.len(), servers.len()), (3, 3), "{spans:#?}");
    for s in clients.iter().chain(&servers) {
        assert_eq!(s.name, "demo.Stock/Reserve");
        assert_eq!(s.attr("rpc.system"), Some("grpc"));
        assert_eq!(s.attr("rpc.service"), Some("demo.Stock"));
        assert_eq!(s.attr("rpc.method"), Some("Reserve"));
    }
    for server in &servers {
        let client = parent_of(&spans, server).expect("the server span's parent");
        assert_eq!(client.kind, CLIENT);
        assert_eq!(client.trace_id, server.trace_id);
    }
    fn codes(of: &[&Span]) -> Vec<String> {
        let mut c: Vec<String> = of
            .iter()
            .map(|s| s.attr("rpc.grpc.status_code").unwrap_or("-").to_string())
            .collect();
        c.sort();
        c
    }
    assert_eq!(codes(&clients), ["0", "0", "5"]);
    assert_eq!(codes(&servers), ["0", "0", "5"]);
    // NOT_FOUND fails the client's span, not the server's.
    let failed: Vec<&&Span> = clients.iter().filter(|s| s.status_code == 2).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attr("error.type"), Some("NOT_FOUND"));
    assert!(servers.iter().all(|s| s.status_code == 0));
}
