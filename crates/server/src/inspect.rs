//! `callmux inspect FILE`: what is in a recording: format, duration, the channel map from
//! its sidecar, and per channel its level, voiced/silent time and dominant frequency.
//! With `--png OUT.png`, also a picture: one waveform panel per channel with the legs'
//! labels and join/leave markers (see `inspect/waveform.rs`).

mod font;
mod waveform;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use callmux_record::{analyze_file, Sidecar};
use clap::Args;

/// `callmux inspect` arguments.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The recording (its `.json` sidecar is read from beside it when present).
    file: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw the recording: one waveform panel per channel, labelled with its legs.
    #[arg(long, value_name = "OUT.png")]
    png: Option<PathBuf>,
    /// Width of the --png image in pixels.
    #[arg(long, default_value_t = 1200, requires = "png")]
    width: u32,
}

/// Prints the analysis; exit code 0, or an error if the file cannot be read.
pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let analysis = analyze_file(&args.file)
        .with_context(|| format!("cannot analyse {}", args.file.display()))?;
    let sidecar_path = args.file.with_extension("json");
    let sidecar = if sidecar_path.exists() {
        Some(
            Sidecar::load(&sidecar_path)
                .with_context(|| format!("cannot read {}", sidecar_path.display()))?,
        )
    } else {
        None
    };
    let png = match &args.png {
        Some(out) => Some(
            waveform::render(
                &waveform::Input {
                    file: &args.file,
                    analysis: &analysis.audio,
                    format: &analysis.format,
                    sidecar: sidecar.as_ref(),
                },
                out,
                args.width,
            )
            .with_context(|| format!("cannot draw {}", out.display()))?,
        ),
        None => None,
    };
    if args.json {
        let mut v = serde_json::json!({
            "file": args.file,
            "analysis": analysis,
            "sidecar": sidecar,
        });
        if let (Some(out), Some(w)) = (&args.png, &png) {
            v["png"] = serde_json::json!({ "path": out, "image": w });
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", args.file.display());
    println!(
        "  format {}  {} Hz  {} channel(s)  {:.3} s",
        analysis.format,
        analysis.audio.sample_rate,
        analysis.audio.channels,
        analysis.audio.duration_ms as f64 / 1000.0
    );
    if let Some(s) = &sidecar {
        println!(
            "  recording {}  call {}  state {}",
            s.recording_uuid,
            s.call_uuid,
            format!("{:?}", s.state).to_lowercase()
        );
    }
    for (i, ch) in analysis.audio.per_channel.iter().enumerate() {
        let legs = sidecar
            .as_ref()
            .and_then(|s| {
                s.channel_map
                    .iter()
                    .find(|c| usize::from(c.channel) == i + 1)
            })
            .map(|c| {
                c.legs
                    .iter()
                    .map(|l| format!("{} ({}→{})", l.leg_uuid, l.from, l.to))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "  ch{}: rms {:6.1} dBFS  peak {:6}  voiced {:7.2} s  silent {:7.2} s  dominant {}  {}",
            i + 1,
            ch.rms_dbfs,
            ch.peak,
            ch.voiced_ms as f64 / 1000.0,
            ch.silent_ms as f64 / 1000.0,
            ch.dominant_hz
                .map_or_else(|| "-".to_string(), |f| format!("{f:.0} Hz")),
            legs
        );
    }
    if let (Some(out), Some(w)) = (&args.png, &png) {
        println!(
            "  png {}  {}x{}  {} panel(s)",
            out.display(),
            w.width,
            w.height,
            w.panels
        );
    }
    Ok(ExitCode::SUCCESS)
}
