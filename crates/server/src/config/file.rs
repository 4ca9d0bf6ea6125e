//! The config file as written: its sections and keys (unknown keys are errors, so typos do
//! not pass silently) with their documented defaults, and the parse that names the key of
//! every syntax or type mistake.

use std::path::{Path, PathBuf};

use callmux_webhook::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{ConfigError, UserConfig};

/// The file format, section by section. Unknown keys are errors, so typos do not pass
/// silently.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    /// SIP transports.
    pub sip: SipSection,
    /// RTP media.
    pub rtp: RtpSection,
    /// HTTP API.
    pub http: HttpSection,
    /// Where each call's NCCO comes from.
    pub ncco: NccoSection,
    /// Recording files.
    pub recording: RecordingSection,
    /// Local state (event queue).
    pub data: DataSection,
    /// Event queue and the webhook dispatcher.
    pub dispatch: DispatchSection,
    /// The process itself: shutdown.
    pub server: ServerSection,
    /// SIP trunks for `connect` to `phone` endpoints (`[[trunk]]`, tried in order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trunk: Vec<crate::trunks::TrunkConfig>,
    /// SIP users for digest authentication (`[[user]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<UserConfig>,
    /// Registration of users' phones (`[registrar]`).
    pub registrar: crate::registrar::RegistrarSection,
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SipSection {
    /// Address for SIP over UDP and TCP.
    pub listen: String,
    /// `User-Agent`/`Server` header value.
    pub user_agent: String,
    /// Concurrent calls accepted before new INVITEs get 503.
    pub max_calls: u32,
    /// Address for SIP over TLS (needs `tls_cert` and `tls_key`).
    pub tls_listen: Option<String>,
    /// PEM certificate chain for SIP over TLS (leaf first).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub tls_key: Option<PathBuf>,
    /// Sources allowed to send INVITEs (CIDR blocks or addresses); empty = anyone, unless
    /// a trunk has an `acl`.
    pub acl: Vec<String>,
    /// `off`, or `required`: INVITEs must carry digest credentials of a `[[user]]`
    /// (trunks with an `acl` are trusted by address instead).
    pub auth: String,
    /// Digest realm.
    pub realm: String,
    /// Digest algorithms offered, most preferred first (`SHA-256`, `MD5`, and their
    /// `-sess` forms).
    pub auth_algorithms: Vec<String>,
    /// Seconds a digest nonce stays usable.
    pub nonce_ttl_s: u64,
    /// Failed digest attempts a source may make at once …
    pub auth_fail_burst: u32,
    /// … and per minute after that; then every attempt from it gets 403.
    pub auth_fail_per_minute: u32,
    /// New INVITEs per second per source (0 = unlimited); above it, 503 with Retry-After.
    pub invite_rate: f64,
    /// INVITEs a source may send at once.
    pub invite_burst: u32,
    /// Seconds a source that keeps sending over the limit is ignored (0 = never).
    pub invite_ban_s: u64,
}

impl Default for SipSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5060".into(),
            user_agent: format!("callmux/{}", env!("CARGO_PKG_VERSION")),
            max_calls: 2000,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            acl: Vec::new(),
            auth: "off".into(),
            realm: "callmux".into(),
            auth_algorithms: vec!["SHA-256".into(), "MD5".into()],
            nonce_ttl_s: 300,
            auth_fail_burst: 10,
            auth_fail_per_minute: 10,
            invite_rate: 20.0,
            invite_burst: 40,
            invite_ban_s: 60,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerSection {
    /// Seconds calls may go on after SIGTERM (new INVITEs get 503 meanwhile) before every
    /// call is hung up; a second SIGTERM/SIGINT cuts it short.
    pub shutdown_grace: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self { shutdown_grace: 30 }
    }
}

/// `[rtp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RtpSection {
    /// Port range `LO-HI` for RTP (even ports) and RTCP (odd).
    pub ports: String,
    /// Address put in SDP `c=` lines; defaults to the SIP listen address.
    pub media_ip: Option<String>,
    /// Reorder buffer depth in milliseconds.
    pub reorder_delay_ms: u64,
    /// Hang up a call whose caller sent no RTP for this many seconds (0 = never).
    pub media_timeout_s: u64,
}

impl Default for RtpSection {
    fn default() -> Self {
        Self {
            ports: "20000-29999".into(),
            media_ip: None,
            reorder_delay_ms: 60,
            media_timeout_s: 0,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpSection {
    /// Address of the HTTP API (`/healthz`, `/v1/…`).
    pub listen: String,
    /// Base URL of `recording_url`s, as applications reach this server
    /// [default: `http://{listen}`].
    pub public_url: Option<String>,
    /// The application whose JWTs the recordings API accepts (`application_id` claim).
    pub application_id: Option<String>,
    /// PEM file with the application's RSA key: public, or private (its public half is used).
    pub application_key: Option<PathBuf>,
    /// Serve the recordings API without tokens (local demos only).
    pub recordings_api_open: bool,
    /// Clock skew allowed on token times, in seconds.
    pub jwt_leeway_s: u64,
    /// Longest token lifetime (`exp - iat`) accepted, in seconds.
    pub jwt_max_lifetime_s: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            application_id: None,
            application_key: None,
            recordings_api_open: false,
            jwt_leeway_s: 30,
            jwt_max_lifetime_s: 86_400,
        }
    }
}

/// `[ncco]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NccoSection {
    /// A static NCCO file used for every call (instead of the built-in default).
    pub file: Option<PathBuf>,
    /// The application's answer URL (fetched per call).
    pub answer_url: Option<String>,
    /// `GET` (default) or `POST` for the answer URL.
    pub answer_method: Option<String>,
    /// Tried when the answer URL cannot be reached or answers non-2xx (also for input
    /// answers).
    pub fallback_answer_url: Option<String>,
    /// The application's event URL.
    pub event_url: Option<String>,
    /// `POST` (default) or `GET` for the event URL.
    pub event_method: Option<String>,
}

