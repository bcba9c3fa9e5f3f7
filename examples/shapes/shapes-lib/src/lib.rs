//! Shapes, areas and a little async work: one of each function shape the rewriter handles.
#![deny(warnings, missing_docs)]
#![forbid(unsafe_code)]

pub mod geometry;
pub mod exec;

use std::fmt;

/// A parse error for shape specs.
#[derive(Debug)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad shape spec: {}", self.0)
    }
}

/// Parses `circle:R` or `rect:W:H`.
pub fn parse(spec: &str) -> Result<geometry::Shape, ParseError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let num = |s: &str| s.parse::<f64>().map_err(|_| ParseError(spec.to_string()));
    match parts.as_slice() {
        ["circle", r] => Ok(geometry::Shape::Circle { r: num(r)? }),
        ["rect", w, h] => Ok(geometry::Shape::Rect { w: num(w)?, h: num(h)? }),
        _ => return Err(ParseError(spec.to_string())),
    }
}

/// Sum of areas, through a generic and an `impl Trait` argument.
pub fn total_area<S: geometry::Area>(shapes: impl IntoIterator<Item = S>) -> f64 {
    shapes.into_iter().map(|s| s.area()).sum()
}

/// Squares of the areas, returned as `impl Iterator`.
pub fn squares(shapes: &[geometry::Shape]) -> impl Iterator<Item = f64> + '_ {
    shapes.iter().map(|s| geometry::Area::area(s) * geometry::Area::area(s))
}

/// Asynchronously measures each shape, yielding between them.
pub async fn measure_all(specs: Vec<String>) -> Result<f64, ParseError> {
    let mut sum = 0.0;
    for s in specs {
        exec::yield_now().await;
        let shape = parse(&s)?;
        sum += measure(shape).await;
    }
    Ok(sum)
}

async fn measure(shape: geometry::Shape) -> f64 {
    exec::yield_now().await;
    geometry::Area::area(&shape)
}

/// Panics with a message naming this file and line.
pub fn explode(what: &str) -> u32 {
    if what.is_empty() {
        return 0;
    }
    panic!("exploded: {what}")
}

/// Runs `f` on a new thread and returns its result.
pub fn on_thread(n: u64) -> u64 {
    std::thread::spawn(move || geometry::fib(n)).join().unwrap_or(0)
}

/// A hash of `bytes`, with `as_ref()` on a slice left to inference, as ureq 3 writes it.
/// Instrumented, this crate links the runtime's dependencies, whose impls take part in
/// inference here: winnow's `AsRef<Bytes> for [u8]` made this ambiguous (E0282).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.as_ref().hash(&mut h);
    h.finish()
}
