//! Operations: `callmux inspect --png` (one waveform panel per channel, labelled from the
//! sidecar), the Docker Compose files (validated for real by `docker-compose config`, always)
//! and the Docker image (built, and a call recorded in it, only where a Docker daemon runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// inspect --png

/// Colours the image uses (crates/server/src/inspect/waveform.rs).
const FRAME: [u8; 3] = [64, 64, 64];
const WAVE: [u8; 3] = [31, 119, 180];
const JOIN: [u8; 3] = [44, 160, 44];
const TEXT: [u8; 3] = [0, 0, 0];

/// A decoded RGB image.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn load(path: &Path) -> Self {
        let decoder = png::Decoder::new(std::fs::File::open(path).expect("open png"));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("png frame");
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected colour type {other:?}"),
        };
        let (width, height) = (info.width as usize, info.height as usize);
        let mut rgb = Vec::with_capacity(width * height * 3);
        for px in buf[..info.buffer_size()].chunks(channels) {
            rgb.extend_from_slice(&px[..3]);
        }
        Self { width, height, rgb }
    }

    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Rows where at least 90 % of the pixels have the frame colour: each panel's top and
    /// bottom border.
    fn frame_rows(&self) -> Vec<usize> {
        (0..self.height)
            .filter(|&y| {
                (0..self.width).filter(|&x| self.px(x, y) == FRAME).count() * 10 >= self.width * 9
            })
            .collect()
    }
}

/// One panel: the frame's corners (inclusive).
#[derive(Debug, Clone, Copy)]
struct Panel {
    x0: usize,
    x1: usize,
    top: usize,
    bottom: usize,
}

impl Panel {
    fn inner_width(&self) -> usize {
        self.x1 - self.x0 - 1
    }

    /// The pixel column of time `ms` in a recording of `duration_ms`.
    fn column(&self, ms: u64, duration_ms: u64) -> usize {
        self.x0 + 1 + (ms as usize * self.inner_width() / duration_ms as usize)
    }

    /// Waveform pixels in column `x`.
    fn wave_pixels(&self, img: &Image, x: usize) -> usize {
        (self.top + 1..self.bottom)
            .filter(|&y| img.px(x, y) == WAVE)
            .count()
    }

    fn height(&self) -> usize {
        self.bottom - self.top - 1
    }
}

/// Finds the panels: pairs of frame rows, with the frame's left and right columns.
fn panels(img: &Image) -> Vec<Panel> {
    let rows = img.frame_rows();
    assert!(
        rows.len().is_multiple_of(2),
        "frame rows come in pairs: {rows:?}"
    );
    rows.chunks(2)
        .map(|pair| {
            let (top, bottom) = (pair[0], pair[1]);
            let mid = (top + bottom) / 2;
            let x0 = (0..img.width)
                .find(|&x| img.px(x, mid) == FRAME)
                .expect("left border");
            let x1 = (0..img.width)
                .rev()
                .find(|&x| img.px(x, mid) == FRAME)
                .expect("right border");
            assert!(bottom > top + 20 && x1 > x0 + 100, "{pair:?} {x0} {x1}");
            Panel {
                x0,
                x1,
                top,
                bottom,
            }
        })
        .collect()
}

