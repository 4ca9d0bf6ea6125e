//! A real softphone as a registered user (issue 10): baresip, the Debian-packaged SIP user
//! agent (`baresip-core`), registers to callmux with digest credentials and auto-answer;
//! a SIPp call then runs an NCCO with `record` split and `connect` to that user. The phone
//! rings, answers and streams 1000 Hz from a WAV (its `aufile` source) while SIPp streams
//! 440 Hz µ-law. The recording must hold the caller left and the phone right, and the phone
//! must have heard the caller (its `sndfile` filter dumps what it decoded). A second test
//! has the phone call in as its user: challenged, admitted as alice, recorded.
//!
//! The baresip configuration templates live in tests/softphone/.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

/// tests/softphone in the repository (baresip config and accounts templates).
fn softphone_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/softphone")
}

/// Fails the test with a clear message when baresip is not installed (CI installs it).
fn require_baresip() {
    let ok = Command::new("sh")
        .arg("-c")
        .arg("command -v baresip")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "baresip is required for this test (apt-get install baresip-core; see .ci/run)"
    );
}

/// Reads a template from tests/softphone and fills its `{{NAME}}` placeholders.
fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(softphone_dir().join(template))
        .unwrap_or_else(|e| panic!("tests/softphone/{template}: {e}"));
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!text.contains("{{"), "unfilled placeholder in {template}");
    text
}

/// A 16-bit mono 8 kHz WAV of `freq` Hz made by sox: the phone's microphone.
fn wav_tone(dir: &Path, freq: u32, seconds: u32) -> PathBuf {
    let p = dir.join(format!("phone{freq}.wav"));
    sox_sine(
        &p,
        &["-r", "8000", "-c", "1", "-b", "16"],
        freq,
        f64::from(seconds),
    );
    p
}

