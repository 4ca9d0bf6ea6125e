//! The recordings HTTP API: JWT-protected downloads (each refusal says which check failed),
//! Range requests, a file still being recorded, listing with filters and pages, deletion.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use callmux_webhook::Timestamp;
use serde_json::json;

use super::*;
use crate::common::http::{bodies, Receiver, Reply};
use crate::common::*;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_str().unwrap().to_string()
}

/// Places one call (`seconds` of a 440 Hz tone) and returns its finished recording.
fn record_one(server: &Server, seconds: &str) -> PathBuf {
    let before = server.recordings().len();
    call_ok(server, &["--tone", "440", "--seconds", seconds]);
    let files = server.wait_recordings(before + 1, Duration::from_secs(15));
    files
        .into_iter()
        .filter(|p| sidecar_state(p).as_deref() == Some("complete"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .expect("a finished recording")
}

/// Copies `template` (a real recording and its sidecar) as another recording with its own
/// ids and times, in the day directory of `start`.
pub(crate) fn clone_recording(
    root: &Path,
    template: &Path,
    id: &str,
    call: &str,
    conversation: &str,
    start: SystemTime,
    state: &str,
) -> PathBuf {
    let mut sc = sidecar(template);
    let ts = Timestamp::from_system_time(start).to_string();
    let day = root.join(&ts[0..4]).join(&ts[5..7]).join(&ts[8..10]);
    std::fs::create_dir_all(&day).unwrap();
    let ext = template.extension().unwrap().to_str().unwrap();
    let media = day.join(format!("{id}.{ext}"));
    std::fs::copy(template, &media).unwrap();
    sc["recording_uuid"] = json!(id);
    sc["call_uuid"] = json!(call);
    sc["conversation_uuid"] = json!(conversation);
    sc["start_time"] = json!(ts);
    sc["end_time"] =
        json!(Timestamp::from_system_time(start + Duration::from_secs(60)).to_string());
    sc["state"] = json!(state);
    sc["file"] = json!(format!("{id}.{ext}"));
    for ch in sc["channel_map"].as_array_mut().unwrap() {
        for leg in ch["legs"].as_array_mut().unwrap() {
            leg["leg_uuid"] = json!(call);
        }
    }
    std::fs::write(
        media.with_extension("json"),
        serde_json::to_vec_pretty(&sc).unwrap(),
    )
    .unwrap();
    media
}

#[test]
fn download_needs_a_valid_token_and_every_refusal_says_why() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let mut args = api_args("jwt/application.key");
    args.extend([
        "--public-url".into(),
        "https://recordings.example.test/base/".into(),
        "--event-url".into(),
        receiver.url("/events"),
    ]);
    let server = Server::start(ServerOptions {
        extra_args: args,
        ..Default::default()
    });
    let file = record_one(&server, "2");
    let id = stem(&file);
    let bytes = std::fs::read(&file).unwrap();
    let path = format!("/v1/files/{id}");

    // The record event points at the public URL.
    let reqs = receiver.wait_until(Duration::from_secs(15), "the record event", |r| {
        bodies(r, "/events")
            .iter()
            .any(|b| b["recording_uuid"].is_string())
    });
    let ev = bodies(&reqs, "/events")
        .into_iter()
        .find(|b| b["recording_uuid"].is_string())
        .unwrap();
    assert_eq!(
        ev["recording_url"],
        format!("https://recordings.example.test/base/v1/files/{id}")
    );

    // A valid token: the exact bytes.
    let ok = get_authed(server.http, &path);
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.body, bytes);
    assert_eq!(ok.header("Content-Type"), Some("audio/wav"));
    assert_eq!(ok.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(ok.header("X-Recording-State"), Some("complete"));
    // The path of earlier versions' recording_url still works (with a token).
    let legacy = get_authed(server.http, &format!("/v1/recordings/{id}"));
    assert_eq!((legacy.status, legacy.body.len()), (200, bytes.len()));

    // Ranges.
    let range = |spec: &str| {
        let t = bearer(&token());
        request(
            server.http,
            "GET",
            &path,
            &[("Authorization", &t), ("Range", spec)],
        )
    };
    let r = range("bytes=100-199");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[100..200]);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 100-199/{}", bytes.len()).as_str())
    );
    let r = range("bytes=-44");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[bytes.len() - 44..]);
    let r = range(&format!("bytes={}-", bytes.len() - 10));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &bytes[bytes.len() - 10..])
    );
    let r = range(&format!("bytes={}-", bytes.len()));
    assert_eq!(r.status, 416);
    assert_eq!(r.error(), "range_not_satisfiable");
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{}", bytes.len()).as_str())
    );
    // Several ranges are not served piecewise: the whole file.
    let r = range("bytes=0-1,5-6");
    assert_eq!((r.status, r.body.len()), (200, bytes.len()));

    // Every refusal names the check that failed.
    let key = data("jwt/application.key");
    let with_claims = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = good_claims();
        f(&mut c);
        jwt_with(&key, &c)
    };
    let expired = with_claims(&|c| {
        c["iat"] = json!(now_s() - 3600);
        c["exp"] = json!(now_s() - 120);
    });
    let not_yet = with_claims(&|c| c["nbf"] = json!(now_s() + 600));
    let future_iat = with_claims(&|c| c["iat"] = json!(now_s() + 600));
    let wrong_app = with_claims(&|c| c["application_id"] = json!("someone-else"));
    let no_jti = with_claims(&|c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    let wrong_key = jwt_with(&data("jwt/other.key"), &good_claims());
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no header", None, 401, "missing_token"),
        (
            "not bearer",
            Some("Basic YTpi".into()),
            401,
            "malformed_token",
        ),
        ("garbage", Some(bearer("not.a.jwt")), 401, "malformed_token"),
        ("expired", Some(bearer(&expired)), 401, "token_expired"),
        (
            "nbf in the future",
            Some(bearer(&not_yet)),
            401,
            "token_not_yet_valid",
        ),
        (
            "iat in the future",
            Some(bearer(&future_iat)),
            401,
            "token_not_yet_valid",
        ),
        (
            "another key",
            Some(bearer(&wrong_key)),
            401,
            "bad_signature",
        ),
        (
            "another application",
            Some(bearer(&wrong_app)),
            403,
            "wrong_application",
        ),
        ("no jti", Some(bearer(&no_jti)), 401, "missing_claim"),
    ];
    for (what, auth, status, code) in cases {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        let r = request(server.http, "GET", &path, &headers);
        assert_eq!(
            r.status,
            status,
            "{what}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let body = r.json();
        assert_eq!(body["error"], code, "{what}: {body}");
        assert_eq!(body["status"], status, "{what}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.len() > 10),
            "{what}: {body}"
        );
        if status == 401 {
            assert!(
                r.header("WWW-Authenticate")
                    .is_some_and(|v| v.starts_with("Bearer")),
                "{what}: a 401 carries a Bearer challenge"
            );
        }
    }
    // A token is good for one request.
    let once = bearer(&token());
    let first = request(server.http, "GET", &path, &[("Authorization", &once)]);
    assert_eq!(first.status, 200);
    let again = request(server.http, "GET", &path, &[("Authorization", &once)]);
    assert_eq!(
        (again.status, again.error()),
        (401, "token_replayed".into())
    );

    // Unknown and malformed ids.
    let r = get_authed(
        server.http,
        "/v1/files/00000000-0000-4000-8000-000000000000",
    );
    assert_eq!((r.status, r.error()), (404, "not_found".into()));
    let r = get_authed(server.http, "/v1/files/not.an.id");
    assert_eq!((r.status, r.error()), (400, "bad_id".into()));
    // Unknown ids are answered only after the token: no probing without one.
    let r = request(server.http, "GET", "/v1/files/nope", &[]);
    assert_eq!(r.status, 401);

    // /healthz keeps its fields.
    let (status, body) = http_get(server.http, "/healthz").unwrap();
    assert_eq!(status, 200);
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    for k in ["active_calls", "rtp_ports_in_use", "conferences"] {
        assert!(h[k].is_u64(), "{k} in {h}");
    }
}