fn inspect_png(file: &Path, out: &Path) -> String {
    let o = output_within(
        {
            let mut c = Command::new(bin());
            c.arg("inspect").arg(file).arg("--png").arg(out);
            c
        },
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "inspect --png failed: {stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// Checks each panel against the recording's own analysis: where a 100 ms window of a
/// channel is loud, its panel's columns hold a tall envelope; where it is digital silence,
/// they hold none. Returns (loud columns, silent columns) checked per channel.
fn check_panels_against_audio(img: &Image, panels: &[Panel], rec: &Path) -> Vec<(usize, usize)> {
    let a = analyze(rec);
    assert_eq!(panels.len(), a.per_channel.len());
    let mut checked = Vec::new();
    for (ch, (p, analysis)) in panels.iter().zip(&a.per_channel).enumerate() {
        let (mut loud, mut loud_ok, mut silent, mut silent_ok) = (0, 0, 0, 0);
        let ws = &analysis.windows;
        for (i, w) in ws.iter().enumerate() {
            // Only windows whose neighbours agree: a sound that starts or stops inside a
            // window makes it loud on average but silent in part.
            if i == 0 || i + 1 >= ws.len() || w.start_ms + 100 > a.duration_ms {
                continue;
            }
            let around = &ws[i - 1..=i + 1];
            // Columns well inside the window (its edges may share a column with the next).
            let (c0, c1) = (
                p.column(w.start_ms + 20, a.duration_ms),
                p.column(w.start_ms + 80, a.duration_ms),
            );
            for x in c0..=c1 {
                let n = p.wave_pixels(img, x);
                if around.iter().all(|w| w.rms_dbfs > -30.0) {
                    loud += 1;
                    loud_ok += usize::from(n * 5 >= p.height()); // ≥ 20 % of the panel
                } else if around.iter().all(|w| w.rms_dbfs <= -100.0) {
                    silent += 1;
                    silent_ok += usize::from(n == 0);
                }
            }
        }
        assert!(
            loud_ok * 100 >= loud * 95,
            "ch{}: only {loud_ok} of {loud} loud columns show the waveform",
            ch + 1
        );
        assert!(
            silent_ok * 100 >= silent * 98,
            "ch{}: {} of {silent} silent columns show a waveform",
            ch + 1,
            silent - silent_ok
        );
        checked.push((loud, silent));
    }
    checked
}

#[test]
fn inspect_png_draws_one_panel_per_channel_with_audio_where_the_channel_has_audio() {
    // A 3-channel call: the caller (440 Hz) throughout, B (1000 Hz) for its first 2 s then
    // hangs up, then C (1700 Hz) for 2 s (the seed example of tests/it/bridge.rs).
    let ip = unique_ip();
    let b = Answerer::tone(ip, 5081, 1000, 2);
    let c = Answerer::tone(ip, 5082, 1700, 2);
    let server = Server::with_ncco_at(
        ip,
        &format!(
            r#"[{{"action":"record","split":"conversation","channels":3}},{},{}]"#,
            connect_ncco(&b.uri("b")),
            connect_ncco(&c.uri("c"))
        ),
    );
    call_ok(&server, &["--tone", "440", "--seconds", "20"]);
    let three = server.wait_recordings(1, Duration::from_secs(10))[0].clone();

    // A 2-channel (split) call: the caller's tone in ch1, ch2 (what it heard) silent.
    let split = Server::start(ServerOptions::default());
    call_ok(&split, &["--tone", "440", "--seconds", "2"]);
    let two = split.wait_recordings(1, Duration::from_secs(10))[0].clone();

    let dir = tempfile::tempdir().unwrap();
    let png3 = dir.path().join("three.png");
    let png2 = dir.path().join("two.png");
    let stdout = inspect_png(&three, &png3);
    assert!(stdout.contains("3 panel(s)"), "{stdout}");
    inspect_png(&two, &png2);
    let (img3, img2) = (Image::load(&png3), Image::load(&png2));

    // One panel per channel, the image growing with the channels.
    let (p3, p2) = (panels(&img3), panels(&img2));
    assert_eq!(p3.len(), 3, "panels of the 3-channel file: {p3:?}");
    assert_eq!(p2.len(), 2, "panels of the 2-channel file: {p2:?}");
    assert_eq!(img3.width, img2.width);
    assert!(
        img3.height > img2.height,
        "{} vs {}",
        img3.height,
        img2.height
    );
    for p in p3.iter().chain(&p2) {
        assert_eq!((p.x0, p.x1), (p3[0].x0, p3[0].x1), "same time axis");
    }

    // Waveform pixels where each channel has audio, none where it is silent.
    let c3 = check_panels_against_audio(&img3, &p3, &three);
    let c2 = check_panels_against_audio(&img2, &p2, &two);
    // Both cases occur where expected: ch2 (B) and ch3 (C) are each loud for part of the
    // call and silent for another part; the split file's ch2 is silent throughout.
    for (ch, (loud, silent)) in c3.iter().enumerate().skip(1) {
        assert!(
            *loud > 100 && *silent > 100,
            "ch{}: {loud} loud, {silent} silent columns",
            ch + 1
        );
    }
    assert!(c3[0].0 > 500, "ch1 loud throughout: {:?}", c3[0]);
    assert!(c2[0].0 > 500 && c2[1].0 == 0 && c2[1].1 > 500, "{c2:?}");
    // B is heard before C: the first loud column of ch2 is left of the first of ch3.
    let a = analyze(&three);
    let first_loud = |ch: usize| {
        a.per_channel[ch]
            .windows
            .iter()
            .find(|w| w.rms_dbfs > -30.0)
            .map(|w| w.start_ms)
            .unwrap()
    };
    assert!(first_loud(1) + 1000 < first_loud(2));
    // The first loud 100 ms window of ch3 may hold only C's first few ms (B hangs up just
    // before C is called): look 300 ms after that window's start, where only C plays.
    let x_c = p3[2].column(first_loud(2) + 300, a.duration_ms);
    assert!(
        p3[1].wave_pixels(&img3, x_c) == 0 && p3[2].wave_pixels(&img3, x_c) > 20,
        "after C joins, ch3 has the waveform and ch2 has none: column {x_c}, ch2 {} px, \
         ch3 {} px; first loud ch2 {} ms, ch3 {} ms of {} ms; {}",
        p3[1].wave_pixels(&img3, x_c),
        p3[2].wave_pixels(&img3, x_c),
        first_loud(1),
        first_loud(2),
        a.duration_ms,
        three.display()
    );

    // Leg labels and join markers from the sidecar: text above every panel, and C's join
    // marker (green) in panel 3 near C's join time.
    let sc = sidecar(&three);
    for (i, p) in p3.iter().enumerate() {
        let strip_top = if i == 0 { 40 } else { p3[i - 1].bottom + 1 };
        let text_px = (strip_top..p.top)
            .flat_map(|y| (0..img3.width).map(move |x| (x, y)))
            .filter(|&(x, y)| img3.px(x, y) == TEXT)
            .count();
        assert!(text_px > 100, "label strip of ch{} has text", i + 1);
    }
    let joined_c = sc["channel_map"][2]["legs"][0]["joined_ms"]
        .as_u64()
        .unwrap();
    assert!(joined_c > 1000, "{sc}");
    let xj = p3[2].column(joined_c, a.duration_ms);
    let marker = (xj.saturating_sub(2)..=xj + 2)
        .flat_map(|x| (p3[2].top + 1..p3[2].bottom).map(move |y| (x, y)))
        .filter(|&(x, y)| img3.px(x, y) == JOIN)
        .count();
    assert!(marker > 20, "join marker of C at {joined_c} ms (x {xj})");
}

#[test]
fn inspect_png_refuses_a_name_that_is_not_png() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("t.wav");
    http::tone_wav(&wav, 16_000, 440.0, 0.5);
    let o = Command::new(bin())
        .arg("inspect")
        .arg(&wav)
        .arg("--png")
        .arg(dir.path().join("t.jpg"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("must end in .png"));
    // Without a sidecar: one unlabelled panel.
    let out = dir.path().join("t.png");
    let stdout = inspect_png(&wav, &out);
    assert!(stdout.contains("1 panel(s)"), "{stdout}");
    assert_eq!(panels(&Image::load(&out)).len(), 1);
}

// ---------------------------------------------------------------------------------------
// Docker

/// `docker compose` (v2 plugin) if it works, else `docker-compose` (v1, Debian's package).
fn compose_command() -> Option<Vec<String>> {
    let works = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if works("docker-compose", &["version"]) {
        Some(vec!["docker-compose".into()])
    } else {
        None
    }
}

fn compose(cmd: &[String], file: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..])
        .arg("-f")
        .arg(file)
        .args(args)
        .current_dir(repo_root())
        // Unset: the files must not depend on anything in the caller's environment.
        .env_remove("CALLMUX_MEDIA_IP");
    output_within(c, Duration::from_secs(60))
}

