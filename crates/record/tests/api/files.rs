//! Files on disk: checkpoints, crash recovery, multichannel WAV, MP3, Ogg Opus, write errors.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callmux_record::format::{mp3, ogg};
use callmux_record::sidecar::{ChannelContent, LegRole};
use callmux_record::{
    analyze_file, recover_unfinished, ChannelLayout, LegInfo, LegKey, RecordError, RecordFormat,
    Recording, RecordingParams, RecordingState, Sidecar, SidecarState, TimelineConfig,
};

use super::analysis::tone;
use super::tools;

const WALL: u64 = 1_714_564_800; // 2024-05-01T12:00:00Z

fn params(root: &Path, uuid: &str, layout: ChannelLayout, format: RecordFormat) -> RecordingParams {
    RecordingParams {
        root: root.to_path_buf(),
        recording_uuid: uuid.into(),
        call_uuid: format!("call-{uuid}"),
        conversation_uuid: "conv-1".into(),
        layout,
        format,
        wall_start: UNIX_EPOCH + Duration::from_secs(WALL),
        timeline: TimelineConfig::default(),
        checkpoint_interval: Duration::from_millis(500),
    }
}

fn info(n: u32) -> LegInfo {
    LegInfo {
        uuid: format!("leg-{n}"),
        from: format!("from-{n}"),
        to: format!("to-{n}"),
    }
}

fn start(p: RecordingParams, legs: u32) -> (Recording, Instant) {
    let t0 = Instant::now();
    let mut rec = Recording::create(p, t0).unwrap();
    for l in 0..legs {
        rec.add_leg(LegKey(l), info(l), t0).unwrap();
    }
    (rec, t0)
}

fn freq(leg: u32) -> f64 {
    300.0 + 200.0 * f64::from(leg)
}

/// Every leg sends its tone in 20 ms packets from `from_ms` to `to_ms`; `poll` after each
/// tick and `each(rec, now)` after it.
fn drive(
    rec: &mut Recording,
    t0: Instant,
    legs: u32,
    from_ms: u64,
    to_ms: u64,
    mut each: impl FnMut(&mut Recording, Instant),
) {
    for ms in (from_ms..to_ms).step_by(20) {
        let now = t0 + Duration::from_millis(ms);
        let k = (ms / 20) as usize;
        for l in 0..legs {
            let pcm: Vec<i16> = tone(freq(l), 9000.0, (k + 1) * 320)[k * 320..].to_vec();
            rec.push_received(LegKey(l), 100 + l, (160 * k) as u32, 8000, now, &pcm);
        }
        rec.poll(now).unwrap();
        each(rec, now);
    }
}

fn check_tones(path: &Path, legs: u32, tolerance: f64) {
    let a = analyze_file(path).unwrap();
    for l in 0..legs as usize {
        let c = &a.audio.per_channel[l];
        let hz = c.dominant_hz.unwrap_or(0.0);
        assert!(
            (hz - freq(l as u32)).abs() < tolerance,
            "{}: channel {} has {hz} Hz",
            path.display(),
            l + 1
        );
        assert!(
            c.voiced_ms > 1000,
            "{}: channel {} voiced {} ms",
            path.display(),
            l + 1,
            c.voiced_ms
        );
    }
}

#[test]
fn recording_is_send() {
    fn send<T: Send>() {}
    send::<Recording>();
}

