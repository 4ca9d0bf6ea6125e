//! What this server implements. The validator rejects anything valid but outside the
//! capability set with [`crate::NccoErrorKind::NotImplemented`], so an application never has
//! an action or field silently ignored while the server grows.

use std::collections::BTreeSet;

use crate::action::ACTION_NAMES;

/// The actions, fields and enumerated values this server implements.
///
/// Fields are named by their path inside the action with array indices dropped and dots
/// between levels: `"beepStart"`, `"dtmf.submitOnHash"`, `"endpoint.headers"`,
/// `"advancedMachineDetection.beep_timeout"`. Values are the JSON strings of enumerated
/// fields: `without_value("record", "format", "mp3")`,
/// `without_value("connect", "endpoint.type", "websocket")`.
///
/// Things the crate does not model at all (input `speech`, talk `voiceName`, the `transfer`
/// and `pay` actions, `vbc` endpoints, …) are rejected as not implemented whatever the
/// capabilities say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    actions: BTreeSet<String>,
    disabled_fields: BTreeSet<(String, String)>,
    disabled_values: BTreeSet<(String, String, String)>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::all()
    }
}

impl Capabilities {
    /// Everything the crate models: all eight actions with all their fields.
    pub fn all() -> Self {
        Self {
            actions: ACTION_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            disabled_fields: BTreeSet::new(),
            disabled_values: BTreeSet::new(),
        }
    }

    /// Only the named actions, with all their fields. Names that are not NCCO actions are
    /// ignored.
    pub fn only_actions(actions: &[&str]) -> Self {
        Self {
            actions: actions
                .iter()
                .filter(|a| ACTION_NAMES.contains(a))
                .map(|s| (*s).to_owned())
                .collect(),
            disabled_fields: BTreeSet::new(),
            disabled_values: BTreeSet::new(),
        }
    }

    /// The same set without `action`.
    pub fn without_action(mut self, action: &str) -> Self {
        self.actions.remove(action);
        self
    }

    /// The same set where `field` of `action` is not implemented: an NCCO that sets it at all
    /// (even to its default) is rejected.
    pub fn without_field(mut self, action: &str, field: &str) -> Self {
        self.disabled_fields
            .insert((action.to_owned(), field.to_owned()));
        self
    }

    /// The same set where the enumerated `field` of `action` may not take `value`.
    pub fn without_value(mut self, action: &str, field: &str, value: &str) -> Self {
        self.disabled_values
            .insert((action.to_owned(), field.to_owned(), value.to_owned()));
        self
    }

    /// Whether the server implements `action`.
    pub fn allows_action(&self, action: &str) -> bool {
        self.actions.contains(action)
    }

    /// Whether the server implements `field` (dotted, no indices) of `action`.
    pub fn allows_field(&self, action: &str, field: &str) -> bool {
        !self
            .disabled_fields
            .contains(&(action.to_owned(), field.to_owned()))
    }

    /// Whether the server implements `value` for the enumerated `field` of `action`.
    pub fn allows_value(&self, action: &str, field: &str, value: &str) -> bool {
        !self
            .disabled_values
            .contains(&(action.to_owned(), field.to_owned(), value.to_owned()))
    }

    /// The implemented actions, in name order.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(String::as_str)
    }
}
