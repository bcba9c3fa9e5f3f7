//! Many short calls, fast: what a busy service does to the export queue when the collector
//! is slow or gone. Prints a checksum; its peak memory goes to stderr.

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(rt_work::tick(i));
    }
    println!("flood: {n} calls, checksum {acc}");
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
            eprintln!("flood: {l}");
        }
    }
}