/// The source paths of every COPY without --from in a Dockerfile.
fn copy_sources(dockerfile: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dockerfile).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"COPY") || words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let args: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        out.extend(args[..args.len() - 1].iter().map(|s| s.to_string()));
    }
    out
}

#[test]
fn compose_files_are_valid_and_refer_to_files_that_exist() {
    let root = repo_root();
    let cmd = compose_command().expect(
        "docker-compose is required to validate docker/compose*.yaml \
         (apt-get install docker-compose; see .ci/run)",
    );
    for (file, services) in [
        (
            "docker/compose.yaml",
            &["callmux", "dispatch", "redis", "sipp", "webhooks"][..],
        ),
        (
            "docker/compose.scaleout.yaml",
            &[
                "callmux-a",
                "callmux-b",
                "dispatch-1",
                "dispatch-2",
                "kamailio",
                "redis",
                "sipp",
                "webhooks",
            ][..],
        ),
    ] {
        let path = root.join(file);
        // `config` validates against the Compose schema and resolves anchors and variables.
        let o = compose(&cmd, &path, &["config", "-q"]);
        assert!(
            o.status.success(),
            "{file} is not a valid compose file: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = compose(&cmd, &path, &["config", "--services"]);
        assert!(o.status.success());
        let mut got: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        got.sort();
        assert_eq!(got, services, "{file}: services");
        let o = compose(&cmd, &path, &["config"]);
        let resolved = String::from_utf8_lossy(&o.stdout).to_string();
        // The server hands delivery to the separate dispatcher(s) over the Redis queue.
        assert!(
            resolved.contains("redis://redis:6379/0?prefix=callmux"),
            "{file}"
        );
        assert!(resolved.contains("--no-dispatcher"), "{file}");
        // Every Dockerfile it builds exists, and so does everything those COPY.
        for line in resolved.lines() {
            let Some(df) = line.trim().strip_prefix("dockerfile: ") else {
                continue;
            };
            let dockerfile = root.join(df.trim());
            assert!(dockerfile.is_file(), "{file}: {}", dockerfile.display());
            let ignore = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
            let ignore = std::fs::read_to_string(&ignore)
                .unwrap_or_else(|_| panic!("{} is missing", ignore.display()));
            for src in copy_sources(&dockerfile) {
                assert!(
                    root.join(&src).exists(),
                    "{}: COPY {src}: not in the repository",
                    dockerfile.display()
                );
                // Everything is excluded ("*") but the "!path" lines; src must be under one.
                let included = ignore
                    .lines()
                    .filter_map(|l| l.strip_prefix('!'))
                    .any(|inc| {
                        let inc = inc.trim_end_matches('/');
                        src == inc || src.starts_with(&format!("{inc}/"))
                    });
                assert!(
                    included,
                    "{}: COPY {src} is excluded by its .dockerignore",
                    dockerfile.display()
                );
            }
        }
    }
    // The runtime image: non-root, the volumes, the ports, the serve command.
    let df = std::fs::read_to_string(root.join("docker/Dockerfile")).unwrap();
    for needle in [
        "cargo build --release --locked",
        "libopus0",
        "espeak-ng",
        "ca-certificates",
        "USER callmux",
        "/var/lib/callmux/recordings",
        "/var/lib/callmux/data",
        "EXPOSE 5060/udp 5060/tcp 8080/tcp 20000-20099/udp",
        "CALLMUX_RTP_PORTS=20000-20099",
        r#""serve", "--sip", "0.0.0.0:5060", "--http", "0.0.0.0:8080""#,
    ] {
        assert!(df.contains(needle), "docker/Dockerfile lacks {needle:?}");
    }
}

/// Whether a Docker daemon answers (`docker info`), with the reason when not.
fn docker_daemon() -> Result<(), String> {
    match Command::new("docker").arg("info").output() {
        Err(e) => Err(format!("no docker client: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("docker info failed")
            .to_string()),
    }
}

#[test]
fn docker_image_builds_and_records_a_call_where_a_daemon_runs() {
    if let Err(why) = docker_daemon() {
        eprintln!(
            "SKIPPED docker_image_builds_and_records_a_call: no Docker daemon here ({why}); \
             the compose files were still validated by compose_files_are_valid_*"
        );
        return;
    }
    let root = repo_root();
    let tag = format!("callmux:test-{}", std::process::id());
    let run = |args: &[&str], limit: Duration| {
        let mut c = Command::new("docker");
        c.args(args).current_dir(&root);
        let o = output_within(c, limit);
        assert!(
            o.status.success(),
            "docker {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    run(
        &["build", "-f", "docker/Dockerfile", "-t", &tag, "."],
        Duration::from_secs(3600),
    );
    let name = format!("callmux-test-{}", std::process::id());
    struct Container(String);
    impl Drop for Container {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    run(
        &["run", "-d", "--name", &name, &tag],
        Duration::from_secs(120),
    );
    let _container = Container(name.clone());
    // Healthy when /healthz answers (the image's HEALTHCHECK, tried by hand here).
    let probe = "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !Command::new("docker")
        .args(["exec", &name, "bash", "-c", probe])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "container not healthy"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A call from inside the container to its own server, then the recording it made.
    run(
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "ip=$(hostname -i | awk '{print $1}'); \
             callmux call sip:100@$ip:5060 --bind $ip:0 --tone 440 --seconds 3",
        ],
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(2));
    let json = run(
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "callmux inspect --json /var/lib/callmux/recordings/*/*/*/*.wav",
        ],
        Duration::from_secs(60),
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("inspect --json");
    let ch1 = &v["analysis"]["audio"]["per_channel"][0];
    let hz = ch1["dominant_hz"].as_f64().unwrap_or(0.0);
    assert!((hz - 440.0).abs() <= 10.0, "{v}");
    assert_eq!(v["sidecar"]["state"], "complete", "{v}");
    let user = run(&["exec", &name, "id", "-un"], Duration::from_secs(30));
    assert_eq!(user, "callmux", "runs as a non-root user");
}
