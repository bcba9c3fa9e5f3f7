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