#[test]
fn wav_is_playable_after_every_checkpoint_and_complete_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(
        params(
            dir.path(),
            "rec-wav",
            ChannelLayout::Split,
            RecordFormat::Wav,
        ),
        2,
    );
    assert_eq!(rec.path(), dir.path().join("2024/05/01/rec-wav.wav"));
    let copy = dir.path().join("copy.wav");
    let mut durations = Vec::new();
    drive(&mut rec, t0, 2, 0, 3000, |rec, now| {
        // Copy the file the way a crash would leave it (no finish), at a few points.
        if now.duration_since(t0).as_millis() % 520 == 0 {
            fs::copy(rec.path(), &copy).unwrap();
            let r = hound::WavReader::open(&copy).unwrap();
            assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 16_000));
            let n = r.duration();
            let samples: Vec<i16> = r.into_samples().collect::<Result<_, _>>().unwrap();
            assert_eq!(samples.len(), 2 * n as usize);
            durations.push(n);
        }
    });
    assert!(
        durations.windows(2).all(|w| w[0] < w[1]) && durations.len() >= 5,
        "{durations:?}"
    );
    let wall_end = UNIX_EPOCH + Duration::from_secs(WALL + 3);
    let s = rec.finish(t0 + Duration::from_secs(3), wall_end).unwrap();
    assert_eq!(s.state, RecordingState::Complete);
    assert_eq!(
        (s.channels, s.format, s.duration),
        (2, RecordFormat::Wav, Duration::from_secs(3))
    );
    assert_eq!(s.size, fs::metadata(&s.path).unwrap().len());
    assert_eq!(s.size, 44 + 3 * 16_000 * 4);
    check_tones(&s.path, 2, 5.0);
    let side = Sidecar::load(&s.sidecar).unwrap();
    assert_eq!(side.state, SidecarState::Complete);
    assert_eq!((side.size, side.duration_ms), (Some(s.size), Some(3000)));
    assert_eq!(side.channel_map[0].content, ChannelContent::CallerSent);
    assert_eq!(side.channel_map[0].legs[0].role, LegRole::Caller);
    assert_eq!(side.channel_map[1].legs[0].role, LegRole::Callee);
    assert_eq!(side.channel_map[1].legs[0].left_ms, Some(3000));
    let json = fs::read_to_string(&s.sidecar).unwrap();
    assert!(
        json.contains(r#""start_time": "2024-05-01T12:00:00.000Z""#),
        "{json}"
    );
    assert!(json.contains(r#""end_time": "2024-05-01T12:00:03.000Z""#));
}

#[test]
fn sidecar_tracks_joins_and_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(
        params(
            dir.path(),
            "rec-legs",
            ChannelLayout::Multi(3),
            RecordFormat::Wav,
        ),
        0,
    );
    assert_eq!(rec.add_leg(LegKey(1), info(1), t0).unwrap(), 0);
    assert_eq!(
        rec.add_leg(LegKey(2), info(2), t0 + Duration::from_millis(1500))
            .unwrap(),
        1
    );
    assert_eq!(
        rec.add_leg(LegKey(2), info(2), t0 + Duration::from_millis(1600))
            .unwrap(),
        1
    );
    rec.remove_leg(LegKey(2), t0 + Duration::from_millis(2500))
        .unwrap();
    rec.remove_leg(LegKey(7), t0).unwrap();
    assert_eq!(
        rec.add_leg(LegKey(3), info(3), t0 + Duration::from_secs(3))
            .unwrap(),
        2
    );
    assert_eq!(
        rec.add_leg(LegKey(4), info(4), t0 + Duration::from_secs(3))
            .unwrap(),
        2
    );
    let side = Sidecar::load(rec.sidecar_path()).unwrap();
    assert_eq!(side.state, SidecarState::Recording);
    let legs = &side.channel_map[1].legs;
    assert_eq!(
        (legs[0].joined_ms, legs[0].left_ms, legs[0].role),
        (1500, Some(2500), LegRole::Participant)
    );
    assert_eq!(side.channel_map[2].legs.len(), 2);
    assert_eq!(side.channel_map[0].legs[0].role, LegRole::Caller);
    // The caller leaves and comes back: a second stay, still the caller, same channel.
    rec.remove_leg(LegKey(1), t0 + Duration::from_secs(4))
        .unwrap();
    assert_eq!(
        rec.add_leg(LegKey(1), info(1), t0 + Duration::from_secs(5))
            .unwrap(),
        0
    );
    let side = Sidecar::load(rec.sidecar_path()).unwrap();
    let stays = &side.channel_map[0].legs;
    assert_eq!(stays.len(), 2);
    assert_eq!(
        (stays[0].left_ms, stays[1].joined_ms, stays[1].role),
        (Some(4000), 5000, LegRole::Caller)
    );
}

fn simulate_crash(rec: &Recording, root2: &Path) -> (PathBuf, PathBuf) {
    let rel = rec
        .path()
        .parent()
        .unwrap()
        .strip_prefix(rec.path().ancestors().nth(4).unwrap())
        .unwrap();
    let dir2 = root2.join(rel);
    fs::create_dir_all(&dir2).unwrap();
    let media = dir2.join(rec.path().file_name().unwrap());
    let side = dir2.join(rec.sidecar_path().file_name().unwrap());
    fs::copy(rec.path(), &media).unwrap();
    fs::copy(rec.sidecar_path(), &side).unwrap();
    (media, side)
}

#[test]
fn recover_unfinished_repairs_a_wav_cut_mid_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(
        params(
            dir.path(),
            "rec-crash",
            ChannelLayout::Split,
            RecordFormat::Wav,
        ),
        2,
    );
    drive(&mut rec, t0, 2, 0, 2000, |_, _| {});
    let root2 = dir.path().join("crashed");
    let (media, side) = simulate_crash(&rec, &root2);
    // Cut mid-frame and zero the sizes, as if the crash came right after create.
    let len = fs::metadata(&media).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&media).unwrap();
    f.set_len(len - 3).unwrap();
    let mut f = f;
    f.seek(SeekFrom::Start(4)).unwrap();
    f.write_all(&0u32.to_le_bytes()).unwrap();
    f.seek(SeekFrom::Start(40)).unwrap();
    f.write_all(&0u32.to_le_bytes()).unwrap();
    drop(f);
    fs::write(side.with_extension("json.tmp"), b"{half").unwrap();
    let results = recover_unfinished(&root2, SystemTime::now());
    assert_eq!(results.len(), 1, "{results:?}");
    let s = results.into_iter().next().unwrap().unwrap();
    assert_eq!(s.state, RecordingState::Recovered);
    let frames = (len - 3 - 44) / 4;
    assert_eq!(s.size, 44 + frames * 4);
    assert_eq!(s.duration, Duration::from_nanos(frames * 62_500));
    assert_eq!(s.end_time, s.start_time + s.duration);
    let r = hound::WavReader::open(&media).unwrap();
    assert_eq!(u64::from(r.duration()), frames);
    let side_doc = Sidecar::load(&side).unwrap();
    assert_eq!(side_doc.state, SidecarState::Recovered);
    assert_eq!(side_doc.size, Some(s.size));
    assert!(!side.with_extension("json.tmp").exists());
    check_tones(&media, 2, 5.0);
    // Already recovered: nothing more to do.
    assert!(recover_unfinished(&root2, SystemTime::now()).is_empty());
    rec.finish(t0 + Duration::from_secs(2), SystemTime::now())
        .unwrap();
}

