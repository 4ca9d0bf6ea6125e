//! A registrar's binding table (RFC 3261 §10.3), sans-IO: REGISTERs are applied to it with
//! the wall-clock time as an argument, and it answers which contacts an address-of-record
//! has now. Authentication, persistence and sockets are the driver's business.
//!
//! Rules implemented:
//! - expiry per contact: its `expires` parameter, else the Expires header, else the
//!   configured default; `0` removes; below the minimum → 423 with `Min-Expires`; above the
//!   maximum → shortened to the maximum;
//! - ordering: a contact already bound with the same Call-ID and a CSeq not higher than the
//!   stored one refuses the whole request (500, §10.3 step 7); another Call-ID replaces it;
//! - `Contact: *` with `Expires: 0` removes every binding (same ordering rule);
//! - a REGISTER without Contact changes nothing (a query);
//! - a request is applied whole or not at all.
//!
//! Every binding also keeps where the REGISTER came from (transport and source address):
//! a phone behind NAT is reached there, not at the private address of its Contact.

mod request;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::endpoint::TransportKind;
use crate::uri::Uri;

pub use request::{contact_key, ContactEntry, Contacts, RegisterRequest, MAX_CONTACTS};

/// Why a REGISTER cannot be applied; each maps to one response status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Malformed Contact, Expires, To or CSeq (400).
    #[error("malformed REGISTER: {0}")]
    Malformed(String),
    /// A non-zero expiry below the minimum (423 Interval Too Brief, `Min-Expires`).
    #[error("expiry below the minimum of {min_expires} s")]
    IntervalTooBrief {
        /// The minimum, for `Min-Expires`.
        min_expires: u32,
    },
    /// Same Call-ID with a CSeq not above the stored one: out of order or replayed (500).
    #[error("REGISTER out of order (CSeq not above the binding's)")]
    OutOfOrder,
    /// More contacts than one AOR may have (403).
    #[error("more than {max} contacts for one user")]
    TooManyContacts {
        /// The limit.
        max: usize,
    },
}

impl RegisterError {
    /// The response status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::IntervalTooBrief { .. } => 423,
            Self::OutOfOrder => 500,
            Self::TooManyContacts { .. } => 403,
        }
    }
}

/// Expiry limits, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryLimits {
    /// Shorter non-zero expiries get 423.
    pub min: u32,
    /// Longer ones are shortened to this.
    pub max: u32,
    /// When neither the contact nor the request says.
    pub default: u32,
}

impl Default for ExpiryLimits {
    fn default() -> Self {
        Self {
            min: 60,
            max: 3600,
            default: 3600,
        }
    }
}

/// Where a REGISTER came from: requests to the binding go there (NAT traversal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Transport of the REGISTER.
    pub transport: TransportKind,
    /// Its source address and port.
    pub addr: SocketAddr,
}

/// One contact bound to an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI the phone registered.
    pub contact: Uri,
    /// Preference (`q` in thousandths); absent = no preference.
    pub q: Option<u16>,
    /// When the binding lapses.
    pub expires_at: SystemTime,
    /// Call-ID of the REGISTER that made or refreshed it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Where that REGISTER came from.
    pub source: Source,
}

impl Binding {
    /// Seconds left at `now` (0 once lapsed).
    pub fn remaining(&self, now: SystemTime) -> u32 {
        let left = self.expires_at.duration_since(now).unwrap_or_default();
        // Round up so that a binding alive now never reports 0.
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// Whether it is still valid at `now`.
    pub fn is_live(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }
}

/// What applying a REGISTER did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// New bindings.
    pub added: usize,
    /// Bindings whose expiry or source was updated.
    pub refreshed: usize,
    /// Bindings removed (expires=0 or wildcard).
    pub removed: usize,
}

impl Applied {
    /// Whether the table changed (and must be persisted).
    pub fn changed(&self) -> bool {
        self.added + self.refreshed + self.removed > 0
    }
}

/// Bindings of every address-of-record (keyed by the caller's AOR string, e.g. the user
/// name).
#[derive(Debug, Clone, Default)]
pub struct BindingTable {
    limits: ExpiryLimits,
    aors: BTreeMap<String, Vec<Binding>>,
}

