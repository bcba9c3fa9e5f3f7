//! The shapes.

/// A shape.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A circle of radius `r`.
    Circle {
        /// Radius.
        r: f64,
    },
    /// A `w` by `h` rectangle.
    Rect {
        /// Width.
        w: f64,
        /// Height.
        h: f64,
    },
}

/// Things with an area.
pub trait Area {
    /// The area.
    fn area(&self) -> f64;
    /// A label; a default method.
    fn label(&self) -> String {
        format!("area {:.2}", self.area())
    }
}

impl Area for Shape {
    fn area(&self) -> f64 {
        match *self {
            Shape::Circle { r } => std::f64::consts::PI * r * r,
            Shape::Rect { w, h } => w * h,
        }
    }
}

impl Shape {
    /// Scales in place and returns the shape for chaining (`&mut self` → `&mut Self`).
    pub fn scale(&mut self, k: f64) -> &mut Self {
        match self {
            Shape::Circle { r } => *r *= k,
            Shape::Rect { w, h } => {
                *w *= k;
                *h *= k;
            }
        }
        self
    }

    /// A `const fn`: left alone (it may run at compile time).
    pub const fn unit() -> Shape {
        Shape::Rect { w: 1.0, h: 1.0 }
    }
}

/// Recursion, to show nesting.
pub fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// Bytes viewed as a `T`, in zerocopy's shape: the error is `Display` only for a `T` that
/// is [`Layout`], which the impl below does not require of its `T`.
pub struct View<T>(std::marker::PhantomData<T>);

/// Types with a known size.
pub trait Layout {
    /// The size.
    const SIZE: usize;
}

/// Too few bytes for a `T`.
pub struct SizeError<T>(std::marker::PhantomData<T>);

impl<T: Layout> std::fmt::Display for SizeError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fewer than {} bytes", T::SIZE)
    }
}

impl<T> View<T> {
    /// How many of `n` bytes there are for a view (`?` on a `Result<_, SizeError<T>>`).
    pub fn prefix(bytes: &[u8], n: usize) -> Result<usize, SizeError<T>> {
        let ok = Self::check(bytes.len() >= n)?;
        Ok(if ok { n } else { 0 })
    }

    fn check(ok: bool) -> Result<bool, SizeError<T>> {
        if ok {
            Ok(ok)
        } else {
            Err(SizeError(std::marker::PhantomData))
        }
    }
}

/// The bytes from `at` on, with a lint attribute on the tail expression, as zerovec
/// writes it.
pub fn rest(bytes: &mut [u8], at: usize) -> &mut [u8] {
    #[allow(clippy::indexing_slicing)]
    &mut bytes[at..]
}
