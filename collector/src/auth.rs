//! The bearer token: required on every request once configured, and what lets the
//! collector serve addresses other than loopback.
//!
//! HTTP (receiver, API) takes `Authorization: Bearer TOKEN`; a browser opens the viewer
//! once with `/?token=TOKEN`, which sets an HttpOnly cookie and redirects to `/`. gRPC
//! takes the same `authorization` metadata. Anything else is 401 (UNAUTHENTICATED).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const COOKIE: &str = "instgo_token";

/// Equal in time whatever the first difference: the token is a secret.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `headers` carry `token` (as a bearer token, or the viewer's cookie).
pub fn allowed(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), token.as_bytes()));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|t| same(t.as_bytes(), token.as_bytes()));
    bearer || cookie
}

/// The axum middleware: lets a request through only with the token.
pub async fn require(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    if allowed(req.headers(), &token) {
        return next.run(req).await;
    }
    // The viewer's way in: `/?token=…` once, then the cookie.
    let given = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_string)
    });
    if req.uri().path() == "/" {
        if let Some(t) = given.filter(|t| same(t.as_bytes(), token.as_bytes())) {
            let cookie = format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this collector needs its token: Authorization: Bearer TOKEN (for OTLP senders, \
         OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20TOKEN; for the viewer, open /?token=TOKEN)\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_cookie() {
        let mut h = HeaderMap::new();
        assert!(!allowed(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(allowed(&h, "s3cret"));
        assert!(!allowed(&h, "s3cre"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; instgo_token=s3cret"),
        );
        assert!(allowed(&h, "s3cret"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("instgo_token=wrong"),
        );
        assert!(!allowed(&h, "s3cret"));
    }
}
