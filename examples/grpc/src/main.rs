//! `demo.Stock/Reserve` served and called by tonic in one process, with the service glue
//! tonic-build would generate written by hand (no `protoc`): built with
//! `cargo instrument build` and no rules file, each call is a CLIENT span with the SERVER
//! span under it. Prints what it got, the same plain or instrumented.

#[cfg(any(feature = "tonic012", feature = "tonic013"))]
extern crate prost013 as prost;
#[cfg(feature = "tonic012")]
extern crate tonic012 as tonic;
#[cfg(feature = "tonic013")]
extern crate tonic013 as tonic;

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::codegen::{http, BoxFuture, Service};

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReserveRequest {
    #[prost(string, tag = "1")]
    pub item: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReserveReply {
    #[prost(uint32, tag = "1")]
    pub left: u32,
}

const RESERVE: &str = "/demo.Stock/Reserve";

// What differs between the tonic lines.
#[cfg(feature = "tonic012")]
type ResBody = tonic::body::BoxBody;
#[cfg(not(feature = "tonic012"))]
type ResBody = tonic::body::Body;

#[cfg(feature = "tonic012")]
fn empty() -> ResBody {
    tonic::body::empty_body()
}
#[cfg(not(feature = "tonic012"))]
fn empty() -> ResBody {
    ResBody::default()
}

#[cfg(feature = "tonic014")]
fn codec<T, U>() -> tonic_prost::ProstCodec<T, U> {
    tonic_prost::ProstCodec::default()
}
#[cfg(not(feature = "tonic014"))]
fn codec<T, U>() -> tonic::codec::ProstCodec<T, U> {
    tonic::codec::ProstCodec::default()
}

#[derive(Clone)]
struct StockServer;

impl tonic::server::NamedService for StockServer {
    const NAME: &'static str = "demo.Stock";
}

struct Reserve;

impl tonic::server::UnaryService<ReserveRequest> for Reserve {
    type Response = ReserveReply;
    type Future = BoxFuture<tonic::Response<ReserveReply>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ReserveRequest>) -> Self::Future {
        Box::pin(async move {
            let seen = request.metadata().contains_key("traceparent");
            match request.into_inner().item.as_str() {
                "widget" => Ok(tonic::Response::new(ReserveReply { left: 41 })),
                // Tells the program whether the context reached the server.
                "probe" => Ok(tonic::Response::new(ReserveReply { left: u32::from(seen) })),
                other => Err(tonic::Status::not_found(format!("no item {other:?}"))),
            }
        })
    }
}

impl<B> Service<http::Request<B>> for StockServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != RESERVE {
            return Box::pin(async {
                let mut res = http::Response::new(empty());
                let headers = res.headers_mut();
                headers.insert("grpc-status", http::HeaderValue::from_static("12"));
                headers.insert(
                    "content-type",
                    http::HeaderValue::from_static("application/grpc"),
                );
                Ok(res)
            });
        }
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(codec());
            Ok(grpc.unary(Reserve, req).await)
        })
    }
}

async fn reserve(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    item: &str,
) -> Result<u32, tonic::Status> {
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let req = tonic::Request::new(ReserveRequest {
        item: item.to_string(),
    });
    let path = http::uri::PathAndQuery::from_static(RESERVE);
    let res = grpc.unary(req, path, codec::<ReserveRequest, ReserveReply>()).await?;
    Ok(res.into_inner().left)
}

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(StockServer)
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    println!("widget: {:?}", reserve(&mut grpc, "widget").await);
    match reserve(&mut grpc, "gadget").await {
        Err(status) => println!("gadget: {:?} {}", status.code(), status.message()),
        Ok(left) => println!("gadget: unexpected {left}"),
    }
    // 1 when the server saw a `traceparent` (instrumented), 0 otherwise.
    let seen = reserve(&mut grpc, "probe").await.unwrap();
    println!("context reached the server: {}", seen == 1);
}
