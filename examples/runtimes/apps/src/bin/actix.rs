#[actix_web::main]
async fn main() -> std::io::Result<()> {
    println!("actix: {}", rt_work::handle(20).await);
    Ok(())
}
