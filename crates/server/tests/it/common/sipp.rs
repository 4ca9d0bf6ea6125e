//! SIPp runs: scenario templates with `{{NAME}}` placeholders filled into a run's own
//! directory, the tone they stream (made by sox into that same directory), and running
//! SIPp as a bounded UAC or a background UAS.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{require_tool, Server};

/// A SIPp run: a scenario with its placeholders filled, in a directory of its own.
pub struct Sipp {
    pub scenario: PathBuf,
    pub dir: tempfile::TempDir,
}

/// tests/sipp in the repository.
pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp")
}

/// A scenario under crates/server/tests/data/sipp (those that only these tests use).
pub fn data_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sipp")
        .join(name)
}

/// Reads `template` and replaces its `{{NAME}}` placeholders; fails on any left unfilled.
pub fn fill_template(template: &Path, vars: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(template)
        .unwrap_or_else(|e| panic!("scenario {}: {e}", template.display()));
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(
        !text.contains("{{"),
        "unfilled placeholder in {}",
        template.display()
    );
    text
}

/// Writes `seconds` of a `freq` Hz sine at half scale to `path`, in the format sox's output
/// options `format` give, made by sox so the encoder under test is not also the one
/// producing the test input.
pub fn sox_sine(path: &Path, format: &[&str], freq: u32, seconds: f64) {
    require_tool("sox");
    let st = Command::new("sox")
        .arg("-n")
        .args(format)
        .arg(path)
        .args([
            "synth",
            &format!("{seconds}"),
            "sine",
            &freq.to_string(),
            "vol",
            "0.5",
        ])
        .status()
        .expect("sox");
    assert!(st.success(), "sox could not write {}", path.display());
}

/// Writes `seconds` of a `freq` Hz tone as raw 8 kHz µ-law (SIPp rtp_stream input).
pub fn ulaw_tone(dir: &Path, freq: u32, seconds: f64) -> PathBuf {
    let p = dir.join(format!("tone{freq}.ul"));
    sox_sine(&p, &["-r", "8000", "-c", "1", "-t", "ul"], freq, seconds);
    p
}

impl Sipp {
    /// Prepares `scenario` (a file in tests/sipp) with placeholders replaced.
    pub fn prepare(scenario: &str, vars: &[(&str, String)]) -> Self {
        Self::from_template(&sipp_dir().join(scenario), vars)
    }

    /// Prepares the scenario at `template` (anywhere) with placeholders replaced.
    pub fn from_template(template: &Path, vars: &[(&str, String)]) -> Self {
        Self::fill_into(tempfile::tempdir().unwrap(), template, vars)
    }

    /// tests/sipp/uac_tone.xml: a caller streaming `hz` Hz µ-law for `seconds`, hanging up
    /// `pause_ms` after the answer.
    pub fn tone_caller(hz: u32, seconds: f64, pause_ms: u64) -> Self {
        Self::tone_template(&sipp_dir().join("uac_tone.xml"), hz, seconds, pause_ms, &[])
    }

    /// A scenario with `{{TONE}}` (a µ-law file of `hz` Hz for `seconds`, made in the run's
    /// directory) and `{{PAUSE_MS}}` filled, plus any `more` placeholders.
    pub fn tone_template(
        template: &Path,
        hz: u32,
        seconds: f64,
        pause_ms: u64,
        more: &[(&str, String)],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tone = ulaw_tone(dir.path(), hz, seconds);
        let mut vars = vec![
            ("TONE", tone.display().to_string()),
            ("PAUSE_MS", pause_ms.to_string()),
        ];
        vars.extend(more.iter().cloned());
        Self::fill_into(dir, template, &vars)
    }

    fn fill_into(dir: tempfile::TempDir, template: &Path, vars: &[(&str, String)]) -> Self {
        require_tool("sipp");
        let text = fill_template(template, vars);
        let path = dir
            .path()
            .join(template.file_name().expect("a scenario file"));
        std::fs::write(&path, text).unwrap();
        Self {
            scenario: path,
            dir,
        }
    }

    /// The scenario's file name, for messages.
    pub fn name(&self) -> String {
        self.scenario
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// Runs SIPp as a UAC against `target` from `ip`, with extra arguments; bounded by
    /// `timeout`.
    pub fn run(&self, ip: IpAddr, target: SocketAddr, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new("sipp");
        cmd.arg(target.to_string())
            .arg("-sf")
            .arg(&self.scenario)
            .arg("-i")
            .arg(ip.to_string())
            .arg("-p")
            .arg("5070")
            .arg("-mi")
            .arg(ip.to_string())
            .arg("-mp")
            .arg("16000")
            .arg("-nostdin")
            .arg("-timeout")
            .arg(format!("{}s", timeout.as_secs()))
            .arg("-timeout_error")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd.output().expect("run sipp")
    }

    /// Runs SIPp from the server's own address against its SIP port and asserts that the
    /// scenario passed.
    pub fn run_ok(&self, server: &Server, args: &[&str], timeout: Duration) -> Output {
        self.run_ok_from(server, server.ip, server.sip, args, timeout)
    }

    /// Runs SIPp from `ip` against `target` (the server, or something in front of it) and
    /// asserts that the scenario passed, failing with SIPp's output and the server's log.
    pub fn run_ok_from(
        &self,
        server: &Server,
        ip: IpAddr,
        target: SocketAddr,
        args: &[&str],
        timeout: Duration,
    ) -> Output {
        let out = self.run(ip, target, args, timeout);
        assert!(
            out.status.success(),
            "SIPp {} from {ip} to {target} {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}\n--- server log\n{}",
            self.name(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            server.log_text()
        );
        out
    }

    /// Starts SIPp as a UAS on `ip:port` (background); returns the child to wait on.
    pub fn spawn_uas(&self, ip: IpAddr, port: u16, media_port: u16, args: &[&str]) -> Child {
        Command::new("sipp")
            .arg("-sf")
            .arg(&self.scenario)
            .arg("-i")
            .arg(ip.to_string())
            .arg("-p")
            .arg(port.to_string())
            .arg("-mi")
            .arg(ip.to_string())
            .arg("-mp")
            .arg(media_port.to_string())
            .arg("-nostdin")
            .arg("-timeout")
            .arg("60s")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp UAS")
    }
}
