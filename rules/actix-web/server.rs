// Compiled as a module of actix-web.

use instgo_runtime::hook::{self, CallContext, HookedAsyncCall, Kind, Site};
use instgo_runtime::http::{self as semconv, ServerRequest};

use crate::dev::{ServiceRequest, ServiceResponse};
use crate::Error;

/// The request's own span, started here and carried by the future `exit` wraps.
static SITE: Site = Site::hook("actix-web", "HTTP", Kind::Server);

const STARTED: &str = "actix-web.server";

pub fn enter(call: &mut CallContext, req: &ServiceRequest) {
    let started = hook::start(&SITE, |server| {
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let info = req.connection_info();
        let version = format!("{:?}", req.version());
        let request = ServerRequest {
            method: req.method().as_str(),
            scheme: info.scheme(),
            path: req.path(),
            query: Some(req.query_string()),
            route: None,
            host: Some(info.host()),
            version: &version,
            user_agent: header("user-agent"),
        };
        semconv::server_enter(server, &request, |name| header(name).map(str::to_string));
    });
    call.insert(STARTED, started);
}

type Routed = futures_core::future::LocalBoxFuture<
    'static,
    Result<ServiceResponse<crate::body::BoxBody>, Error>,
>;

pub fn exit(call: &mut CallContext, ret: &mut Routed) {
    let Some(started) = call.remove::<HookedAsyncCall>(STARTED) else {
        return;
    };
    let routed = std::mem::replace(ret, Box::pin(std::future::pending()));
    *ret = Box::pin(started.returned(routed, Exit));
}

struct Exit;

impl hook::Done<HookedAsyncCall, Result<ServiceResponse<crate::body::BoxBody>, Error>> for Exit {
    fn done(
        self,
        call: &HookedAsyncCall,
        out: &Result<ServiceResponse<crate::body::BoxBody>, Error>,
    ) {
        call.exit(|server| match out {
            Ok(res) => {
                if let Some(route) = res.request().match_pattern() {
                    semconv::server_route(server, &route);
                }
                semconv::server_exit(server, res.status().as_u16());
            }
            Err(e) => {
                semconv::server_exit(server, e.as_response_error().status_code().as_u16())
            }
        });
    }
}
