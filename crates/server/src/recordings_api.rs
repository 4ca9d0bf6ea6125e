//! The recordings HTTP API, on the `--http` listener next to `/healthz`:
//!
//! - `GET /v1/files/{recording_uuid}`: the file (Range requests; a recording still being
//!   written is served up to what is on disk). `GET /v1/recordings/{recording_uuid}` is the
//!   same, for `recording_url`s sent by earlier versions.
//! - `DELETE /v1/files/{recording_uuid}`: removes the file and its sidecar (409 while it is
//!   being recorded).
//! - `GET /v1/recordings`: lists recordings from their sidecars, filtered and paginated.
//!
//! Every `/v1` request carries `Authorization: Bearer <JWT>` signed (RS256) with the
//! application's private key; see `jwt`. Without a configured key the API refuses to serve
//! (503) unless it was explicitly opened for local use (`--recordings-api-open`). Errors are
//! JSON: `{"status": 401, "error": "token_expired", "detail": "…"}`; docs/api.md lists them.

mod files;
mod jwt;
mod list;
mod range;
pub(crate) mod store;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub(crate) use jwt::{load_application_key, JwtSettings};

/// The base of `recording_url`s (`--public-url`), set once at start-up.
static PUBLIC_URL: OnceLock<String> = OnceLock::new();

/// Sets the base of `recording_url`s (`http://host:port`, no trailing slash).
pub(crate) fn set_public_url(url: &str) {
    let _ = PUBLIC_URL.set(url.trim_end_matches('/').to_string());
}

/// The URL of a recording: `{public_url}/v1/files/{recording_uuid}`, or with
/// `http://{http}` when no public URL was set.
pub(crate) fn recording_url(http: std::net::SocketAddr, recording_uuid: &str) -> String {
    match PUBLIC_URL.get() {
        Some(base) => format!("{base}/v1/files/{recording_uuid}"),
        None => format!("http://{http}/v1/files/{recording_uuid}"),
    }
}

/// Who may use the API.
pub(crate) enum ApiAuth {
    /// Bearer JWTs of the application.
    Jwt(Box<jwt::JwtVerifier>),
    /// Anyone (`--recordings-api-open`, local demos only).
    Open,
    /// No key configured: every `/v1` request is refused with 503.
    NotConfigured,
}

/// What the handlers share.
pub(crate) struct ApiState {
    /// Recordings root.
    pub(crate) root: PathBuf,
    /// Base of `recording_url`s in listings.
    pub(crate) public_url: String,
    pub(crate) auth: ApiAuth,
}

impl ApiState {
    /// State for the API: JWT auth when `jwt` is given, else open or refusing.
    pub(crate) fn new(
        root: PathBuf,
        public_url: String,
        jwt: Option<JwtSettings>,
        open: bool,
    ) -> Self {
        let auth = match (jwt, open) {
            (Some(settings), _) => ApiAuth::Jwt(Box::new(jwt::JwtVerifier::new(settings))),
            (None, true) => ApiAuth::Open,
            (None, false) => ApiAuth::NotConfigured,
        };
        Self {
            root,
            public_url: public_url.trim_end_matches('/').to_string(),
            auth,
        }
    }

    /// Checks the request's token (and spends it).
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.auth {
            ApiAuth::Open => Ok(()),
            ApiAuth::NotConfigured => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_not_configured",
                "the recordings API has no application key: start callmux serve with \
                 --application-id and --application-key (or [http] application_id and \
                 application_key), or --recordings-api-open for a local demo",
            )),
            ApiAuth::Jwt(v) => {
                let value = headers
                    .get(header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap_or("\u{0}"));
                v.verify(value, SystemTime::now())
                    .map(|_| ())
                    .map_err(|e| {
                        let mut err = ApiError::new(e.status, e.code, e.detail);
                        if e.status == StatusCode::UNAUTHORIZED {
                            // RFC 6750 §3.
                            let challenge = if e.code == "missing_token" {
                                r#"Bearer realm="callmux""#.to_string()
                            } else {
                                format!(r#"Bearer realm="callmux", error="invalid_token", error_description="{}""#, e.code)
                            };
                            err.headers.push((header::WWW_AUTHENTICATE, challenge));
                        }
                        err
                    })
            }
        }
    }
}

/// An error answer: status, a stable code and a sentence, as JSON.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
    pub(crate) headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no recording {id:?} on this server"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "status": self.status.as_u16(),
            "error": self.code,
            "detail": self.detail,
        });
        let mut r = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().append(name, v);
            }
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

/// Adds the API's routes to `router`.
pub(crate) fn routes(router: axum::Router, state: Arc<ApiState>) -> axum::Router {
    use axum::routing::get;
    router.merge(
        axum::Router::new()
            .route("/v1/files/{id}", get(files::download).delete(files::remove))
            .route("/v1/recordings/{id}", get(files::download))
            .route("/v1/recordings", get(list::list))
            .with_state(state),
    )
}
