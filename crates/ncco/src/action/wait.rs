//! `wait`: pause the NCCO for a number of seconds.

use std::time::Duration;

use serde::Serialize;

use crate::error::NccoError;
use crate::validate::{Obj, Spec, Validator};

/// The `wait` action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wait {
    /// Seconds, 0.1–7200; default 10.
    pub timeout: f64,
}

/// Default `timeout` in seconds.
const DEFAULT_TIMEOUT: f64 = 10.0;
/// Range of `timeout` in seconds.
pub(crate) const TIMEOUT_RANGE: (f64, f64) = (0.1, 7200.0);

impl Default for Wait {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Wait {
    /// The pause, clamped into 0.1–7200 s so a hand-built value cannot be negative or NaN.
    pub fn duration(&self) -> Duration {
        let secs = if self.timeout.is_nan() {
            DEFAULT_TIMEOUT
        } else {
            self.timeout.clamp(TIMEOUT_RANGE.0, TIMEOUT_RANGE.1)
        };
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(10))
    }
}

const SPEC: Spec = Spec {
    fields: &["action", "timeout"],
    unsupported: &[],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Wait, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let mut w = Wait::default();
    if let Some(f) = obj.get(v, "timeout") {
        w.timeout = f.number(TIMEOUT_RANGE.0, TIMEOUT_RANGE.1)?;
    }
    Ok(w)
}
