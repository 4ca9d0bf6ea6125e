//! The security and recordings-API parts of the configuration: `[[user]]`, the ACL,
//! digest and rate-limit keys and TLS of `[sip]`, the application key and public URL of
//! `[http]`, and retention in `[recording]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use callmux_sip::auth::Algorithm;
use serde::{Deserialize, Serialize};

use super::{parse_socket_addr, ConfigError, FileConfig, Overrides};
use crate::recordings_api::JwtSettings;
use crate::security::acl::Acl;
use crate::security::digest::DigestSettings;
use crate::security::{RateSettings, SecuritySettings};

/// One `[[user]]`: a SIP user allowed to call when `[sip] auth = "required"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserConfig {
    /// Digest user name.
    pub name: String,
    /// Digest password.
    pub password: String,
    /// Sources this user may register and call from (CIDR blocks or addresses); empty =
    /// anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
}

/// SIP over TLS: where, and with which certificate.
#[derive(Debug, Clone)]
pub(crate) struct TlsListen {
    /// Listen address.
    pub listen: SocketAddr,
    /// Certificate and key, loaded.
    pub config: Arc<rustls::ServerConfig>,
}

/// The recordings API.
#[derive(Debug, Clone)]
pub(crate) struct ApiSettings {
    /// Base of `recording_url`s (no trailing slash).
    pub public_url: String,
    /// Token verification, when an application key is configured.
    pub jwt: Option<JwtSettings>,
    /// Serve without tokens (`--recordings-api-open`).
    pub open: bool,
}

/// What [`resolve`] produces.
pub(super) struct Resolved {
    /// `[[user]] allow`: users restricted to some source addresses.
    pub(super) user_acls: HashMap<String, Acl>,
    pub(super) tls: Option<TlsListen>,
    pub(super) security: SecuritySettings,
    pub(super) api: ApiSettings,
    pub(super) retention: Option<Duration>,
    pub(super) sweep_interval: Duration,
}

/// Copies the flags into the file's sections.
pub(super) fn apply_overrides(fc: &mut FileConfig, ov: &Overrides) {
    if let Some(v) = &ov.public_url {
        fc.http.public_url = Some(v.clone());
    }
    if let Some(v) = &ov.application_id {
        fc.http.application_id = Some(v.clone());
    }
    if let Some(v) = &ov.application_key {
        fc.http.application_key = Some(v.clone());
    }
    if ov.recordings_api_open {
        fc.http.recordings_api_open = true;
    }
    if let Some(v) = ov.retention_days {
        fc.recording.retention_days = v;
    }
    if let Some(v) = &ov.tls_listen {
        fc.sip.tls_listen = Some(v.clone());
    }
    if let Some(v) = &ov.tls_cert {
        fc.sip.tls_cert = Some(v.clone());
    }
    if let Some(v) = &ov.tls_key {
        fc.sip.tls_key = Some(v.clone());
    }
    if let Some(v) = &ov.sip_auth {
        fc.sip.auth = v.clone();
    }
    if !ov.acl.is_empty() {
        fc.sip.acl = ov.acl.clone();
    }
    if let Some(v) = ov.invite_rate {
        fc.sip.invite_rate = v;
    }
}

