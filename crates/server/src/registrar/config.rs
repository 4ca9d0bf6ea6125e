//! `[registrar]` in the config file: expiry limits of registrations and the keep-alive
//! interval for phones behind NAT.

use std::time::Duration;

use callmux_sip::registrar::ExpiryLimits;
use serde::{Deserialize, Serialize};

/// `[registrar]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegistrarSection {
    /// Shorter (non-zero) registrations get 423 Interval Too Brief.
    pub min_expires_s: u32,
    /// Longer ones are shortened to this.
    pub max_expires_s: u32,
    /// When the REGISTER names no expiry.
    pub default_expires_s: u32,
    /// Seconds between OPTIONS keep-alives to phones registered from behind NAT
    /// (0 = none).
    pub keepalive_s: u64,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        Self {
            min_expires_s: 60,
            max_expires_s: 3600,
            default_expires_s: 3600,
            keepalive_s: 25,
        }
    }
}

/// The resolved `[registrar]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegistrarSettings {
    /// Expiry limits.
    pub(crate) limits: ExpiryLimits,
    /// Keep-alive interval, if any.
    pub(crate) keepalive: Option<Duration>,
}

impl RegistrarSection {
    /// Checks the limits; the error names the key and the rule.
    pub(crate) fn resolve(&self) -> Result<RegistrarSettings, (&'static str, String)> {
        if self.min_expires_s == 0 {
            return Err(("registrar.min_expires_s", "must be at least 1".into()));
        }
        if self.max_expires_s < self.min_expires_s {
            return Err((
                "registrar.max_expires_s",
                format!(
                    "must be at least min_expires_s ({}), got {}",
                    self.min_expires_s, self.max_expires_s
                ),
            ));
        }
        if !(self.min_expires_s..=self.max_expires_s).contains(&self.default_expires_s) {
            return Err((
                "registrar.default_expires_s",
                format!(
                    "must be between min_expires_s and max_expires_s ({}..={}), got {}",
                    self.min_expires_s, self.max_expires_s, self.default_expires_s
                ),
            ));
        }
        if self.keepalive_s > 3600 {
            return Err((
                "registrar.keepalive_s",
                format!("must be 0 (off) to 3600, got {}", self.keepalive_s),
            ));
        }
        Ok(RegistrarSettings {
            limits: ExpiryLimits {
                min: self.min_expires_s,
                max: self.max_expires_s,
                default: self.default_expires_s,
            },
            keepalive: (self.keepalive_s > 0).then(|| Duration::from_secs(self.keepalive_s)),
        })
    }
}

impl Default for RegistrarSettings {
    fn default() -> Self {
        RegistrarSection::default().resolve().unwrap_or(Self {
            limits: ExpiryLimits::default(),
            keepalive: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_and_bad_limits_are_named() {
        let d = RegistrarSettings::default();
        assert_eq!(d.limits.min, 60);
        assert_eq!(d.keepalive, Some(Duration::from_secs(25)));
        let bad = |f: fn(&mut RegistrarSection)| {
            let mut s = RegistrarSection::default();
            f(&mut s);
            s.resolve().unwrap_err().0
        };
        assert_eq!(bad(|s| s.min_expires_s = 0), "registrar.min_expires_s");
        assert_eq!(bad(|s| s.max_expires_s = 10), "registrar.max_expires_s");
        assert_eq!(
            bad(|s| s.default_expires_s = 5000),
            "registrar.default_expires_s"
        );
        assert_eq!(bad(|s| s.keepalive_s = 5000), "registrar.keepalive_s");
        let off = RegistrarSection {
            keepalive_s: 0,
            ..RegistrarSection::default()
        };
        assert_eq!(off.resolve().unwrap().keepalive, None);
    }
}