#[test]
fn public_key_file_works_and_no_key_means_no_service() {
    // The public PEM alone verifies the application's tokens.
    let server = Server::start(ServerOptions {
        extra_args: api_args("jwt/application.pub"),
        ..Default::default()
    });
    let file = record_one(&server, "2");
    let path = format!("/v1/files/{}", stem(&file));
    let r = get_authed(server.http, &path);
    assert_eq!(
        (r.status, r.body.len() as u64),
        (200, std::fs::metadata(&file).unwrap().len())
    );
    drop(server);

    // Without a key the API serves nothing, and says why.
    let bare = Server::start(ServerOptions::default());
    let file = record_one(&bare, "2");
    let path = format!("/v1/files/{}", stem(&file));
    for p in [path.as_str(), "/v1/recordings"] {
        let r = get_authed(bare.http, p);
        assert_eq!(r.status, 503, "{p}");
        assert_eq!(r.error(), "api_not_configured");
        assert!(r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("--application-key"));
    }
    drop(bare);

    // --recordings-api-open: no token needed (local demos).
    let open = Server::start(ServerOptions {
        extra_args: vec!["--recordings-api-open".into()],
        ..Default::default()
    });
    let file = record_one(&open, "2");
    let r = request(open.http, "GET", &format!("/v1/files/{}", stem(&file)), &[]);
    assert_eq!(r.status, 200);
    assert!(open.log_text().contains("the recordings API is open"));
}

