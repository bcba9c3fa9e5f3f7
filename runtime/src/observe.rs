//! Recording a call's outcome from the value it returns, chosen at compile time.
//!
//! Injected code writes `(&&&Observe(&value)).__instgo_observe(&call)` with all three
//! traits in scope. Method lookup tries the receiver `&&&Observe<T>` first, then one
//! reference less, and so on ("autoref specialization"): a `Result` whose error type is
//! `Display` takes the first impl, one whose error is only `Debug` the second, anything
//! else the no-op. Generic or unknown types fall through to the no-op, so the injected
//! code compiles for every return type.

use std::fmt::{Debug, Display};

use crate::call::Record;

/// A borrowed return value (or `?` operand) being looked at.
pub struct Observe<'a, T>(pub &'a T);

/// `Result<_, E: Display>`: an `Err` sets status ERROR with the error's Display.
pub trait ObserveErrDisplay {
    #[allow(missing_docs)]
    fn __instgo_observe<R: Record>(&self, call: &R);
}

impl<T, E: Display> ObserveErrDisplay for &&Observe<'_, Result<T, E>> {
    #[inline]
    fn __instgo_observe<R: Record>(&self, call: &R) {
        if let Err(e) = self.0 {
            if call.context().is_some() {
                call.record_error(&e.to_string(), std::any::type_name::<E>());
            }
        }
    }
}

/// `Result<_, E: Debug>` where `E` is not `Display`: the message is the Debug form.
pub trait ObserveErrDebug {
    #[allow(missing_docs)]
    fn __instgo_observe<R: Record>(&self, call: &R);
}

impl<T, E: Debug> ObserveErrDebug for &Observe<'_, Result<T, E>> {
    #[inline]
    fn __instgo_observe<R: Record>(&self, call: &R) {
        if let Err(e) = self.0 {
            if call.context().is_some() {
                call.record_error(&format!("{e:?}"), std::any::type_name::<E>());
            }
        }
    }
}

/// `Result<_, E>` in generic code, where `E` may be a projection such as `Self::Item`:
/// asking whether it is `Debug` there is a hard error rather than a fallback, so the
/// injected code names only this trait and [`ObserveAny`] (`(&Observe(&v))...`), and the
/// message is the error's type.
pub trait ObserveErrPlain {
    #[allow(missing_docs)]
    fn __instgo_observe<R: Record>(&self, call: &R);
}

impl<T, E> ObserveErrPlain for &Observe<'_, Result<T, E>> {
    #[inline]
    fn __instgo_observe<R: Record>(&self, call: &R) {
        if self.0.is_err() && call.context().is_some() {
            let ty = std::any::type_name::<E>();
            call.record_error(ty, ty);
        }
    }
}

/// Everything else: nothing to record.
pub trait ObserveAny {
    #[allow(missing_docs)]
    fn __instgo_observe<R: Record>(&self, call: &R);
}

impl<T> ObserveAny for Observe<'_, T> {
    #[inline(always)]
    fn __instgo_observe<R: Record>(&self, _call: &R) {}
}

/// A borrowed argument whose value becomes a span attribute (`span.attributes` of a rule).
///
/// Same trick as [`Observe`]: `(&&&&AttrOf(&arg)).__instgo_attr()` picks the typed value
/// for numbers, booleans and strings, then `Display`, then `Debug`, else nothing.
pub struct AttrOf<'a, T: ?Sized>(pub &'a T);

/// Types that are attribute values as they are.
pub trait ToAttrValue {
    #[allow(missing_docs)]
    fn to_attr_value(&self) -> opentelemetry::Value;
}

macro_rules! int_attr {
    ($($t:ty),*) => {$(
        impl ToAttrValue for $t {
            fn to_attr_value(&self) -> opentelemetry::Value {
                match i64::try_from(*self) {
                    Ok(v) => opentelemetry::Value::I64(v),
                    Err(_) => opentelemetry::Value::String(self.to_string().into()),
                }
            }
        }
    )*};
}
int_attr!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl ToAttrValue for f32 {
    fn to_attr_value(&self) -> opentelemetry::Value {
        opentelemetry::Value::F64(f64::from(*self))
    }
}
impl ToAttrValue for f64 {
    fn to_attr_value(&self) -> opentelemetry::Value {
        opentelemetry::Value::F64(*self)
    }
}
impl ToAttrValue for bool {
    fn to_attr_value(&self) -> opentelemetry::Value {
        opentelemetry::Value::Bool(*self)
    }
}
impl ToAttrValue for str {
    fn to_attr_value(&self) -> opentelemetry::Value {
        opentelemetry::Value::String(self.to_string().into())
    }
}
impl ToAttrValue for String {
    fn to_attr_value(&self) -> opentelemetry::Value {
        opentelemetry::Value::String(self.clone().into())
    }
}
impl<T: ToAttrValue + ?Sized> ToAttrValue for &T {
    fn to_attr_value(&self) -> opentelemetry::Value {
        (**self).to_attr_value()
    }
}
impl<T: ToAttrValue + ?Sized> ToAttrValue for &mut T {
    fn to_attr_value(&self) -> opentelemetry::Value {
        (**self).to_attr_value()
    }
}

/// Level 1: typed values.
pub trait AttrTyped {
    #[allow(missing_docs)]
    fn __instgo_attr(&self) -> Option<opentelemetry::Value>;
}
impl<T: ToAttrValue + ?Sized> AttrTyped for &&&AttrOf<'_, T> {
    fn __instgo_attr(&self) -> Option<opentelemetry::Value> {
        Some(self.0.to_attr_value())
    }
}

/// Level 2: `Display`.
pub trait AttrDisplay {
    #[allow(missing_docs)]
    fn __instgo_attr(&self) -> Option<opentelemetry::Value>;
}
impl<T: Display + ?Sized> AttrDisplay for &&AttrOf<'_, T> {
    fn __instgo_attr(&self) -> Option<opentelemetry::Value> {
        Some(opentelemetry::Value::String(self.0.to_string().into()))
    }
}

/// Level 3: `Debug`.
pub trait AttrDebug {
    #[allow(missing_docs)]
    fn __instgo_attr(&self) -> Option<opentelemetry::Value>;
}
impl<T: Debug + ?Sized> AttrDebug for &AttrOf<'_, T> {
    fn __instgo_attr(&self) -> Option<opentelemetry::Value> {
        Some(opentelemetry::Value::String(format!("{:?}", self.0).into()))
    }
}

/// Anything else: no attribute.
pub trait AttrNone {
    #[allow(missing_docs)]
    fn __instgo_attr(&self) -> Option<opentelemetry::Value>;
}
impl<T: ?Sized> AttrNone for AttrOf<'_, T> {
    fn __instgo_attr(&self) -> Option<opentelemetry::Value> {
        None
    }
}
