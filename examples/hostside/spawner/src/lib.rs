/// Twice `x`, computed on a thread of its own.
pub fn doubled(x: u32) -> u32 {
    std::thread::spawn(move || x * 2).join().unwrap()
}
