//! `GET /v1/recordings/{recording_uuid}`: the file a record event's `recording_url`
//! points at. A minimal first piece of the recordings HTTP API: it serves finished and
//! in-progress files by id, nothing else (no listing, no auth, no range requests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The URL of a recording on this server's HTTP API.
pub(crate) fn recording_url(http: std::net::SocketAddr, recording_uuid: &str) -> String {
    format!("http://{http}/v1/recordings/{recording_uuid}")
}

/// Adds the route to `router`.
pub(crate) fn routes(router: axum::Router, recordings_dir: PathBuf) -> axum::Router {
    router.route(
        "/v1/recordings/{id}",
        axum::routing::get(get_recording).with_state(Arc::new(recordings_dir)),
    )
}

async fn get_recording(State(root): State<Arc<PathBuf>>, UrlPath(id): UrlPath<String>) -> Response {
    let valid =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !valid {
        return (StatusCode::BAD_REQUEST, "bad recording id\n").into_response();
    }
    let root = Arc::clone(&root);
    let found = tokio::task::spawn_blocking(move || find(&root, &id))
        .await
        .ok()
        .flatten();
    let Some(path) = found else {
        return (StatusCode::NOT_FOUND, "no such recording\n").into_response();
    };
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        _ => "audio/wav",
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such recording\n").into_response(),
    }
}

/// `{root}/YYYY/MM/DD/{id}.{wav,mp3,ogg}`, newest days first.
fn find(root: &Path, id: &str) -> Option<PathBuf> {
    let sorted = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.reverse();
        v
    };
    for y in sorted(root) {
        for m in sorted(&y) {
            for d in sorted(&m) {
                for ext in ["wav", "mp3", "ogg"] {
                    let p = d.join(format!("{id}.{ext}"));
                    if p.is_file() {
                        return Some(p);
                    }
                }
            }
        }
    }
    None
}
