//! `inventory.Inventory/Reserve`, by hand (see lib.rs).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::{http, BoxFuture, Service};

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReserveRequest {
    #[prost(string, tag = "1")]
    pub item: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReserveReply {
    #[prost(uint32, tag = "1")]
    pub left: u32,
}

const RESERVE: &str = "/inventory.Inventory/Reserve";

/// The server: a stock of one item kind, `widget`.
#[derive(Clone, Default)]
pub struct InventoryServer {
    stock: Arc<AtomicU32>,
}

impl InventoryServer {
    pub fn new(widgets: u32) -> Self {
        InventoryServer {
            stock: Arc::new(AtomicU32::new(widgets)),
        }
    }
}

impl tonic::server::NamedService for InventoryServer {
    const NAME: &'static str = "inventory.Inventory";
}

#[derive(Clone)]
struct Reserve(Arc<AtomicU32>);

impl tonic::server::UnaryService<ReserveRequest> for Reserve {
    type Response = ReserveReply;
    type Future = BoxFuture<tonic::Response<ReserveReply>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ReserveRequest>) -> Self::Future {
        let stock = self.0.clone();
        Box::pin(async move {
            let req = request.into_inner();
            if req.item != "widget" {
                return Err(tonic::Status::not_found(format!("no item {:?}", req.item)));
            }
            let taken = stock.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                s.checked_sub(req.quantity)
            });
            match taken {
                Ok(before) => Ok(tonic::Response::new(ReserveReply {
                    left: before - req.quantity,
                })),
                Err(_) => Err(tonic::Status::resource_exhausted("out of stock")),
            }
        })
    }
}

impl<B> Service<http::Request<B>> for InventoryServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != RESERVE {
            return Box::pin(async {
                let mut res = http::Response::new(tonic::body::Body::default());
                let headers = res.headers_mut();
                headers.insert("grpc-status", http::HeaderValue::from_static("12"));
                headers.insert(
                    "content-type",
                    http::HeaderValue::from_static("application/grpc"),
                );
                Ok(res)
            });
        }
        let method = Reserve(self.stock.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// The client.
#[derive(Clone)]
pub struct InventoryClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl InventoryClient {
    pub fn new(channel: tonic::transport::Channel) -> Self {
        InventoryClient {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    pub async fn reserve(
        &mut self,
        item: &str,
        quantity: u32,
    ) -> Result<ReserveReply, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let req = tonic::Request::new(ReserveRequest {
            item: item.to_string(),
            quantity,
        });
        let path = http::uri::PathAndQuery::from_static(RESERVE);
        let res = self
            .grpc
            .unary(req, path, tonic_prost::ProstCodec::default())
            .await?;
        Ok(res.into_inner())
    }
}
