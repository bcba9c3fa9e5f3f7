use crate::{Request, Response};
use instgo_runtime::hook::CallContext;
use instgo_runtime::{metrics, KeyValue};

pub fn enter(call: &mut CallContext, req: &Request) {
    // The client's span becomes this span's parent, as if across processes.
    call.extract(|k| req.headers.get(k).cloned());
    let route = if req.path.starts_with("/orders/") { "/orders/{id}" } else { "unmatched" };
    call.set_name(format!("GET {route}"));
    call.set_attribute("http.route", route);
    call.insert("route", route);
}

pub fn exit(call: &mut CallContext, ret: &Response) {
    call.set_attribute("http.response.status_code", i64::from(ret.status));
    call.set_attribute("response.summary", ret.describe());
    let route: Option<&&str> = call.get("route");
    metrics::http_server_duration().record_duration(
        call.elapsed(),
        &[
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", route.copied().unwrap_or("unmatched")),
            KeyValue::new("http.response.status_code", i64::from(ret.status)),
        ],
    );
    if ret.status >= 500 {
        let message = format!("{} failed", route.copied().unwrap_or("?"));
        call.set_error(message);
    }
}
