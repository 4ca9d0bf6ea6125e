//! `GET` and `DELETE /v1/files/{recording_uuid}`.

use std::io::SeekFrom;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callmux_record::sidecar::valid_uuid;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::{info, warn};

use super::range::{resolve, RangeOutcome};
use super::{store, ApiError, ApiState};

/// Bytes read from disk per body chunk.
const CHUNK: usize = 64 * 1024;

fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        _ => "audio/wav",
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if valid_uuid(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "a recording id is 1 to 128 of A-Z a-z 0-9 - _",
        ))
    }
}

async fn locate(
    state: &Arc<ApiState>,
    id: &str,
) -> Result<(std::path::PathBuf, Option<store::Stored>), ApiError> {
    let root = state.root.clone();
    let key = id.to_string();
    tokio::task::spawn_blocking(move || store::find(&root, &key))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::not_found(id))
}

/// `GET /v1/files/{id}`: the file, whole or one range of it.
pub(super) async fn download(
    State(state): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.authorize(&headers)?;
    check_id(&id)?;
    let (media, stored) = locate(&state, &id).await?;
    let mut file = tokio::fs::File::open(&media)
        .await
        .map_err(|_| ApiError::not_found(&id))?;
    // A file being recorded grows: what is served is what is on disk now.
    let size = file
        .metadata()
        .await
        .map_err(|_| ApiError::not_found(&id))?
        .len();
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match resolve(range_header, size) {
        RangeOutcome::Full => (StatusCode::OK, 0, size),
        RangeOutcome::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeOutcome::Unsatisfiable => {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes; the requested range is outside it"),
            );
            e.headers
                .push((header::CONTENT_RANGE, format!("bytes */{size}")));
            return Err(e);
        }
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|_| ApiError::not_found(&id))?;
    }
    let stream = futures_util::stream::unfold(
        (file.take(len), vec![0u8; CHUNK]),
        |(mut f, mut buf)| async move {
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    let chunk = bytes_of(&buf, n);
                    Some((Ok::<_, std::io::Error>(chunk), (f, buf)))
                }
                Err(e) => Some((Err(e), (f, buf))),
            }
        },
    );
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&media)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Some(name) = media.file_name().and_then(|n| n.to_str()) {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let Some(s) = &stored {
        h.insert(
            "x-recording-state",
            HeaderValue::from_static(super::list::state_name(s.sidecar.state)),
        );
    }
    Ok(r)
}

fn bytes_of(buf: &[u8], n: usize) -> axum::body::Bytes {
    axum::body::Bytes::copy_from_slice(buf.get(..n).unwrap_or_default())
}

/// `DELETE /v1/files/{id}`: the file and its sidecar; 409 while it is being recorded.
pub(super) async fn remove(
    State(state): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.authorize(&headers)?;
    check_id(&id)?;
    let (media, stored) = locate(&state, &id).await?;
    if stored.as_ref().is_some_and(store::Stored::in_progress) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "recording_in_progress",
            format!("recording {id:?} is still being written; delete it once it has ended"),
        ));
    }
    let sidecar = stored.as_ref().map(|s| s.sidecar_path.clone());
    let media_path = media.clone();
    let result =
        tokio::task::spawn_blocking(move || store::delete(&media_path, sidecar.as_deref()))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
    match result {
        Ok(()) => {
            info!(recording_uuid = %id, path = %media.display(), "recording deleted through the API");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => {
            warn!(recording_uuid = %id, error = %e, "could not delete a recording");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "delete_failed",
                format!("could not delete the recording: {e}"),
            ))
        }
    }
}
