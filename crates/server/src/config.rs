//! Server configuration: one TOML file, overridden by flags and `CALLMUX_*` environment
//! variables. Every mistake is reported with the file, the key and the reason, and makes
//! `callmux serve` exit with code 2.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use callmux_webhook::{HttpMethod, QueueSpec, RetryPolicy};

mod file;
mod security;

pub(crate) use self::file::{parse_file, FileConfig};
pub(crate) use self::security::{ApiSettings, TlsListen, UserConfig};

/// A configuration mistake: which file, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The config file, or `None` when the value came from a flag or the environment.
    pub file: Option<PathBuf>,
    /// Dotted key (`rtp.ports`) or flag name.
    pub key: String,
    /// What is wrong and what would be right.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: key `{}`: {}", file.display(), self.key, self.reason),
            None => write!(f, "`{}`: {}", self.key, self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Overrides given on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `--sip`
    pub sip: Option<String>,
    /// `--http`
    pub http: Option<String>,
    /// `--rtp-ports`
    pub rtp_ports: Option<String>,
    /// `--media-ip`
    pub media_ip: Option<String>,
    /// `--ncco`
    pub ncco: Option<PathBuf>,
    /// `--answer-url`
    pub answer_url: Option<String>,
    /// `--answer-method`
    pub answer_method: Option<String>,
    /// `--fallback-answer-url`
    pub fallback_answer_url: Option<String>,
    /// `--event-url`
    pub event_url: Option<String>,
    /// `--event-method`
    pub event_method: Option<String>,
    /// `--signature-secret`
    pub signature_secret: Option<String>,
    /// `--queue`
    pub queue: Option<String>,
    /// `--no-dispatcher`
    pub no_dispatcher: bool,
    /// `--recordings`
    pub recordings: Option<PathBuf>,
    /// `--data`
    pub data: Option<PathBuf>,
    /// `--max-calls`
    pub max_calls: Option<u32>,
    /// `--public-url`
    pub public_url: Option<String>,
    /// `--application-id`
    pub application_id: Option<String>,
    /// `--application-key`
    pub application_key: Option<PathBuf>,
    /// `--recordings-api-open`
    pub recordings_api_open: bool,
    /// `--retention-days`
    pub retention_days: Option<u64>,
    /// `--sip-tls`
    pub tls_listen: Option<String>,
    /// `--tls-cert`
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`
    pub tls_key: Option<PathBuf>,
    /// `--sip-auth`
    pub sip_auth: Option<String>,
    /// `--user NAME:PASSWORD` (added to the file's `[[user]]`s)
    pub users: Vec<String>,
    /// `--acl CIDR` (replaces `[sip] acl`)
    pub acl: Vec<String>,
    /// `--invite-rate`
    pub invite_rate: Option<f64>,
    /// `--shutdown-grace` (seconds)
    pub shutdown_grace: Option<u64>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// SIP UDP+TCP address.
    pub sip_listen: SocketAddr,
    /// `User-Agent`/`Server` value.
    pub user_agent: String,
    /// Concurrent call limit.
    pub max_calls: u32,
    /// HTTP API address.
    pub http_listen: SocketAddr,
    /// RTP port range, inclusive.
    pub rtp_ports: (u16, u16),
    /// Address advertised in SDP.
    pub media_ip: IpAddr,
    /// Reorder buffer depth.
    pub reorder_delay: Duration,
    /// Caller silence (no RTP) after which the call is hung up.
    pub media_timeout: Option<Duration>,
    /// Static NCCO file.
    pub ncco_file: Option<PathBuf>,
    /// Recording root.
    pub recordings_dir: PathBuf,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Channels of conference recordings.
    pub conference_channels: u8,
    /// Trunks for `phone` endpoints.
    pub trunks: Vec<crate::trunks::TrunkConfig>,
    /// Local state directory.
    pub data_dir: PathBuf,
    /// Where each call's NCCO comes from when not a file or the default.
    pub answer: Option<AnswerConfig>,
    /// The application's event URL (call events, and record/input events without their own).
    pub event_url: Option<String>,
    /// Method for `event_url`.
    pub event_method: HttpMethod,
    /// The event queue, as given (`sqlite:DIR` or a Redis URL), for the dispatcher child.
    pub queue_url: String,
    /// The event queue.
    pub queue: QueueSpec,
    /// Webhook signing secret.
    pub signature_secret: Option<String>,
    /// Start `callmux dispatch` as a child process.
    pub spawn_dispatcher: bool,
    /// Delivery settings for `callmux dispatch`.
    pub dispatch: DispatchSettings,
    /// SIP over TLS, when configured.
    pub tls: Option<TlsListen>,
    /// ACLs, digest authentication and the INVITE rate limit.
    pub security: crate::security::SecuritySettings,
    /// The recordings HTTP API.
    pub api: ApiSettings,
    /// How long recordings are kept (None: for ever).
    pub retention: Option<Duration>,
    /// Time between retention sweeps.
    pub sweep_interval: Duration,
    /// How long calls may go on after SIGTERM before they are hung up.
    pub shutdown_grace: Duration,
    /// Registration limits and keep-alives (`[registrar]`).
    pub registrar: crate::registrar::RegistrarSettings,
    /// `[[user]] allow`: users who may register and call only from these sources.
    pub user_acls: std::collections::HashMap<String, crate::security::acl::Acl>,
}

/// The answer URL settings.
#[derive(Debug, Clone)]
pub(crate) struct AnswerConfig {
    /// Fetched per call.
    pub url: String,
    /// GET (query string) or POST (JSON body).
    pub method: HttpMethod,
    /// Tried when `url` fails.
    pub fallback_url: Option<String>,
}

/// How `callmux dispatch` delivers.
#[derive(Debug, Clone)]
pub(crate) struct DispatchSettings {
    /// Retry schedule.
    pub policy: RetryPolicy,
    /// Concurrent attempts.
    pub max_in_flight: usize,
    /// Lease on claimed events.
    pub lease: Duration,
    /// One attempt's time-out.
    pub request_timeout: Duration,
}

impl Config {
    /// Reads the optional file, applies overrides, validates.
    pub(crate) fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let parsed = match file {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        Self::resolve(parsed, file, overrides)
    }

    /// Applies overrides to a parsed file and validates every value.
    pub(crate) fn resolve(
        mut fc: FileConfig,
        file: Option<&Path>,
        ov: &Overrides,
    ) -> Result<Self, ConfigError> {
        // A value from a flag is reported without the file name.
        let from = |overridden: bool| {
            if overridden {
                None
            } else {
                file.map(Path::to_path_buf)
            }
        };
        let err = |overridden: bool, key: &str, reason: String| ConfigError {
            file: from(overridden),
            key: key.to_string(),
            reason,
        };

        if let Some(v) = &ov.sip {
            fc.sip.listen = v.clone();
        }
        if let Some(v) = &ov.http {
            fc.http.listen = v.clone();
        }
        if let Some(v) = &ov.rtp_ports {
            fc.rtp.ports = v.clone();
        }
        if let Some(v) = &ov.media_ip {
            fc.rtp.media_ip = Some(v.clone());
        }
        if let Some(v) = &ov.ncco {
            fc.ncco.file = Some(v.clone());
        }
        if let Some(v) = &ov.answer_url {
            fc.ncco.answer_url = Some(v.clone());
        }
        if let Some(v) = &ov.answer_method {
            fc.ncco.answer_method = Some(v.clone());
        }
        if let Some(v) = &ov.fallback_answer_url {
            fc.ncco.fallback_answer_url = Some(v.clone());
        }
        if let Some(v) = &ov.event_url {
            fc.ncco.event_url = Some(v.clone());
        }
        if let Some(v) = &ov.event_method {
            fc.ncco.event_method = Some(v.clone());
        }
        if let Some(v) = &ov.signature_secret {
            fc.dispatch.signature_secret = Some(v.clone());
        }
        if let Some(v) = &ov.queue {
            fc.dispatch.queue = Some(v.clone());
        }
        if ov.no_dispatcher {
            fc.dispatch.spawn = false;
        }
        if let Some(v) = &ov.recordings {
            fc.recording.dir = v.clone();
        }
        if let Some(v) = &ov.data {
            fc.data.dir = v.clone();
        }
        if let Some(v) = ov.max_calls {
            fc.sip.max_calls = v;
        }
        if let Some(v) = ov.shutdown_grace {
            fc.server.shutdown_grace = v;
        }
        security::apply_overrides(&mut fc, ov);

        let sip_listen = parse_socket_addr(&fc.sip.listen, 5060)
            .map_err(|r| err(ov.sip.is_some(), "sip.listen", r))?;
        let http_listen = parse_socket_addr(&fc.http.listen, 8080)
            .map_err(|r| err(ov.http.is_some(), "http.listen", r))?;
        let rtp_ports = parse_port_range(&fc.rtp.ports)
            .map_err(|r| err(ov.rtp_ports.is_some(), "rtp.ports", r))?;
        let media_ip = match &fc.rtp.media_ip {
            Some(s) => s.parse::<IpAddr>().map_err(|_| {
                err(
                    ov.media_ip.is_some(),
                    "rtp.media_ip",
                    format!("expected an IP address, got {s:?}"),
                )
            })?,
            None if sip_listen.ip().is_unspecified() => {
                return Err(err(
                    false,
                    "rtp.media_ip",
                    format!(
                        "sip.listen is {sip_listen}, so the address to put in SDP is unknown; \
                         set rtp.media_ip (or --media-ip) to this host's reachable address"
                    ),
                ))
            }
            None => sip_listen.ip(),
        };
        if fc.rtp.reorder_delay_ms > 1000 {
            return Err(err(
                false,
                "rtp.reorder_delay_ms",
                format!("must be 0..=1000, got {}", fc.rtp.reorder_delay_ms),
            ));
        }
        if fc.recording.checkpoint_ms == 0 || fc.recording.checkpoint_ms > 1000 {
            return Err(err(
                false,
                "recording.checkpoint_ms",
                format!(
                    "must be 1..=1000 (a recording is made playable at least once a second), got {}",
                    fc.recording.checkpoint_ms
                ),
            ));
        }
        if !(1..=32).contains(&fc.recording.conference_channels) {
            return Err(err(
                false,
                "recording.conference_channels",
                format!("must be 1..=32, got {}", fc.recording.conference_channels),
            ));
        }
        for (i, t) in fc.trunk.iter().enumerate() {
            if let Err((key, reason)) = t.validate() {
                return Err(err(false, &format!("trunk[{i}].{key}"), reason));
            }
        }
        if fc.sip.max_calls == 0 {
            return Err(err(
                ov.max_calls.is_some(),
                "sip.max_calls",
                "must be at least 1".into(),
            ));
        }
        for (key, url, overridden) in [
            (
                "ncco.answer_url",
                &fc.ncco.answer_url,
                ov.answer_url.is_some(),
            ),
            (
                "ncco.fallback_answer_url",
                &fc.ncco.fallback_answer_url,
                ov.fallback_answer_url.is_some(),
            ),
            ("ncco.event_url", &fc.ncco.event_url, ov.event_url.is_some()),
        ] {
            if let Some(u) = url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(err(
                        overridden,
                        key,
                        format!("must be an http:// or https:// URL, got {u:?}"),
                    ));
                }
            }
        }
        if fc.ncco.file.is_some() && fc.ncco.answer_url.is_some() {
            return Err(err(
                ov.ncco.is_some() || ov.answer_url.is_some(),
                "ncco.file",
                "give either a static NCCO file or an answer URL, not both".into(),
            ));
        }
        if fc.ncco.fallback_answer_url.is_some() && fc.ncco.answer_url.is_none() {
            return Err(err(
                ov.fallback_answer_url.is_some(),
                "ncco.fallback_answer_url",
                "a fallback answer URL needs an answer URL (ncco.answer_url, --answer-url)".into(),
            ));
        }
        let method = |value: &Option<String>, key: &str, overridden: bool, default: HttpMethod| {
            match value {
                None => Ok(default),
                Some(v) => v
                    .parse::<HttpMethod>()
                    .map_err(|_| err(overridden, key, format!("must be GET or POST, got {v:?}"))),
            }
        };
        let answer_method = method(
            &fc.ncco.answer_method,
            "ncco.answer_method",
            ov.answer_method.is_some(),
            HttpMethod::Get,
        )?;
        let event_method = method(
            &fc.ncco.event_method,
            "ncco.event_method",
            ov.event_method.is_some(),
            HttpMethod::Post,
        )?;
        let queue_url = fc
            .dispatch
            .queue
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", fc.data.dir.display()));
        let queue = QueueSpec::parse_url(&queue_url)
            .map_err(|e| err(ov.queue.is_some(), "dispatch.queue", e.to_string()))?;
        if fc.dispatch.signature_secret.as_deref() == Some("") {
            return Err(err(
                ov.signature_secret.is_some(),
                "dispatch.signature_secret",
                "must not be empty".into(),
            ));
        }
        let d = &fc.dispatch;
        let policy = RetryPolicy {
            initial: Duration::from_millis(d.retry_initial_ms),
            max_delay: Duration::from_millis(d.retry_max_delay_ms),
            max_age: Duration::from_secs(d.max_age_s),
            permanent_failure_attempts: d.permanent_failure_attempts,
            ..RetryPolicy::default()
        };
        policy
            .validate()
            .map_err(|e| err(false, "dispatch.retry_initial_ms", e.to_string()))?;
        if d.max_in_flight == 0 || d.max_in_flight > 10_000 {
            return Err(err(
                false,
                "dispatch.max_in_flight",
                format!("must be 1..=10000, got {}", d.max_in_flight),
            ));
        }
        if d.request_timeout_ms == 0 || d.lease_ms < 2 * d.request_timeout_ms {
            return Err(err(
                false,
                "dispatch.lease_ms",
                format!(
                    "must be at least twice dispatch.request_timeout_ms ({} ms), got {}",
                    d.request_timeout_ms, d.lease_ms
                ),
            ));
        }
        let dispatch = DispatchSettings {
            policy,
            max_in_flight: d.max_in_flight,
            lease: Duration::from_millis(d.lease_ms),
            request_timeout: Duration::from_millis(d.request_timeout_ms),
        };
        let sec = security::resolve(&fc, ov, http_listen, &err)?;
        let registrar = fc
            .registrar
            .resolve()
            .map_err(|(key, reason)| err(false, key, reason))?;

        Ok(Self {
            sip_listen,
            user_agent: fc.sip.user_agent,
            max_calls: fc.sip.max_calls,
            http_listen,
            rtp_ports,
            media_ip,
            reorder_delay: Duration::from_millis(fc.rtp.reorder_delay_ms),
            media_timeout: (fc.rtp.media_timeout_s > 0)
                .then(|| Duration::from_secs(fc.rtp.media_timeout_s)),
            ncco_file: fc.ncco.file,
            recordings_dir: fc.recording.dir,
            checkpoint_interval: Duration::from_millis(fc.recording.checkpoint_ms),
            conference_channels: fc.recording.conference_channels,
            trunks: fc.trunk,
            data_dir: fc.data.dir,
            answer: fc.ncco.answer_url.map(|url| AnswerConfig {
                url,
                method: answer_method,
                fallback_url: fc.ncco.fallback_answer_url,
            }),
            event_url: fc.ncco.event_url,
            event_method,
            queue_url,
            queue,
            signature_secret: fc.dispatch.signature_secret,
            spawn_dispatcher: fc.dispatch.spawn,
            dispatch,
            tls: sec.tls,
            security: sec.security,
            api: sec.api,
            retention: sec.retention,
            sweep_interval: sec.sweep_interval,
            shutdown_grace: Duration::from_secs(fc.server.shutdown_grace),
            registrar,
            user_acls: sec.user_acls,
        })
    }
}

/// `host:port`, or a bare IP with the default port.
fn parse_socket_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(format!(
        "expected IP:PORT (e.g. 127.0.0.1:{default_port}), got {s:?}"
    ))
}

/// `LO-HI` with at least two ports (one RTP/RTCP pair).
pub(crate) fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("expected LO-HI with 1024 <= LO < HI <= 65535, got {s:?}");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo < 1024 || lo >= hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// The documented default configuration, as TOML (for `callmux config --print-default`).
pub(crate) fn default_toml() -> String {
    toml::to_string_pretty(&FileConfig::default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Config, ConfigError> {
        let fc: FileConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: None,
            key: "-".into(),
            reason: e.to_string(),
        })?;
        Config::resolve(fc, Some(Path::new("c.toml")), &Overrides::default())
    }

    #[test]
    fn defaults_are_valid() {
        let c = resolve("").unwrap();
        assert_eq!(c.sip_listen, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(c.rtp_ports, (20000, 29999));
        assert_eq!(c.media_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("[rtp]\nports = \"30000-20000\"", "rtp.ports"),
            ("[rtp]\nports = \"abc\"", "rtp.ports"),
            ("[sip]\nlisten = \"nowhere\"", "sip.listen"),
            (
                "[recording]\ncheckpoint_ms = 5000",
                "recording.checkpoint_ms",
            ),
            ("[sip]\nlisten = \"0.0.0.0:5060\"", "rtp.media_ip"),
        ] {
            let e = resolve(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert_eq!(e.file.as_deref(), Some(Path::new("c.toml")));
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[rtp]\nportz = \"1-2\"\n").unwrap();
        let e = parse_file(&p).unwrap_err();
        assert_eq!(e.key, "rtp.portz", "{e}");
        assert!(e.reason.contains("unknown field"), "{e}");
    }

    #[test]
    fn flags_override_file() {
        let fc: FileConfig = toml::from_str("[sip]\nlisten = \"127.0.0.1:5070\"").unwrap();
        let ov = Overrides {
            sip: Some("127.0.0.9:5090".into()),
            ..Default::default()
        };
        let c = Config::resolve(fc, None, &ov).unwrap();
        assert_eq!(c.sip_listen, "127.0.0.9:5090".parse().unwrap());
    }

    #[test]
    fn webhook_settings_resolve() {
        let c = resolve(
            "[ncco]\nanswer_url = \"http://a/answer\"\nanswer_method = \"post\"\n\
             fallback_answer_url = \"http://b/answer\"\nevent_url = \"http://a/ev\"\n\
             event_method = \"GET\"\n[dispatch]\nqueue = \"redis://127.0.0.1:6379/0?prefix=x\"\n\
             signature_secret = \"k\"\nspawn = false\nmax_age_s = 60\n",
        )
        .unwrap();
        let a = c.answer.unwrap();
        assert_eq!(a.url, "http://a/answer");
        assert_eq!(a.method, HttpMethod::Post);
        assert_eq!(a.fallback_url.as_deref(), Some("http://b/answer"));
        assert_eq!(c.event_method, HttpMethod::Get);
        assert!(matches!(c.queue, QueueSpec::Redis { ref prefix, .. } if prefix == "x"));
        assert_eq!(c.signature_secret.as_deref(), Some("k"));
        assert!(!c.spawn_dispatcher);
        assert_eq!(c.dispatch.policy.max_age, Duration::from_secs(60));

        let d = resolve("[data]\ndir = \"/var/lib/cm\"").unwrap();
        assert_eq!(d.queue_url, "sqlite:/var/lib/cm");
        assert!(d.answer.is_none());
        assert_eq!(d.event_method, HttpMethod::Post);
        assert!(d.spawn_dispatcher);
    }

    #[test]
    fn bad_webhook_settings_name_their_key() {
        for (text, key) in [
            ("[ncco]\nanswer_url = \"ftp://x\"", "ncco.answer_url"),
            (
                "[ncco]\nanswer_url = \"http://x\"\nanswer_method = \"PUT\"",
                "ncco.answer_method",
            ),
            (
                "[ncco]\nfallback_answer_url = \"http://x\"",
                "ncco.fallback_answer_url",
            ),
            ("[ncco]\nevent_method = \"DELETE\"", "ncco.event_method"),
            ("[dispatch]\nqueue = \"mysql://x\"", "dispatch.queue"),
            (
                "[dispatch]\nsignature_secret = \"\"",
                "dispatch.signature_secret",
            ),
            ("[dispatch]\nlease_ms = 1000", "dispatch.lease_ms"),
            ("[dispatch]\nmax_in_flight = 0", "dispatch.max_in_flight"),
            (
                "[dispatch]\nretry_initial_ms = 700000",
                "dispatch.retry_initial_ms",
            ),
            (
                "[ncco]\nfile = \"n.json\"\nanswer_url = \"http://x\"",
                "ncco.file",
            ),
        ] {
            let e = resolve(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }

    #[test]
    fn default_toml_round_trips() {
        let text = default_toml();
        let fc: FileConfig = toml::from_str(&text).unwrap();
        assert!(Config::resolve(fc, None, &Overrides::default()).is_ok());
    }
}
