#[tokio::main]
async fn main() {
    println!("tokio multi-thread: {}", rt_work::handle(1).await);
}
