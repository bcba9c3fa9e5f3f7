//! The inventory service (tonic): `inventory.Inventory/Reserve` on `INVENTORY_PORT`.

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::from_std(services::listen("INVENTORY_PORT")).unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(services::inventory::InventoryServer::new(100))
        .serve_with_incoming(incoming)
        .await
        .unwrap();
}