#[test]
fn recovery_reports_missing_files_and_bad_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _) = start(
        params(
            dir.path(),
            "rec-gone",
            ChannelLayout::Mono,
            RecordFormat::Wav,
        ),
        1,
    );
    let root2 = dir.path().join("r2");
    let (media, side) = simulate_crash(&rec, &root2);
    fs::remove_file(&media).unwrap();
    fs::write(side.with_file_name("junk.json"), b"not json").unwrap();
    let results = recover_unfinished(&root2, SystemTime::now());
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_err));
    assert_eq!(Sidecar::load(&side).unwrap().state, SidecarState::Failed);
    assert!(recover_unfinished(&dir.path().join("nope"), SystemTime::now()).is_empty());
}

#[test]
fn thirty_two_channel_wav_is_extensible_and_opens_in_sox() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(
        params(
            dir.path(),
            "rec-32",
            ChannelLayout::Multi(32),
            RecordFormat::Wav,
        ),
        32,
    );
    drive(&mut rec, t0, 4, 0, 2000, |_, _| {});
    let s = rec
        .finish(t0 + Duration::from_secs(2), SystemTime::now())
        .unwrap();
    let bytes = fs::read(&s.path).unwrap();
    assert_eq!(
        u16::from_le_bytes([bytes[20], bytes[21]]),
        0xFFFE,
        "WAVE_FORMAT_EXTENSIBLE"
    );
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 32);
    let r = hound::WavReader::open(&s.path).unwrap();
    assert_eq!((r.spec().channels, r.duration()), (32, 32_000));
    check_tones(&s.path, 4, 5.0);
    if let Some(info) = tools::sox_info(&s.path) {
        assert!(info.contains("Channels       : 32"), "{info}");
        assert!(info.contains("Sample Rate    : 16000"), "{info}");
        assert!(info.contains("00:00:02.00"), "{info}");
    }
}