#[test]
fn bad_api_configuration_exits_with_code_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let ip = unique_ip();
    for (args, key) in [
        (vec!["--application-id", "x"], "http.application_key"),
        (
            vec![
                "--application-key",
                data("jwt/application.pub").to_str().unwrap(),
            ],
            "http.application_id",
        ),
        (
            vec![
                "--application-id",
                "x",
                "--application-key",
                junk.to_str().unwrap(),
            ],
            "http.application_key",
        ),
        (vec!["--public-url", "ftp://x"], "http.public_url"),
    ] {
        assert_exits_2_naming(serve_at(ip, dir.path(), &args), key, &format!("{args:?}"));
    }
}

#[test]
fn list_filters_pages_and_delete() {
    let server = Server::start(ServerOptions {
        extra_args: api_args("jwt/application.key"),
        ..Default::default()
    });
    let real = record_one(&server, "2");
    let real_id = stem(&real);
    let real_call = sidecar(&real)["call_uuid"].as_str().unwrap().to_string();
    let root = server.recordings_dir();
    // Five more, on five days of May 2024, in two conversations.
    let day0 = Timestamp::parse("2024-05-01T10:00:00.000Z")
        .unwrap()
        .to_system_time();
    let mut synthetic = Vec::new();
    for i in 0..5u64 {
        let id = format!("synthetic-{i}");
        let conv = if i < 3 { "conv-A" } else { "conv-B" };
        let start = day0 + Duration::from_secs(86_400 * i);
        clone_recording(
            &root,
            &real,
            &id,
            &format!("call-{i}"),
            conv,
            start,
            "complete",
        );
        synthetic.push(id);
    }
    let ids = |r: &HttpAnswer| -> Vec<String> {
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["recording_uuid"].as_str().unwrap().to_string())
            .collect()
    };

    // Everything, oldest first.
    let all = get_authed(server.http, "/v1/recordings");
    let mut expected = synthetic.clone();
    expected.push(real_id.clone());
    assert_eq!(ids(&all), expected);
    let body = all.json();
    assert_eq!(body["count"], 6);
    assert!(body["next_cursor"].is_null());
    let first = &body["recordings"][0];
    assert_eq!(first["uuid"], "call-0");
    assert_eq!(first["conversation_uuid"], "conv-A");
    assert_eq!(first["state"], "complete");
    assert_eq!(first["format"], "wav");
    assert_eq!(first["start_time"], "2024-05-01T10:00:00.000Z");
    assert_eq!(first["end_time"], "2024-05-01T10:01:00.000Z");
    assert_eq!(
        first["recording_url"],
        format!("http://{}/v1/files/synthetic-0", server.http)
    );
    assert_eq!(first["size"], std::fs::metadata(&real).unwrap().len());
    assert!(first["channel_map"].is_array());

    // Filters.
    let q = |query: &str| ids(&get_authed(server.http, &format!("/v1/recordings?{query}")));
    assert_eq!(
        q("conversation_uuid=conv-B"),
        ["synthetic-3", "synthetic-4"]
    );
    assert_eq!(q("uuid=call-1"), ["synthetic-1"]);
    assert_eq!(
        q(&format!("call_uuid={real_call}")),
        std::slice::from_ref(&real_id)
    );
    assert_eq!(
        q("date_start=2024-05-02T00:00:00Z&date_end=2024-05-04T00:00:00Z"),
        ["synthetic-1", "synthetic-2"]
    );
    assert_eq!(
        q("conversation_uuid=conv-A&date_start=2024-05-02T00:00:00Z"),
        ["synthetic-1", "synthetic-2"]
    );
    assert_eq!(q("state=recording").len(), 0);
    assert_eq!(q("order=desc&limit=1"), [real_id]);

    // Pages of two, following next_cursor, cover everything once, in order.
    let mut seen = Vec::new();
    let mut url = "/v1/recordings?limit=2".to_string();
    for page in 0.. {
        assert!(page < 5, "pagination does not end");
        let r = get_authed(server.http, &url);
        let page_ids = ids(&r);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        match r.json()["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/recordings?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // Bad queries say what is wrong.
    for bad in [
        "limit=0",
        "date_start=yesterday",
        "colour=red",
        "cursor=%21%21",
    ] {
        let r = get_authed(server.http, &format!("/v1/recordings?{bad}"));
        assert_eq!((r.status, r.error()), (400, "bad_query".into()), "{bad}");
    }
    // The list needs a token too.
    assert_eq!(
        request(server.http, "GET", "/v1/recordings", &[]).status,
        401
    );

    // Delete: file and sidecar go, the id is gone, a second delete is 404.
    let victim = root.join("2024/05/01/synthetic-0.wav");
    assert!(victim.exists());
    let del = |id: &str| {
        let t = bearer(&token());
        request(
            server.http,
            "DELETE",
            &format!("/v1/files/{id}"),
            &[("Authorization", &t)],
        )
    };
    assert_eq!(del("synthetic-0").status, 204);
    assert!(!victim.exists() && !victim.with_extension("json").exists());
    assert_eq!(get_authed(server.http, "/v1/files/synthetic-0").status, 404);
    assert_eq!(del("synthetic-0").status, 404);
    assert_eq!(q("").len(), 5);
    // Deleting needs a token.
    let r = request(server.http, "DELETE", "/v1/files/synthetic-1", &[]);
    assert_eq!(r.status, 401);
    assert!(root.join("2024/05/02/synthetic-1.wav").exists());
}

#[test]
fn a_recording_in_progress_is_served_as_far_as_written_and_cannot_be_deleted() {
    let server = Server::start(ServerOptions {
        extra_args: api_args("jwt/application.key"),
        ..Default::default()
    });
    let (ip, uri) = (server.ip, server.uri("100"));
    let caller =
        std::thread::spawn(move || callmux_call(ip, &uri, &["--tone", "440", "--seconds", "6"]));
    // Wait until the file has audio on disk.
    let deadline = Instant::now() + Duration::from_secs(10);
    let file = loop {
        if let Some(p) = server.recordings().into_iter().next() {
            if std::fs::metadata(&p).is_ok_and(|m| m.len() > 16_000) {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "no recording in progress");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sidecar_state(&file).as_deref(), Some("recording"));
    let id = stem(&file);
    let path = format!("/v1/files/{id}");
    let r = get_authed(server.http, &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Recording-State"), Some("recording"));
    let on_disk_after = std::fs::metadata(&file).unwrap().len() as usize;
    assert!(
        r.body.len() > 16_000 && r.body.len() <= on_disk_after,
        "{}",
        r.body.len()
    );
    assert_eq!(r.body[..4], *b"RIFF");
    // What was served is what is on disk (the file only grows; only its header changes).
    let now = std::fs::read(&file).unwrap();
    let n = r.body.len();
    assert_eq!(r.body[n - 4000..], now[n - 4000..n]);
    // Listed as recording, with the size so far.
    let l = get_authed(server.http, "/v1/recordings?state=recording");
    let items = l.json()["recordings"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert!(items[0]["size"].as_u64().unwrap() > 16_000);
    assert!(items[0].get("end_time").is_none());
    // Not deletable while recorded.
    let t = bearer(&token());
    let d = request(server.http, "DELETE", &path, &[("Authorization", &t)]);
    assert_eq!((d.status, d.error()), (409, "recording_in_progress".into()));
    assert!(file.exists());
    let out = caller.join().unwrap();
    assert!(out.status.success());
    server.wait_recordings(1, Duration::from_secs(10));
    let t = bearer(&token());
    let d = request(server.http, "DELETE", &path, &[("Authorization", &t)]);
    assert_eq!(d.status, 204);
    assert!(!file.exists());
}
