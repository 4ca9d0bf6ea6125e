//! `eventMethod: "GET"` webhooks: the JSON body sent as query parameters instead, as
//! Vonage does for GET event URLs.

/// Why a body cannot become query parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The body is not JSON.
    #[error("event body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("event body is not a JSON object")]
    NotAnObject,
}

/// Turn a JSON object body into `(name, value)` pairs, in body order: strings as they
/// are, numbers and booleans as their JSON text, nested objects and arrays as compact
/// JSON, and `null` fields left out. The dispatcher URL-encodes and appends them.
pub fn query_pairs(body: &[u8]) -> Result<Vec<(String, String)>, QueryError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| QueryError::NotJson(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(QueryError::NotAnObject);
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((k, text))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_fields() {
        let body = br#"{"status":"answered","sip_code":200,"ok":true,"none":null,"dtmf":{"digits":"12","timed_out":false},"l":[1,"a"]}"#;
        let pairs = query_pairs(body).unwrap();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("status"), Some("answered"));
        assert_eq!(get("sip_code"), Some("200"));
        assert_eq!(get("ok"), Some("true"));
        assert_eq!(get("none"), None);
        assert_eq!(get("dtmf"), Some(r#"{"digits":"12","timed_out":false}"#));
        assert_eq!(get("l"), Some(r#"[1,"a"]"#));
    }

    #[test]
    fn non_objects_are_errors() {
        assert!(matches!(query_pairs(b"[1]"), Err(QueryError::NotAnObject)));
        assert!(matches!(
            query_pairs(b"\"x\""),
            Err(QueryError::NotAnObject)
        ));
        assert!(matches!(query_pairs(b"{"), Err(QueryError::NotJson(_))));
        assert!(matches!(query_pairs(b""), Err(QueryError::NotJson(_))));
    }
}