#[test]
fn mp3_split_is_cbr_32k_and_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(
        params(
            dir.path(),
            "rec-mp3",
            ChannelLayout::Split,
            RecordFormat::Mp3,
        ),
        2,
    );
    drive(&mut rec, t0, 2, 0, 3000, |_, _| {});
    let s = rec
        .finish(t0 + Duration::from_secs(3), SystemTime::now())
        .unwrap();
    let scan = mp3::scan(&mut File::open(&s.path).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(scan.end, s.size, "every byte belongs to a whole frame");
    assert_eq!((scan.sample_rate, scan.channels), (16_000, 2));
    let data = fs::read(&s.path).unwrap();
    let first = mp3::parse_frame_header(&data).unwrap();
    assert_eq!((first.bitrate_kbps, first.frame_len), (32, 144));
    let secs = scan.samples as f64 / 16_000.0;
    assert!((3.0..3.3).contains(&secs), "{secs}");
    check_tones(&s.path, 2, 8.0);
    let wav = dir.path().join("mp3.wav");
    if tools::sox_convert(&s.path, &wav).is_some() {
        check_tones(&wav, 2, 8.0);
    }
}

#[test]
fn mp3_mono_and_too_many_channels() {
    let dir = tempfile::tempdir().unwrap();
    let e = Recording::create(
        params(
            dir.path(),
            "rec-mp3-3",
            ChannelLayout::Multi(3),
            RecordFormat::Mp3,
        ),
        Instant::now(),
    );
    assert!(matches!(
        e,
        Err(RecordError::TooManyChannels {
            format: "mp3",
            channels: 3,
            max: 2
        })
    ));
    assert!(!dir.path().join("2024/05/01/rec-mp3-3.mp3").exists());
    let (mut rec, t0) = start(
        params(
            dir.path(),
            "rec-mp3-1",
            ChannelLayout::Mono,
            RecordFormat::Mp3,
        ),
        1,
    );
    drive(&mut rec, t0, 1, 0, 2000, |_, _| {});
    let root2 = dir.path().join("crashed");
    let (media, _) = simulate_crash(&rec, &root2);
    let s = rec
        .finish(t0 + Duration::from_secs(2), SystemTime::now())
        .unwrap();
    check_tones(&s.path, 1, 8.0);
    // A crash copy cut mid-frame is trimmed to whole frames.
    let len = fs::metadata(&media).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&media)
        .unwrap()
        .set_len(len - 50)
        .unwrap();
    let r = recover_unfinished(&root2, SystemTime::now());
    let rs = r.into_iter().next().unwrap().unwrap();
    assert_eq!(rs.size % 144, 0, "whole 144-byte frames only");
    assert!(rs.duration > Duration::from_millis(1000));
}

fn ogg_check(layout: ChannelLayout, legs: u32, uuid: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(params(dir.path(), uuid, layout, RecordFormat::Ogg), legs);
    drive(&mut rec, t0, legs, 0, 3010, |_, _| {});
    let root2 = dir.path().join("crashed");
    let (media, _) = simulate_crash(&rec, &root2);
    let s = rec
        .finish(t0 + Duration::from_millis(3010), SystemTime::now())
        .unwrap();
    assert_eq!(s.duration, Duration::from_millis(3010));
    // Independent reader: the `ogg` crate sees every packet, granules never decrease.
    let mut r = ::ogg::reading::PacketReader::new(File::open(&s.path).unwrap());
    let (mut packets, mut last_gp, mut eos) = (0, 0, false);
    while let Some(p) = r.read_packet().unwrap() {
        packets += 1;
        if p.last_in_page() {
            assert!(p.absgp_page() >= last_gp);
            last_gp = p.absgp_page();
        }
        eos |= p.last_in_stream();
    }
    assert!(eos, "EOS page written");
    assert_eq!(packets, 2 + 151, "headers + ceil(3010 ms / 20 ms) packets");
    let scan = ogg::scan(&mut File::open(&s.path).unwrap()).unwrap();
    let head = callmux_record::format::opus::OpusHead::parse(&scan.first_body).unwrap();
    assert_eq!(
        last_gp - u64::from(head.pre_skip),
        3010 * 48,
        "end-trimmed granule"
    );
    check_tones(&s.path, legs, 10.0);
    if let Some((ok, text)) = tools::run("opusinfo", &[s.path.to_str().unwrap()]) {
        assert!(
            ok && !text.contains("WARNING") && !text.contains("ERROR"),
            "{text}"
        );
        assert!(
            text.contains(&format!("Channels: {}", layout.channels())),
            "{text}"
        );
    }
    let wav = dir.path().join("dec.wav");
    if let Some((ok, text)) = tools::run(
        "opusdec",
        &["--quiet", s.path.to_str().unwrap(), wav.to_str().unwrap()],
    ) {
        assert!(ok, "{text}");
        let a = analyze_file(&wav).unwrap();
        // opusdec writes family-1 streams in WAVE channel order (its permutation of the
        // Vorbis order); `vorbis[j]` is the stream channel in WAV channel j.
        let vorbis: &[usize] = match legs {
            3 => &[0, 2, 1],
            5 => &[0, 2, 1, 3, 4],
            6 => &[0, 2, 1, 5, 3, 4],
            7 => &[0, 2, 1, 6, 5, 3, 4],
            8 => &[0, 2, 1, 7, 5, 6, 3, 4],
            _ => &[0, 1, 2, 3],
        };
        for (j, &l) in vorbis.iter().enumerate().take(legs as usize) {
            let hz = a.audio.per_channel[j].dominant_hz.unwrap();
            assert!(
                (hz - freq(l as u32)).abs() < 10.0,
                "opusdec channel {j}: {hz}"
            );
        }
    }
    // Crash copy cut mid-page: recovery keeps whole pages and marks the last one EOS.
    let len = fs::metadata(&media).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&media)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let rs = recover_unfinished(&root2, SystemTime::now())
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let scan = ogg::scan(&mut File::open(&media).unwrap()).unwrap();
    assert_eq!(scan.end, rs.size);
    assert_ne!(scan.last.flags & ogg::FLAG_EOS, 0);
    assert!(
        rs.duration >= Duration::from_millis(1500),
        "{:?}",
        rs.duration
    );
    analyze_file(&media).unwrap();
}