/// Waits at most `limit` for `child` to exit on its own; whether it did (never kills).
fn wait_child_quietly(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running baresip with its own configuration directory; stopped when dropped, its log
/// printed if the test failed.
struct Baresip {
    child: Option<Child>,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Baresip {
    /// Starts baresip listening on `listen`, registering `user` at `registrar` and
    /// answering calls automatically with 30 s of `tone_hz` (a WAV sox makes in its
    /// directory) as its microphone. With `dial`
    /// (a URI and a number of seconds), it also calls that URI at once and quits after
    /// those seconds (hanging up and un-registering).
    fn start(
        listen: SocketAddr,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        tone_hz: u32,
        dial: Option<(&str, u32)>,
    ) -> Self {
        require_baresip();
        let dir = tempfile::tempdir().unwrap();
        let tone = wav_tone(dir.path(), tone_hz, 30);
        let snd = dir.path().join("snd");
        std::fs::create_dir(&snd).unwrap();
        let config = fill(
            "config",
            &[
                ("SIP_LISTEN", listen.to_string()),
                ("IP", listen.ip().to_string()),
                ("RTP_PORTS", "30000-30099".into()),
                ("TONE", tone.display().to_string()),
                ("SND_DIR", snd.display().to_string()),
                (
                    "APP_MODULES",
                    if dial.is_some() {
                        "module_app\t\tmenu.so".into()
                    } else {
                        String::new()
                    },
                ),
            ],
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        let accounts = fill(
            "accounts",
            &[
                ("USER", user.to_string()),
                ("REGISTRAR", registrar.to_string()),
                ("PASSWORD", password.to_string()),
            ],
        );
        std::fs::write(dir.path().join("accounts"), accounts).unwrap();
        let log = dir.path().join("baresip.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir.path()).arg("-v");
        if let Some((uri, seconds)) = dial {
            // The menu module runs the command; -t quits (BYE, un-REGISTER) after `seconds`.
            cmd.arg("-e")
                .arg(format!("/dial {uri}"))
                .arg("-t")
                .arg(seconds.to_string());
        }
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start baresip");
        Self {
            child: Some(child),
            dir,
            log,
        }
    }

    /// Its log so far (complete once it has been stopped: baresip buffers stdout).
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (baresip un-registers and flushes its log) and waits at most 10 s,
    /// then kills it.
    fn stop(&mut self) {
        self.stop_within(Duration::ZERO);
    }

    /// Lets baresip exit on its own (after `-t`) for at most `grace`, then stops it as
    /// [`Self::stop`] does.
    fn stop_within(&mut self, grace: Duration) {
        if let Some(child) = self.child.as_mut() {
            if wait_child_quietly(child, grace) {
                self.child = None;
                return;
            }
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        if wait_child(&mut child, Duration::from_secs(10)).is_none() {
            eprintln!("baresip did not exit on SIGTERM within 10 s; killed");
        }
    }

    /// The WAV files its `sndfile` filter wrote whose name ends with `suffix`
    /// (`-dec.wav`: what the phone heard; `-enc.wav`: what it sent).
    fn dumps(&self, suffix: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("snd"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(suffix))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        reap(
            self.child.take(),
            &format!("baresip log ({})", self.log.display()),
            || self.log_text(),
        );
    }
}

/// A server (on a fresh address) with digest auth required, user alice, and the SIPp
/// caller's address as a trusted trunk (so its INVITE is not challenged), running `ncco`
/// (or the built-in one).
///
/// MD5 only: libre 1.1 (under baresip 1.0 in Debian 12) knows no other digest algorithm and
/// gives up on the whole challenge with ENOSYS ("Register: Function not implemented") as soon
/// as any `WWW-Authenticate` names another one, even when an MD5 one is also offered.
fn alice_server(caller: IpAddr, ncco: Option<&str>) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let text = format!(
        "[sip]\nauth = \"required\"\nauth_algorithms = [\"MD5\"]\n\n\
         [registrar]\nmin_expires_s = 2\ndefault_expires_s = 60\nkeepalive_s = 0\n\n\
         [[user]]\nname = \"alice\"\npassword = \"alice-softphone-pw\"\n\n\
         [[trunk]]\nname = \"testcaller\"\nuri = \"sip:{{number}}@127.0.0.1:5999\"\nacl = [\"{caller}\"]\n"
    );
    let p = dir.path().join("callmux.toml");
    std::fs::write(&p, text).unwrap();
    let opts = ServerOptions {
        extra_args: vec!["--config".into(), p.display().to_string()],
        ncco: ncco.map(str::to_string),
        ..Default::default()
    };
    Server::start_in(dir, opts, None)
}

/// Waits at most `limit` until the server's log contains `needle`.
fn wait_log(server: &Server, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if server.log_text().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn baresip_registers_answers_a_connect_and_is_recorded_right() {
    require_baresip();
    let caller = unique_ip();
    let phone_ip = unique_ip();
    let server = alice_server(
        caller,
        Some(
            r#"[{"action":"record","split":"conversation"},{"action":"connect","endpoint":[{"type":"app","user":"alice"}]}]"#,
        ),
    );
    let listen = SocketAddr::new(phone_ip, 5090);
    let mut phone = Baresip::start(
        listen,
        server.sip,
        "alice",
        "alice-softphone-pw",
        1000,
        None,
    );
    // The phone registered (challenged, then bound) from its own address.
    assert!(
        wait_log(
            &server,
            &format!("registration user=alice src={listen} added=1"),
            Duration::from_secs(15)
        ),
        "baresip did not register"
    );
    // The caller: SIPp streams 440 Hz µ-law for 4 s and hangs up.
    Sipp::tone_caller(440, 4.0, 4000).run_ok_from(
        &server,
        caller,
        server.sip,
        &["-m", "1", "-s", "100"],
        Duration::from_secs(30),
    );
    let recs = server.wait_recordings(1, Duration::from_secs(15));
    phone.stop();
    // On SIGTERM the phone un-registers (Expires 0 for its contact): the binding is gone.
    assert!(
        wait_log(
            &server,
            &format!(
                "registration user=alice src={listen} added=0 refreshed=0 removed=1 bindings=0"
            ),
            Duration::from_secs(5)
        ),
        "baresip un-registered on exit"
    );
    let log = phone.log_text();
    assert!(
        log.contains("Call established"),
        "the phone answered the connect: {log}"
    );
    let slog = server.log_text();
    assert!(
        slog.contains("outbound leg event status=Ringing"),
        "the phone rang (180) before answering"
    );
    assert!(
        slog.contains("outbound leg answered"),
        "callmux saw the phone answer"
    );

    // The recording: caller left, phone right, for most of the call.
    assert_eq!(recs.len(), 1, "{recs:?}");
    let a = analyze(&recs[0]);
    assert_channels(&a, 2, "split recording");
    assert_duration(&a, 3500.., "the call lasted about 4 s");
    assert_mostly(&tones(&a, 0), 440.0, 30, "caller (SIPp) left");
    assert_mostly(&tones(&a, 1), 1000.0, 25, "phone (baresip) right");
    let sc = sidecar(&recs[0]);
    let phone_leg = &sc["channel_map"][1]["legs"][0];
    assert_eq!(phone_leg["role"], "callee", "{sc}");
    assert_eq!(
        phone_leg["to"], "alice",
        "channel 2 is the phone registered as alice (the user, not its Contact user): {sc}"
    );

    // What the phone heard (its decoder output): the caller's 440 Hz.
    let heard = phone.dumps("-dec.wav");
    assert_eq!(heard.len(), 1, "one call dumped by the phone: {heard:?}");
    let h = analyze(&heard[0]);
    assert_mostly(&tones(&h, 0), 440.0, 25, "the phone heard the caller");
}

#[test]
fn baresip_calls_in_as_its_user_and_is_recorded() {
    require_baresip();
    let phone_ip = unique_ip();
    // The built-in NCCO: record split (caller left, what the caller heard right), then wait.
    let server = alice_server(unique_ip(), None);
    let listen = SocketAddr::new(phone_ip, 5090);
    let target = server.uri("100");
    let mut phone = Baresip::start(
        listen,
        server.sip,
        "alice",
        "alice-softphone-pw",
        1000,
        Some((&target, 4)),
    );
    // The phone's INVITE is challenged and admitted as alice (not as a trunk).
    assert!(
        wait_log(
            &server,
            &format!("INVITE admitted src={listen} trunk=None user=Some(\"alice\")"),
            Duration::from_secs(15)
        ),
        "the phone's call was admitted as its user"
    );
    let recs = server.wait_recordings(1, Duration::from_secs(20));
    phone.stop_within(Duration::from_secs(10));
    let log = phone.log_text();
    assert!(
        log.contains("Call established"),
        "callmux answered the phone: {log}"
    );
    let a = analyze(&recs[0]);
    assert_channels(&a, 2, "split recording");
    assert_duration(&a, 3000.., "the phone hung up after about 4 s");
    assert_mostly(&tones(&a, 0), 1000.0, 25, "the phone, as caller, left");
    let sc = sidecar(&recs[0]);
    let caller_leg = &sc["channel_map"][0]["legs"][0];
    assert_eq!(
        caller_leg["from"], "alice",
        "the call is from the user: {sc}"
    );
    assert_eq!(caller_leg["to"], "100", "{sc}");
}
