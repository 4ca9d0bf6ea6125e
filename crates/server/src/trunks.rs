//! SIP trunks: where `connect` sends `phone` endpoints. Each `[[trunk]]` has a URI template
//! (`sip:{number}@carrier.example:5060`), the numbers it carries (prefix patterns), the
//! caller ID to present, and digest credentials for carriers that challenge.

use serde::{Deserialize, Serialize};

/// One `[[trunk]]` entry of the config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrunkConfig {
    /// Name, for logs and events.
    pub(crate) name: String,
    /// Request-URI template; `{number}` is replaced by the dialled number.
    pub(crate) uri: String,
    /// Number patterns this trunk carries: a prefix followed by `*` (`"44*"`), an exact
    /// number, or `"*"` for everything. Empty = everything. Trunks are tried in file order.
    #[serde(default)]
    pub(crate) numbers: Vec<String>,
    /// Caller ID (From user) when the `connect` action gives no `from`.
    #[serde(default)]
    pub(crate) from: Option<String>,
    /// Digest user name for 401/407 challenges.
    #[serde(default)]
    pub(crate) username: Option<String>,
    /// Digest password.
    #[serde(default)]
    pub(crate) password: Option<String>,
    /// Addresses (CIDR blocks) the trunk sends INVITEs from: they pass the source ACL and
    /// are trusted without digest authentication or rate limit (crate::security).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) acl: Vec<String>,
}

impl TrunkConfig {
    /// Whether this trunk carries `number`.
    pub(crate) fn carries(&self, number: &str) -> bool {
        self.numbers.is_empty()
            || self.numbers.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => number.starts_with(prefix),
                None => p == number,
            })
    }

    /// The Request-URI for `number`.
    pub(crate) fn uri_for(&self, number: &str) -> String {
        self.uri.replace("{number}", number)
    }

    /// Checks the entry; the error is (key, reason) relative to `trunk[i]`.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        if !self.uri.contains("{number}") {
            return Err((
                "uri",
                format!("must contain {{number}}, e.g. \"sip:{{number}}@carrier.example:5060\", got {:?}", self.uri),
            ));
        }
        let sample = self.uri_for("15551234567");
        if sample.parse::<callmux_sip::Uri>().is_err() {
            return Err((
                "uri",
                format!("is not a SIP URI once filled in: {sample:?}"),
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err((
                "password",
                "username and password must be given together".into(),
            ));
        }
        for p in &self.numbers {
            let body = p.strip_suffix('*').unwrap_or(p);
            if body.contains('*') || !body.chars().all(|c| c.is_ascii_digit() || c == '+') {
                return Err((
                    "numbers",
                    format!("pattern {p:?} must be digits (optionally with a leading +) and an optional trailing *"),
                ));
            }
        }
        Ok(())
    }
}

/// The first trunk that carries `number`.
pub(crate) fn route<'a>(trunks: &'a [TrunkConfig], number: &str) -> Option<&'a TrunkConfig> {
    trunks.iter().find(|t| t.carries(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(name: &str, numbers: &[&str]) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            uri: "sip:{number}@127.0.0.1:5080".into(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
            from: None,
            username: None,
            password: None,
            acl: Vec::new(),
        }
    }

    #[test]
    fn routes_by_prefix_in_order() {
        let trunks = vec![
            trunk("uk", &["44*"]),
            trunk("exact", &["911"]),
            trunk("rest", &["*"]),
        ];
        assert_eq!(route(&trunks, "447700900123").unwrap().name, "uk");
        assert_eq!(route(&trunks, "911").unwrap().name, "exact");
        assert_eq!(route(&trunks, "9110").unwrap().name, "rest");
        assert!(route(&trunks[..2], "1555").is_none());
    }

    #[test]
    fn fills_the_template() {
        assert_eq!(trunk("t", &[]).uri_for("123"), "sip:123@127.0.0.1:5080");
    }

    #[test]
    fn validation_names_the_key() {
        let mut t = trunk("t", &[]);
        t.uri = "sip:carrier".into();
        assert_eq!(t.validate().unwrap_err().0, "uri");
        let mut t = trunk("t", &["4*4"]);
        assert_eq!(t.validate().unwrap_err().0, "numbers");
        t.numbers.clear();
        t.username = Some("u".into());
        assert_eq!(t.validate().unwrap_err().0, "password");
        assert!(trunk("ok", &["+44*", "1"]).validate().is_ok());
    }
}