/// Validates and resolves the security and API keys. `err(overridden, key, reason)`
/// builds the error naming the file or the flag.
pub(super) fn resolve<E>(
    fc: &FileConfig,
    ov: &Overrides,
    http_listen: SocketAddr,
    err: &E,
) -> Result<Resolved, ConfigError>
where
    E: Fn(bool, &str, String) -> ConfigError,
{
    let sip = &fc.sip;

    // Users: the file's, then --user NAME:PASSWORD.
    let mut users = HashMap::new();
    let mut add_user = |name: &str, password: &str, key: &str, flag: bool| {
        if name.is_empty() || name.contains([':', '"', '\\']) || name.chars().any(char::is_control)
        {
            return Err(err(
                flag,
                key,
                format!(
                    "user name {name:?} must be non-empty, without : \" \\ or control characters"
                ),
            ));
        }
        if password.is_empty() {
            return Err(err(
                flag,
                key,
                format!("user {name:?} has an empty password"),
            ));
        }
        if users
            .insert(name.to_string(), password.to_string())
            .is_some()
        {
            return Err(err(flag, key, format!("user {name:?} is given twice")));
        }
        Ok(())
    };
    let mut user_acls = HashMap::new();
    for (i, u) in fc.user.iter().enumerate() {
        add_user(&u.name, &u.password, &format!("user[{i}]"), false)?;
        let acl = Acl::parse(&u.allow).map_err(|r| err(false, &format!("user[{i}].allow"), r))?;
        if !acl.is_empty() {
            user_acls.insert(u.name.clone(), acl);
        }
    }
    for u in &ov.users {
        let (name, password) = u.split_once(':').ok_or_else(|| {
            err(
                true,
                "user",
                format!(
                    "expected NAME:PASSWORD, got {:?}",
                    u.split(':').next().unwrap_or_default()
                ),
            )
        })?;
        add_user(name, password, "user", true)?;
    }

    let acl = Acl::parse(&sip.acl).map_err(|r| err(!ov.acl.is_empty(), "sip.acl", r))?;
    let mut trunks = Vec::new();
    for (i, t) in fc.trunk.iter().enumerate() {
        let a = Acl::parse(&t.acl).map_err(|r| err(false, &format!("trunk[{i}].acl"), r))?;
        if !a.is_empty() {
            trunks.push((t.name.clone(), a));
        }
    }

    let auth = match sip.auth.as_str() {
        "off" => None,
        "required" => {
            if users.is_empty() && trunks.is_empty() {
                return Err(err(
                    ov.sip_auth.is_some(),
                    "sip.auth",
                    "\"required\" needs at least one [[user]] (or --user NAME:PASSWORD), or a \
                     [[trunk]] with an acl; otherwise every INVITE would be refused"
                        .into(),
                ));
            }
            if sip.realm.is_empty() || sip.realm.contains(['"', '\\']) {
                return Err(err(
                    false,
                    "sip.realm",
                    format!(
                        "must be non-empty, without quotes or backslashes, got {:?}",
                        sip.realm
                    ),
                ));
            }
            let mut algorithms = Vec::new();
            for a in &sip.auth_algorithms {
                let alg = Algorithm::parse(a).map_err(|_| {
                    err(
                        false,
                        "sip.auth_algorithms",
                        format!("unknown algorithm {a:?} (SHA-256, MD5, SHA-256-sess, MD5-sess)"),
                    )
                })?;
                if !algorithms.contains(&alg) {
                    algorithms.push(alg);
                }
            }
            if algorithms.is_empty() {
                return Err(err(
                    false,
                    "sip.auth_algorithms",
                    "must name at least one algorithm".into(),
                ));
            }
            if !(10..=3600).contains(&sip.nonce_ttl_s) {
                return Err(err(
                    false,
                    "sip.nonce_ttl_s",
                    format!("must be 10..=3600, got {}", sip.nonce_ttl_s),
                ));
            }
            if sip.auth_fail_burst == 0 || sip.auth_fail_per_minute == 0 {
                return Err(err(
                    false,
                    "sip.auth_fail_burst",
                    "auth_fail_burst and auth_fail_per_minute must be at least 1".into(),
                ));
            }
            Some(DigestSettings {
                realm: sip.realm.clone(),
                algorithms,
                users,
                nonce_ttl: Duration::from_secs(sip.nonce_ttl_s),
                fail_burst: sip.auth_fail_burst,
                fail_per_minute: f64::from(sip.auth_fail_per_minute),
            })
        }
        other => {
            return Err(err(
                ov.sip_auth.is_some(),
                "sip.auth",
                format!("must be \"off\" or \"required\", got {other:?}"),
            ))
        }
    };

    if !sip.invite_rate.is_finite() || sip.invite_rate < 0.0 || sip.invite_rate > 100_000.0 {
        return Err(err(
            ov.invite_rate.is_some(),
            "sip.invite_rate",
            format!(
                "must be 0 (unlimited) to 100000 per second, got {}",
                sip.invite_rate
            ),
        ));
    }
    if sip.invite_burst == 0 {
        return Err(err(false, "sip.invite_burst", "must be at least 1".into()));
    }
    let rate = (sip.invite_rate > 0.0).then(|| RateSettings {
        per_second: sip.invite_rate,
        burst: sip.invite_burst,
        ban: Duration::from_secs(sip.invite_ban_s),
    });

    let tls = match (&sip.tls_listen, &sip.tls_cert, &sip.tls_key) {
        (None, _, _) => None,
        (Some(addr), Some(cert), Some(key)) => {
            let listen = parse_socket_addr(addr, 5061)
                .map_err(|r| err(ov.tls_listen.is_some(), "sip.tls_listen", r))?;
            let config = crate::tls::server_config(cert, key).map_err(|(k, r)| {
                let flag = if k == "sip.tls_cert" {
                    ov.tls_cert.is_some()
                } else {
                    ov.tls_key.is_some()
                };
                err(flag, k, r)
            })?;
            Some(TlsListen { listen, config })
        }
        (Some(_), _, _) => return Err(err(
            ov.tls_listen.is_some(),
            "sip.tls_listen",
            "SIP over TLS needs sip.tls_cert and sip.tls_key (--tls-cert, --tls-key): PEM files"
                .into(),
        )),
    };

    let http = &fc.http;
    let public_url = match &http.public_url {
        None => format!("http://{http_listen}"),
        Some(u) => {
            let ok = (u.starts_with("http://") || u.starts_with("https://"))
                && u.len() > "https://".len()
                && !u.contains(['?', '#', ' ']);
            if !ok {
                return Err(err(
                    ov.public_url.is_some(),
                    "http.public_url",
                    format!("must be an http:// or https:// base URL without query, got {u:?}"),
                ));
            }
            u.trim_end_matches('/').to_string()
        }
    };
    let jwt = match (&http.application_id, &http.application_key) {
        (None, None) => None,
        (Some(id), Some(path)) => {
            if id.trim().is_empty() {
                return Err(err(
                    ov.application_id.is_some(),
                    "http.application_id",
                    "must not be empty".into(),
                ));
            }
            // Named by the config file (or flag) and key; the key file is in the reason.
            let key_err = |r: String| {
                err(
                    ov.application_key.is_some(),
                    "http.application_key",
                    format!("{}: {r}", path.display()),
                )
            };
            let pem = std::fs::read_to_string(path)
                .map_err(|e| key_err(format!("cannot read the application key: {e}")))?;
            let key = crate::recordings_api::load_application_key(&pem).map_err(key_err)?;
            if http.jwt_leeway_s > 300 {
                return Err(err(
                    false,
                    "http.jwt_leeway_s",
                    format!("must be 0..=300, got {}", http.jwt_leeway_s),
                ));
            }
            if !(60..=30 * 86_400).contains(&http.jwt_max_lifetime_s) {
                return Err(err(
                    false,
                    "http.jwt_max_lifetime_s",
                    format!("must be 60..=2592000, got {}", http.jwt_max_lifetime_s),
                ));
            }
            Some(JwtSettings {
                application_id: id.clone(),
                key,
                leeway: Duration::from_secs(http.jwt_leeway_s),
                max_lifetime: Duration::from_secs(http.jwt_max_lifetime_s),
            })
        }
        (Some(_), None) => {
            return Err(err(
                ov.application_id.is_some(),
                "http.application_key",
                "an application id needs the application's key (--application-key FILE.pem)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                ov.application_key.is_some(),
                "http.application_id",
                "an application key needs the application id (--application-id)".into(),
            ))
        }
    };

    let rec = &fc.recording;
    if rec.retention_days > 36_500 {
        return Err(err(
            ov.retention_days.is_some(),
            "recording.retention_days",
            format!("must be 0 (keep) to 36500, got {}", rec.retention_days),
        ));
    }
    if rec.sweep_interval_s == 0 || rec.sweep_interval_s > 86_400 {
        return Err(err(
            false,
            "recording.sweep_interval_s",
            format!("must be 1..=86400, got {}", rec.sweep_interval_s),
        ));
    }

    Ok(Resolved {
        user_acls,
        tls,
        security: SecuritySettings {
            acl,
            trunks,
            auth,
            rate,
        },
        api: ApiSettings {
            public_url,
            jwt,
            open: http.recordings_api_open,
        },
        retention: (rec.retention_days > 0)
            .then(|| Duration::from_secs(rec.retention_days * 86_400)),
        sweep_interval: Duration::from_secs(rec.sweep_interval_s),
    })
}
