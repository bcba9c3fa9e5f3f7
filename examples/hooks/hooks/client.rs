// Compiled into the `hookdemo` crate as a module: it names the crate's own types.
use crate::{Request, Response};
use instgo_runtime::hook::CallContext;

pub fn enter(call: &mut CallContext, req: &mut Request) {
    call.set_attribute("url.path", req.path.clone());
    // The headers that leave with the request carry this span's context.
    call.inject(|k, v| {
        req.headers.insert(k.to_string(), v.to_string());
    });
    call.insert("path", req.path.clone());
}

pub fn exit(call: &mut CallContext, ret: &Result<Response, String>) {
    if let Ok(r) = ret {
        call.set_attribute("http.response.status_code", i64::from(r.status));
        if r.status >= 500 {
            let path: String = call.remove("path").unwrap_or_default();
            call.set_error(format!("{path} answered {}", r.status));
        }
    }
}