/// `[dispatch]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DispatchSection {
    /// Event queue: `sqlite:DIR[?synchronous=normal]` or `redis://host:port/db?prefix=P&group=G`
    /// [default: SQLite in the data directory].
    pub queue: Option<String>,
    /// Shared secret for signed webhooks (HS256 JWT in `Authorization`).
    pub signature_secret: Option<String>,
    /// `callmux serve` starts `callmux dispatch` as a child process (and restarts it).
    pub spawn: bool,
    /// First retry delay in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest retry delay in milliseconds (before jitter).
    pub retry_max_delay_ms: u64,
    /// Age in seconds after which a failing event is dead-lettered.
    pub max_age_s: u64,
    /// Failed attempts after which a 4xx/3xx answer dead-letters the event.
    pub permanent_failure_attempts: u32,
    /// Concurrent delivery attempts per dispatcher.
    pub max_in_flight: usize,
    /// Lease on a claimed event, in milliseconds (must exceed the request time-out).
    pub lease_ms: u64,
    /// Time-out of one delivery attempt, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for DispatchSection {
    fn default() -> Self {
        let p = RetryPolicy::default();
        Self {
            queue: None,
            signature_secret: None,
            spawn: true,
            retry_initial_ms: p.initial.as_millis() as u64,
            retry_max_delay_ms: p.max_delay.as_millis() as u64,
            max_age_s: p.max_age.as_secs(),
            permanent_failure_attempts: p.permanent_failure_attempts,
            max_in_flight: 32,
            lease_ms: 60_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// `[recording]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RecordingSection {
    /// Root directory of recordings (`{dir}/YYYY/MM/DD/{uuid}.wav`).
    pub dir: PathBuf,
    /// How often the file is flushed and its header patched, in milliseconds (≤ 1000).
    pub checkpoint_ms: u64,
    /// Channels of a conference recording (`conversation` with `record: true`): one per
    /// participant in joining order, later participants share the last one (1–32).
    pub conference_channels: u8,
    /// Days a recording is kept after it ended; then the file and its sidecar are deleted
    /// (0 = keep for ever).
    pub retention_days: u64,
    /// Seconds between retention sweeps (the first runs at start-up).
    pub sweep_interval_s: u64,
}

impl Default for RecordingSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./recordings"),
            checkpoint_ms: 500,
            conference_channels: 8,
            retention_days: 30,
            sweep_interval_s: 3600,
        }
    }
}

/// `[data]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DataSection {
    /// Directory of local state (the embedded event queue).
    pub dir: PathBuf,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data"),
        }
    }
}

/// Reads and parses a TOML config file; syntax and unknown keys are reported with the key.
pub(crate) fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_path_buf()),
        key: "-".into(),
        reason: format!("cannot read: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| {
        // toml reports the span; find the key name from the message when it names one.
        let msg = e.message().to_string();
        let key = key_from_toml_error(&text, &e)
            .or_else(|| key_of_missing_field(&text, &msg))
            .unwrap_or_else(|| "-".into());
        ConfigError {
            file: Some(path.to_path_buf()),
            key,
            reason: msg,
        }
    })
}

/// The dotted key at the error's position: the table header above it plus the key on the
/// line.
fn key_from_toml_error(text: &str, e: &toml::de::Error) -> Option<String> {
    let span = e.span()?;
    let before = text.get(..span.start)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?.trim();
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string());
    let key = line.split('=').next()?.trim();
    let key = if key.starts_with('[') {
        None
    } else {
        Some(key.to_string())
    };
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (Some(t), None) => Some(t),
        (None, Some(k)) => Some(k),
        (None, None) => None,
    }
}

/// For a `missing field` error (which toml reports without a position): the first table
/// that lacks the field, as `table.field` or `table[i].field` for `[[table]]` entries.
fn key_of_missing_field(text: &str, msg: &str) -> Option<String> {
    let field = msg.strip_prefix("missing field `")?.split('`').next()?;
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    // The table being read: its name as reported, and whether it has the field.
    let mut current: Option<(String, bool)> = None;
    let lines = text.lines().map(str::trim).chain(std::iter::once("[]"));
    for line in lines {
        if line.starts_with('[') {
            if let Some((name, false)) = current.take() {
                return Some(format!("{name}.{field}"));
            }
            let name = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            if name.is_empty() {
                break;
            }
            let label = if line.starts_with("[[") {
                let i = seen.entry(name.clone()).or_insert(0);
                *i += 1;
                format!("{name}[{}]", *i - 1)
            } else {
                name
            };
            current = Some((label, false));
        } else if let Some((_, has)) = current.as_mut() {
            if line.split('=').next().map(str::trim) == Some(field) {
                *has = true;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_is_named_with_its_table_entry() {
        let text = "[[trunk]]\nname = \"a\"\nuri = \"sip:{number}@h\"\n\n[[trunk]]\nname = \"b\"\n";
        assert_eq!(
            key_of_missing_field(text, "missing field `uri`").as_deref(),
            Some("trunk[1].uri")
        );
        assert_eq!(key_of_missing_field(text, "invalid type"), None);
    }
}
