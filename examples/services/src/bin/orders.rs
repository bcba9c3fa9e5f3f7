//! The orders service (actix-web): `POST /orders/{item}` reserves the item with the
//! inventory service over gRPC, from a spawned task, on `ORDERS_PORT`.

use actix_web::{post, web, App, HttpResponse, HttpServer};
use services::inventory::InventoryClient;

#[post("/orders/{item}")]
async fn order(item: web::Path<String>, inventory: web::Data<InventoryClient>) -> HttpResponse {
    let mut client = inventory.get_ref().clone();
    // Background work in a task of its own: it continues the request's trace.
    let reserved = tokio::spawn(async move { client.reserve(&item, 1).await }).await;
    match reserved {
        Ok(Ok(reply)) => HttpResponse::Created().body(format!("reserved, {} left", reply.left)),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
            HttpResponse::NotFound().body(status.message().to_string())
        }
        Ok(Err(status)) => HttpResponse::BadGateway().body(status.message().to_string()),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let inventory = std::env::var("INVENTORY_URL").expect("INVENTORY_URL");
    let channel = tonic::transport::Channel::from_shared(inventory)
        .unwrap()
        .connect_lazy();
    let client = web::Data::new(InventoryClient::new(channel));
    let listener = services::listen("ORDERS_PORT");
    HttpServer::new(move || App::new().app_data(client.clone()).service(order))
        .workers(1)
        .listen(listener)?
        .run()
        .await
}
