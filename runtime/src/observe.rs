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

/// Everything else: nothing to record.
pub trait ObserveAny {
    #[allow(missing_docs)]
    fn __instgo_observe<R: Record>(&self, call: &R);
}

impl<T> ObserveAny for Observe<'_, T> {
    #[inline(always)]
    fn __instgo_observe<R: Record>(&self, _call: &R) {}
}
