/// The sum of `xs`, one scoped thread per element.
pub fn sum_in_threads(xs: &[u32]) -> u32 {
    std::thread::scope(|s| {
        let parts: Vec<_> = xs.iter().map(|x| s.spawn(move || *x)).collect();
        parts.into_iter().map(|p| p.join().unwrap()).sum()
    })
}
