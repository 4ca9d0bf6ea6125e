//! The validated NCCO document and the built-in default.

use serde::Serialize;

use crate::action::{Action, Record, Split, Wait};

/// A validated NCCO: the actions to run, in order. Build one with [`crate::parse_ncco`] (or
/// by hand); serialise it back to the hosted API's JSON with [`Ncco::to_json`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Ncco {
    /// The actions, in execution order.
    pub actions: Vec<Action>,
}

impl Ncco {
    /// The NCCO as a JSON value in the hosted API's shape, defaults made explicit.
    pub fn to_json(&self) -> serde_json::Value {
        // Serialising these plain types to a Value cannot fail (all map keys are strings).
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The NCCO as compact JSON bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The NCCO callmux runs when none is configured:
/// `[{"action":"record","split":"conversation"},{"action":"wait","timeout":7200}]` — one
/// asynchronous wav recording, caller-sent audio left and caller-heard audio right, running
/// until the caller hangs up.
///
/// The `wait` is what keeps the call up: an NCCO whose actions run out hangs up (as on the
/// hosted API), so `[record]` alone would end the call at once. 7200 s is also the
/// recording's own `timeOut` limit.
pub fn default_ncco() -> Ncco {
    Ncco {
        actions: vec![
            Action::Record(Record {
                split: Some(Split::Conversation),
                ..Record::default()
            }),
            Action::Wait(Wait { timeout: 7200.0 }),
        ],
    }
}
