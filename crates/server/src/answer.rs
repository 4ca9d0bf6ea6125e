//! Requests whose answer is an NCCO: the answer URL when a call arrives, and an `input`
//! action's event URL when the caller's digits are submitted. Both use short time-outs
//! (1 s to connect, 5 s in all) and the fallback answer URL when the first URL cannot be
//! reached or answers with an HTTP error; both validate what comes back with the server's
//! capabilities, so an NCCO problem is reported with its JSON path.

use std::time::Duration;

use callmux_ncco::{parse_ncco, Capabilities, Ncco, NccoError};
use callmux_webhook::{query_pairs, HttpMethod};

/// Connect time-out of NCCO requests.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Whole-request time-out of NCCO requests.
pub(crate) const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer body read.
const MAX_BODY: usize = callmux_ncco::MAX_NCCO_BYTES + 1;

/// Why no NCCO came back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FetchError {
    /// The URL could not be reached in time, or answered with an HTTP error (the fallback
    /// URL is tried after this).
    Unreachable(String),
    /// A 2xx answer with no body (an input answer without an NCCO).
    Empty(String),
    /// A body that is not a valid NCCO (not JSON, unknown action, bad field…).
    Invalid { url: String, error: NccoError },
}

impl FetchError {
    /// The reason in words, for the `failed` event and the SIP `Warning`.
    pub(crate) fn reason(&self) -> String {
        match self {
            Self::Unreachable(r) | Self::Empty(r) => r.clone(),
            Self::Invalid { url, error } => format!("{url}: invalid NCCO: {error}"),
        }
    }
}

/// The HTTP client for NCCO requests (and for fetching stream audio).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .user_agent(concat!("callmux/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends `body` (a JSON object) to `url`, then to `fallback` if `url` is unreachable or
/// answers non-2xx, and parses the answer as an NCCO.
pub(crate) async fn fetch_ncco(
    client: &reqwest::Client,
    url: &str,
    fallback: Option<&str>,
    method: HttpMethod,
    body: &serde_json::Value,
    caps: &Capabilities,
) -> Result<Ncco, FetchError> {
    match fetch_one(client, url, method, body, caps).await {
        Err(FetchError::Unreachable(first)) => match fallback {
            Some(fb) => fetch_one(client, fb, method, body, caps)
                .await
                .map_err(|e| match e {
                    FetchError::Unreachable(second) => {
                        FetchError::Unreachable(format!("{first}; fallback {second}"))
                    }
                    other => other,
                }),
            None => Err(FetchError::Unreachable(first)),
        },
        other => other,
    }
}

async fn fetch_one(
    client: &reqwest::Client,
    url: &str,
    method: HttpMethod,
    body: &serde_json::Value,
    caps: &Capabilities,
) -> Result<Ncco, FetchError> {
    let request = match method {
        HttpMethod::Get => {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            let pairs = query_pairs(&bytes).unwrap_or_default();
            client.get(url).query(&pairs)
        }
        HttpMethod::Post => client.post(url).json(body),
    };
    let response = request
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(format!("{url}: {}", describe(&e))))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Unreachable(format!("{url}: HTTP {status}")));
    }
    let bytes = read_limited(response, MAX_BODY)
        .await
        .map_err(|e| FetchError::Unreachable(format!("{url}: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FetchError::Empty(format!(
            "{url}: HTTP {status} with no NCCO"
        )));
    }
    parse_ncco(&bytes, caps).map_err(|error| FetchError::Invalid {
        url: url.to_string(),
        error,
    })
}

/// Reads a body, giving up past `limit` bytes (the time-out of the client still applies).
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > limit {
                    return Err(format!("answer larger than {limit} bytes"));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// A reqwest error in words, saying which time-out ran out.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        if e.is_connect() {
            format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())
        } else {
            format!("no answer within {} s", TOTAL_TIMEOUT.as_secs())
        }
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        let mut last = String::from("connection failed");
        while let Some(s) = source {
            last = s.to_string();
            source = s.source();
        }
        format!("cannot connect: {last}")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_url_and_the_path() {
        let e = FetchError::Invalid {
            url: "http://a/answer".into(),
            error: parse_ncco(br#"[{"action":"dance"}]"#, &Capabilities::all()).unwrap_err(),
        };
        let r = e.reason();
        assert!(
            r.starts_with("http://a/answer: invalid NCCO: $[0].action"),
            "{r}"
        );
    }
}
