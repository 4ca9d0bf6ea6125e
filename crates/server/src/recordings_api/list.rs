//! `GET /v1/recordings`: recordings from their sidecars, filtered by conversation, call,
//! state and start time, ordered by start time, a page at a time (`limit`, `cursor`).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use callmux_record::SidecarState;
use callmux_webhook::Timestamp;
use serde_json::{json, Value};

use super::{store, ApiError, ApiState};

/// Page size when `limit` is not given, and the largest accepted.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The sidecar state as the API names it.
pub(super) fn state_name(s: SidecarState) -> &'static str {
    match s {
        SidecarState::Recording => "recording",
        SidecarState::Complete => "complete",
        SidecarState::Recovered => "recovered",
        SidecarState::Failed => "failed",
    }
}

fn bad(detail: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_query", detail)
}

/// The parsed query string.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    conversation_uuid: Option<String>,
    call_uuid: Option<String>,
    state: Option<String>,
    date_start: Option<i64>,
    date_end: Option<i64>,
    limit: usize,
    descending: bool,
    /// Position after which the page starts: (start time in ms, recording uuid).
    after: Option<(i64, String)>,
}

fn parse_time(key: &str, v: &str) -> Result<i64, ApiError> {
    Timestamp::parse(v).map(Timestamp::unix_ms).map_err(|_| {
        bad(format!(
            "{key} must be an RFC 3339 time such as 2024-05-01T12:00:00Z, got {v:?}"
        ))
    })
}

fn encode_cursor(start_ms: i64, uuid: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{start_ms}:{uuid}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (ms, uuid) = text.split_once(':')?;
    Some((ms.parse().ok()?, uuid.to_string()))
}

impl Filter {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut f = Self {
            limit: DEFAULT_LIMIT,
            ..Self::default()
        };
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if !seen.insert(k.as_str()) {
                return Err(bad(format!("{k} is given more than once")));
            }
            match k.as_str() {
                "conversation_uuid" => f.conversation_uuid = Some(v.clone()),
                "call_uuid" | "uuid" => {
                    if f.call_uuid.is_some() {
                        return Err(bad("give call_uuid or uuid, not both".into()));
                    }
                    f.call_uuid = Some(v.clone());
                }
                "state" => {
                    if !["recording", "complete", "recovered", "failed"].contains(&v.as_str()) {
                        return Err(bad(format!(
                            "state must be recording, complete, recovered or failed, got {v:?}"
                        )));
                    }
                    f.state = Some(v.clone());
                }
                "date_start" => f.date_start = Some(parse_time(k, v)?),
                "date_end" => f.date_end = Some(parse_time(k, v)?),
                "limit" => {
                    f.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad(format!("limit must be 1..={MAX_LIMIT}, got {v:?}")))?;
                }
                "order" => {
                    f.descending = match v.as_str() {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(bad(format!("order must be asc or desc, got {v:?}"))),
                    }
                }
                "cursor" => {
                    f.after = Some(decode_cursor(v).ok_or_else(|| {
                        bad(
                            "cursor is not one this server returned (use next_cursor as it is)"
                                .into(),
                        )
                    })?);
                }
                other => {
                    return Err(bad(format!(
                        "unknown parameter {other:?} (known: conversation_uuid, call_uuid, uuid, \
                         state, date_start, date_end, limit, order, cursor)"
                    )))
                }
            }
        }
        Ok(f)
    }

    fn keeps(&self, s: &store::Stored, start_ms: i64) -> bool {
        let sc = &s.sidecar;
        self.conversation_uuid
            .as_ref()
            .is_none_or(|c| *c == sc.conversation_uuid)
            && self.call_uuid.as_ref().is_none_or(|c| {
                *c == sc.call_uuid
                    || sc
                        .channel_map
                        .iter()
                        .any(|ch| ch.legs.iter().any(|l| l.leg_uuid == *c))
            })
            && self
                .state
                .as_deref()
                .is_none_or(|st| st == state_name(sc.state))
            && self.date_start.is_none_or(|t| start_ms >= t)
            && self.date_end.is_none_or(|t| start_ms < t)
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    Timestamp::from_system_time(t).unix_ms()
}