#[test]
fn ogg_opus_split() {
    ogg_check(ChannelLayout::Split, 2, "rec-ogg-2");
}

#[test]
fn ogg_opus_mono() {
    ogg_check(ChannelLayout::Mono, 1, "rec-ogg-1");
}

#[test]
fn ogg_opus_four_channels_family_one() {
    ogg_check(ChannelLayout::Multi(4), 4, "rec-ogg-4");
}

#[test]
fn ogg_opus_eight_channels_family_one() {
    ogg_check(ChannelLayout::Multi(8), 8, "rec-ogg-8");
}

#[test]
fn ogg_opus_refuses_more_than_eight_channels() {
    let dir = tempfile::tempdir().unwrap();
    let e = Recording::create(
        params(
            dir.path(),
            "rec-ogg-9",
            ChannelLayout::Multi(9),
            RecordFormat::Ogg,
        ),
        Instant::now(),
    );
    assert!(
        matches!(
            e,
            Err(RecordError::TooManyChannels {
                format: "ogg",
                channels: 9,
                max: 8
            })
        ),
        "{e:?}"
    );
}

/// Writes through to a real file but fails like a full disk once `budget` bytes are used.
struct FullDisk {
    file: File,
    budget: u64,
    pos: u64,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.budget.saturating_sub(self.pos) as usize;
        if room == 0 && !buf.is_empty() {
            return Err(io::Error::from_raw_os_error(28));
        }
        let n = self.file.write(&buf[..buf.len().min(room)])?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for FullDisk {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl callmux_record::sink::RecordWriter for FullDisk {}

fn full_disk_run(format: RecordFormat, uuid: &str) {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let open = |p: &Path| -> io::Result<Box<dyn callmux_record::sink::RecordWriter>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(p)?;
        Ok(Box::new(FullDisk {
            file,
            budget: 100_003,
            pos: 0,
        }))
    };
    let mut rec = Recording::create_with(
        params(dir.path(), uuid, ChannelLayout::Split, format),
        t0,
        open,
    )
    .unwrap();
    rec.add_leg(LegKey(0), info(0), t0).unwrap();
    rec.add_leg(LegKey(1), info(1), t0).unwrap();
    let mut err = None;
    for k in 0..5000u64 {
        let now = t0 + Duration::from_millis(20 * k);
        for l in 0..2u32 {
            let pcm = tone(freq(l), 9000.0, 320 * (k as usize + 1))[320 * k as usize..].to_vec();
            rec.push_received(LegKey(l), l, 160 * k as u32, 8000, now, &pcm);
        }
        if let Err(e) = rec.poll(now) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the disk filled up");
    match &err {
        RecordError::Io { path, source } => {
            assert_eq!(path, rec.path());
            assert_eq!(source.raw_os_error(), Some(28));
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(matches!(
        rec.poll(t0 + Duration::from_secs(200)),
        Err(RecordError::Stopped(_))
    ));
    assert_eq!(rec.next_deadline(), None);
    let s = rec.fail(&err.to_string(), SystemTime::now());
    assert!(
        matches!(&s.state, RecordingState::Failed(r) if r.contains("os error 28")),
        "{:?}",
        s.state
    );
    assert!(
        s.size <= 100_003 && s.duration > Duration::from_millis(500),
        "{s:?}"
    );
    let side = Sidecar::load(&s.sidecar).unwrap();
    assert_eq!(side.state, SidecarState::Failed);
    assert!(side.reason.unwrap().contains("os error 28"));
    let a = analyze_file(&s.path).unwrap();
    assert!(
        a.audio.duration_ms + 100 >= s.duration.as_millis() as u64,
        "{} vs {:?}",
        a.audio.duration_ms,
        s.duration
    );
}

#[test]
fn disk_full_gives_io_error_and_fail_leaves_a_playable_wav() {
    full_disk_run(RecordFormat::Wav, "rec-full-wav");
    let dir = tempfile::tempdir().unwrap();
    let r = hound::WavReader::open(dir.path().join("x.wav"));
    assert!(r.is_err());
}

#[test]
fn disk_full_with_mp3_and_ogg_also_leaves_playable_files() {
    full_disk_run(RecordFormat::Mp3, "rec-full-mp3");
    full_disk_run(RecordFormat::Ogg, "rec-full-ogg");
}

#[test]
fn unwritable_places_are_io_errors_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, b"x").unwrap();
    let e = Recording::create(
        params(&not_a_dir, "rec-x", ChannelLayout::Mono, RecordFormat::Wav),
        Instant::now(),
    );
    assert!(matches!(e, Err(RecordError::Io { .. })), "{e:?}");
    if Path::new("/dev/full").exists() {
        let open = |_: &Path| -> io::Result<Box<dyn callmux_record::sink::RecordWriter>> {
            Ok(Box::new(
                fs::OpenOptions::new().write(true).open("/dev/full")?,
            ))
        };
        let e = Recording::create_with(
            params(
                dir.path(),
                "rec-devfull",
                ChannelLayout::Mono,
                RecordFormat::Wav,
            ),
            Instant::now(),
            open,
        );
        assert!(
            matches!(&e, Err(RecordError::Io { source, .. }) if source.raw_os_error() == Some(28)),
            "{e:?}"
        );
    }
    // The same uuid twice is refused rather than overwritten.
    let (rec, _) = start(
        params(
            dir.path(),
            "rec-dup",
            ChannelLayout::Mono,
            RecordFormat::Wav,
        ),
        0,
    );
    let again = Recording::create(
        params(
            dir.path(),
            "rec-dup",
            ChannelLayout::Mono,
            RecordFormat::Wav,
        ),
        Instant::now(),
    );
    assert!(matches!(again, Err(RecordError::Io { .. })));
    drop(rec);
}

#[test]
fn invalid_parameters_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |f: &dyn Fn(&mut RecordingParams)| {
        let mut p = params(dir.path(), "rec-ok", ChannelLayout::Mono, RecordFormat::Wav);
        f(&mut p);
        matches!(
            Recording::create(p, Instant::now()),
            Err(RecordError::InvalidParams(_))
        )
    };
    assert!(bad(&|p| p.recording_uuid = "../evil".into()));
    assert!(bad(&|p| p.recording_uuid = String::new()));
    assert!(bad(&|p| p.layout = ChannelLayout::Multi(0)));
    assert!(bad(&|p| p.layout = ChannelLayout::Multi(33)));
    assert!(bad(&|p| p.checkpoint_interval = Duration::from_secs(2)));
    assert!(bad(&|p| p.checkpoint_interval = Duration::ZERO));
}

#[test]
fn next_deadline_asks_for_regular_polls() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, t0) = start(
        params(dir.path(), "rec-dl", ChannelLayout::Mono, RecordFormat::Wav),
        1,
    );
    assert_eq!(rec.next_deadline(), Some(t0 + Duration::from_millis(100)));
    // No packets at all: polling at the deadlines alone still writes silence in real time.
    let mut now = t0;
    while now < t0 + Duration::from_secs(2) {
        now = rec.next_deadline().unwrap();
        rec.poll(now).unwrap();
    }
    let r = hound::WavReader::open(rec.path()).unwrap();
    assert!(r.duration() >= 16_000 * 3 / 2, "{}", r.duration());
}