impl BindingTable {
    /// An empty table with these limits.
    pub fn new(limits: ExpiryLimits) -> Self {
        Self {
            limits,
            aors: BTreeMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ExpiryLimits {
        self.limits
    }

    /// Puts back a binding loaded from storage (lapsed ones are dropped).
    pub fn restore(&mut self, aor: &str, binding: Binding, now: SystemTime) {
        if !binding.is_live(now) {
            return;
        }
        let list = self.aors.entry(aor.to_owned()).or_default();
        let key = contact_key(&binding.contact);
        list.retain(|b| contact_key(&b.contact) != key);
        if list.len() < MAX_CONTACTS {
            list.push(binding);
        }
    }

    /// Applies a REGISTER for `aor` received from `source` at `now`. Lapsed bindings of the
    /// AOR are dropped first, so their Call-ID/CSeq no longer constrain anything.
    pub fn apply(
        &mut self,
        aor: &str,
        request: &RegisterRequest,
        source: Source,
        now: SystemTime,
    ) -> Result<Applied, RegisterError> {
        let mut list = self.aors.get(aor).cloned().unwrap_or_default();
        list.retain(|b| b.is_live(now));
        let out_of_order = |b: &Binding| b.call_id == request.call_id && request.cseq <= b.cseq;
        let mut applied = Applied::default();
        match &request.contacts {
            Contacts::Query => return Ok(applied),
            Contacts::Wildcard => {
                if list.iter().any(out_of_order) {
                    return Err(RegisterError::OutOfOrder);
                }
                applied.removed = list.len();
                list.clear();
            }
            Contacts::List(entries) => {
                // Check everything before changing anything.
                let mut plan = Vec::with_capacity(entries.len());
                for e in entries {
                    let secs = e.expires.or(request.expires).unwrap_or(self.limits.default);
                    if secs != 0 && secs < self.limits.min {
                        return Err(RegisterError::IntervalTooBrief {
                            min_expires: self.limits.min,
                        });
                    }
                    let key = contact_key(&e.uri);
                    let existing = list.iter().position(|b| contact_key(&b.contact) == key);
                    if existing.is_some_and(|i| list.get(i).is_some_and(out_of_order)) {
                        return Err(RegisterError::OutOfOrder);
                    }
                    plan.push((e, key, secs.min(self.limits.max)));
                }
                for (e, key, secs) in plan {
                    let existing = list.iter().position(|b| contact_key(&b.contact) == key);
                    if secs == 0 {
                        if let Some(i) = existing {
                            list.remove(i);
                            applied.removed += 1;
                        }
                        continue;
                    }
                    let binding = Binding {
                        contact: e.uri.clone(),
                        q: e.q,
                        expires_at: now + Duration::from_secs(u64::from(secs)),
                        call_id: request.call_id.clone(),
                        cseq: request.cseq,
                        source,
                    };
                    match existing.and_then(|i| list.get_mut(i)) {
                        Some(slot) => {
                            *slot = binding;
                            applied.refreshed += 1;
                        }
                        None => {
                            list.push(binding);
                            applied.added += 1;
                        }
                    }
                }
                if list.len() > MAX_CONTACTS {
                    return Err(RegisterError::TooManyContacts { max: MAX_CONTACTS });
                }
            }
        }
        if list.is_empty() {
            self.aors.remove(aor);
        } else {
            self.aors.insert(aor.to_owned(), list);
        }
        Ok(applied)
    }

    /// The live bindings of `aor`, most preferred first (higher `q`; no `q` counts as 1).
    pub fn lookup(&self, aor: &str, now: SystemTime) -> Vec<Binding> {
        let mut v: Vec<Binding> = self
            .aors
            .get(aor)
            .map(|l| l.iter().filter(|b| b.is_live(now)).cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
        v
    }

    /// Removes lapsed bindings; returns the AORs that lost some (to persist).
    pub fn expire(&mut self, now: SystemTime) -> Vec<String> {
        let mut touched = Vec::new();
        self.aors.retain(|aor, list| {
            let before = list.len();
            list.retain(|b| b.is_live(now));
            if list.len() != before {
                touched.push(aor.clone());
            }
            !list.is_empty()
        });
        touched
    }

    /// When the next binding lapses.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.aors.values().flatten().map(|b| b.expires_at).min()
    }

    /// Every AOR with its live bindings (for keep-alives and persistence).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Binding])> {
        self.aors.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Number of bindings (lapsed ones not yet expired included).
    pub fn len(&self) -> usize {
        self.aors.values().map(Vec::len).sum()
    }

    /// Whether there are no bindings.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }
}

#[cfg(test)]
mod tests;