fn item(s: &store::Stored, public_url: &str) -> Value {
    let sc = &s.sidecar;
    let size = sc.size.unwrap_or_else(|| s.size_on_disk());
    let mut v = json!({
        "recording_uuid": sc.recording_uuid,
        "recording_url": format!("{public_url}/v1/files/{}", sc.recording_uuid),
        "uuid": sc.call_uuid,
        "conversation_uuid": sc.conversation_uuid,
        "state": state_name(sc.state),
        "format": sc.format.extension(),
        "channels": sc.channels,
        "start_time": Timestamp::from_system_time(sc.start_time).to_string(),
        "size": size,
        "channel_map": sc.channel_map,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(end) = sc.end_time {
            obj.insert(
                "end_time".into(),
                Timestamp::from_system_time(end).to_string().into(),
            );
        }
        if let Some(d) = sc.duration_ms {
            obj.insert("duration_ms".into(), d.into());
        }
        if let Some(r) = &sc.reason {
            obj.insert("reason".into(), r.clone().into());
        }
    }
    v
}

/// `GET /v1/recordings`.
pub(super) async fn list(
    State(state): State<Arc<ApiState>>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.authorize(&headers)?;
    let filter = Filter::parse(&pairs)?;
    let root = state.root.clone();
    let all = tokio::task::spawn_blocking(move || store::scan(&root))
        .await
        .unwrap_or_default();
    let mut rows: Vec<(i64, store::Stored)> = all
        .into_iter()
        .map(|s| (unix_ms(s.sidecar.start_time), s))
        .filter(|(ms, s)| filter.keeps(s, *ms))
        .collect();
    rows.sort_by(|(a, x), (b, y)| {
        a.cmp(b)
            .then_with(|| x.sidecar.recording_uuid.cmp(&y.sidecar.recording_uuid))
    });
    if filter.descending {
        rows.reverse();
    }
    let after = filter.after.clone();
    let page: Vec<&(i64, store::Stored)> = rows
        .iter()
        .filter(|(ms, s)| match &after {
            None => true,
            Some((cms, cuuid)) => {
                let key = (*ms, s.sidecar.recording_uuid.as_str());
                let cursor = (*cms, cuuid.as_str());
                if filter.descending {
                    key < cursor
                } else {
                    key > cursor
                }
            }
        })
        .take(filter.limit + 1)
        .collect();
    let more = page.len() > filter.limit;
    let shown = page.get(..filter.limit.min(page.len())).unwrap_or_default();
    let next_cursor = if more {
        shown
            .last()
            .map(|(ms, s)| encode_cursor(*ms, &s.sidecar.recording_uuid))
    } else {
        None
    };
    let items: Vec<Value> = shown
        .iter()
        .map(|(_, s)| item(s, &state.public_url))
        .collect();
    Ok(Json(json!({
        "count": items.len(),
        "recordings": items,
        "next_cursor": next_cursor,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parsing() {
        let f = Filter::parse(&pairs(&[
            ("conversation_uuid", "c"),
            ("uuid", "u"),
            ("date_start", "2024-05-01T00:00:00Z"),
            ("limit", "5"),
            ("order", "desc"),
        ]))
        .unwrap();
        assert_eq!(f.conversation_uuid.as_deref(), Some("c"));
        assert_eq!(f.call_uuid.as_deref(), Some("u"));
        assert_eq!(f.date_start, Some(1_714_521_600_000));
        assert_eq!(f.limit, 5);
        assert!(f.descending);
        for bad_q in [
            vec![("limit", "0")],
            vec![("limit", "1001")],
            vec![("date_end", "yesterday")],
            vec![("order", "up")],
            vec![("state", "gone")],
            vec![("cursor", "!!")],
            vec![("colour", "red")],
            vec![("uuid", "a"), ("call_uuid", "b")],
            vec![("limit", "1"), ("limit", "2")],
        ] {
            let e = Filter::parse(&pairs(&bad_q)).unwrap_err();
            assert_eq!(e.code, "bad_query", "{bad_q:?}");
        }
    }

    #[test]
    fn cursor_round_trip() {
        let c = encode_cursor(1_714_521_600_123, "rec-1");
        assert_eq!(decode_cursor(&c), Some((1_714_521_600_123, "rec-1".into())));
        assert_eq!(decode_cursor("bm90aGluZw"), None);
    }
}
