#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("tokio current-thread: {}", rt_work::handle(10).await);
}
