//! `callmux inspect FILE --png OUT.png`: one panel per channel with the channel's waveform
//! (the min/max envelope of the samples under each pixel column), the legs the sidecar puts
//! in that channel (from → to, leg uuid, join/leave offsets, drawn as vertical markers), and
//! a time axis in seconds shared by all panels.
//!
//! Layout, top to bottom (every panel has the same width and time scale):
//!
//! ```text
//!  header: file name; format, rate, channels, duration; vertical scale
//!  per channel: label strip (chN and what it holds, then one line per leg)
//!               plot frame (FRAME colour, 1 px), inside it the envelope (WAVE colour),
//!               the zero line, second grid lines, join (JOIN) and leave (LEAVE) markers
//!  time axis: tick labels in seconds under the last panel
//! ```
//!
//! Inside a frame, pixel column `x0 + 1 + i` (i = 0 .. inner width) covers the time
//! `[i, i + 1) · duration / inner width`. Tests rely on the frame colour and this mapping.
//!
//! Drawing uses plotters' bitmap backend (rectangles, lines, pixels) and its PNG encoder.
//! Text uses the built-in 5×7 font in `font.rs`, so no font files or system font libraries
//! are needed.

use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use callmux_record::sidecar::{ChannelContent, LegRole, SidecarLeg};
use callmux_record::{AudioAnalysis, Sidecar};
use plotters::prelude::*;

use super::font;

/// Colour of the 1 px frame around each channel's plot area.
pub(crate) const FRAME: RGBColor = RGBColor(64, 64, 64);
/// Colour of the waveform envelope.
pub(crate) const WAVE: RGBColor = RGBColor(31, 119, 180);
/// Marker where a leg joined the recording.
pub(crate) const JOIN: RGBColor = RGBColor(44, 160, 44);
/// Marker where a leg left the recording.
pub(crate) const LEAVE: RGBColor = RGBColor(214, 39, 40);
const TEXT: RGBColor = RGBColor(0, 0, 0);
const DIM_TEXT: RGBColor = RGBColor(90, 90, 90);
const GRID: RGBColor = RGBColor(225, 225, 225);
const ZERO: RGBColor = RGBColor(200, 200, 200);
const BACKGROUND: RGBColor = RGBColor(255, 255, 255);

const MARGIN_X: i32 = 12;
const HEADER_H: i32 = 40;
const PLOT_H: i32 = 120;
const AXIS_H: i32 = 26;
const LEG_LINE_H: i32 = 10;
/// Quietest full-scale level: a file whose loudest sample is below −40 dBFS is not blown up.
const MIN_FULL_SCALE: f64 = 327.0;

/// Envelope of one pixel column: (min, max) sample, or None when no sample falls in it.
type Column = Option<(i32, i32)>;

/// What the image is drawn from.
pub(crate) struct Input<'a> {
    pub(crate) file: &'a Path,
    pub(crate) analysis: &'a AudioAnalysis,
    pub(crate) format: &'a str,
    pub(crate) sidecar: Option<&'a Sidecar>,
}

/// What was written (for the command's output and its tests).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Written {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) panels: usize,
    /// `samples` (WAV: exact min/max per column) or `rms-windows` (MP3/Ogg: ±√2·RMS of
    /// 100 ms windows, until callmux-record exposes its decoder).
    pub(crate) envelope: &'static str,
}

/// Renders `input` to `out` (a `.png` path), `width` pixels wide.
pub(crate) fn render(input: &Input<'_>, out: &Path, width: u32) -> anyhow::Result<Written> {
    let ext_ok = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !ext_ok {
        bail!("--png {}: the file name must end in .png", out.display());
    }
    if !(300..=20_000).contains(&width) {
        bail!("--width {width}: must be 300..=20000 pixels");
    }
    let channels = usize::from(input.analysis.channels);
    if channels == 0 {
        bail!("{}: no audio channels", input.file.display());
    }
    let inner = width as i32 - 2 * MARGIN_X - 2;
    let cols = usize::try_from(inner).unwrap_or(1).max(1);
    let (envelopes, envelope) = if input.format == "wav" {
        (wav_envelopes(input.file, cols)?, "samples")
    } else {
        (window_envelopes(input.analysis, cols), "rms-windows")
    };

    let labels: Vec<ChannelLabel> = (1..=channels)
        .map(|ch| ChannelLabel::new(ch, input.sidecar))
        .collect();
    let height = HEADER_H
        + labels
            .iter()
            .map(|l| l.strip_height() + PLOT_H + 2)
            .sum::<i32>()
        + AXIS_H;
    let height = u32::try_from(height).context("image height")?;

    let root = BitMapBackend::new(out, (width, height)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", out.display());
    root.fill(&BACKGROUND).map_err(err)?;
    let mut canvas = Canvas { root: &root };

    // Header.
    let name = input.file.file_name().map_or_else(
        || input.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    canvas.text(&name, MARGIN_X, 6, 2, TEXT)?;
    let duration_s = input.analysis.duration_ms as f64 / 1000.0;
    let peak = envelopes
        .iter()
        .flatten()
        .flatten()
        .map(|&(lo, hi)| lo.unsigned_abs().max(hi.unsigned_abs()))
        .max()
        .unwrap_or(0);
    let full_scale = f64::from(peak).max(MIN_FULL_SCALE);
    let scale_db = 20.0 * (full_scale / 32768.0).log10();
    let mut info = format!(
        "{}  {} Hz  {} channel(s)  {:.3} s   full height = {:.1} dBFS{}",
        input.format,
        input.analysis.sample_rate,
        channels,
        duration_s,
        scale_db,
        if envelope == "samples" {
            ""
        } else {
            "  (envelope of 100 ms RMS windows)"
        }
    );
    if let Some(s) = input.sidecar {
        let call = format!("   call {}", s.call_uuid);
        let room = width.saturating_sub(2 * MARGIN_X as u32);
        if font::text_width(&info, 1) + font::text_width(&call, 1) <= room {
            info.push_str(&call);
        }
    }
    canvas.text(&info, MARGIN_X, 26, 1, DIM_TEXT)?;

    let x0 = MARGIN_X;
    let x1 = MARGIN_X + inner + 1;
    let ticks = time_ticks(duration_s);
    let x_of = |t: f64| -> i32 {
        if duration_s <= 0.0 {
            x0 + 1
        } else {
            x0 + 1 + ((t / duration_s) * f64::from(inner)).floor() as i32
        }
    };

    let mut y = HEADER_H;
    for (i, label) in labels.iter().enumerate() {
        // Label strip.
        canvas.text(&label.title, x0, y + 4, 2, TEXT)?;
        for (j, line) in label.leg_lines.iter().enumerate() {
            canvas.text(line, x0 + 8, y + 22 + j as i32 * LEG_LINE_H, 1, DIM_TEXT)?;
        }
        y += label.strip_height();
        // Plot area.
        let top = y;
        let bottom = y + PLOT_H + 1;
        let mid = top + 1 + PLOT_H / 2;
        for &(t, _) in &ticks {
            let x = x_of(t);
            if x > x0 + 1 && x < x1 {
                canvas.vline(x, top + 1, bottom - 1, GRID)?;
            }
        }
        canvas.hline(x0 + 1, x1 - 1, mid, ZERO)?;
        let k = f64::from(PLOT_H / 2 - 2) / full_scale;
        for (c, col) in envelopes[i].iter().enumerate() {
            let Some((lo, hi)) = *col else { continue };
            if lo == 0 && hi == 0 {
                continue;
            }
            let y_hi = mid - (f64::from(hi) * k).round() as i32;
            let y_lo = mid - (f64::from(lo) * k).round() as i32;
            canvas.vline(x0 + 1 + c as i32, y_hi.min(y_lo), y_hi.max(y_lo), WAVE)?;
        }
        for leg in &label.legs {
            let who = leg_name(leg);
            let t = leg.joined_ms as f64 / 1000.0;
            if leg.joined_ms > 0 {
                canvas.marker(
                    x_of(t).min(x1 - 1),
                    top,
                    bottom,
                    JOIN,
                    &format!("+{who}"),
                    x1,
                )?;
            }
            if let Some(left) = leg.left_ms {
                let t = left as f64 / 1000.0;
                if t < duration_s {
                    canvas.marker(
                        x_of(t).min(x1 - 1),
                        top,
                        bottom,
                        LEAVE,
                        &format!("-{who}"),
                        x1,
                    )?;
                }
            }
        }
        canvas.frame(x0, top, x1, bottom)?;
        // Ticks below the frame.
        for &(t, _) in &ticks {
            let x = x_of(t).min(x1);
            canvas.vline(x, bottom + 1, bottom + 3, FRAME)?;
        }
        y = bottom + 1;
    }
    // Time axis labels under the last panel.
    for (t, text) in &ticks {
        let w = font::text_width(text, 1) as i32;
        let x = (x_of(*t) - w / 2).clamp(0, width as i32 - w);
        canvas.text(text, x, y + 6, 1, TEXT)?;
    }
    let unit = "time (s)";
    canvas.text(
        unit,
        x1 - font::text_width(unit, 1) as i32,
        y + 16,
        1,
        DIM_TEXT,
    )?;
    root.present().map_err(err)?;
    Ok(Written {
        width,
        height,
        panels: channels,
        envelope,
    })
}

/// The label strip of one channel.
struct ChannelLabel {
    title: String,
    leg_lines: Vec<String>,
    legs: Vec<SidecarLeg>,
}

impl ChannelLabel {
    fn new(ch: usize, sidecar: Option<&Sidecar>) -> Self {
        let entry =
            sidecar.and_then(|s| s.channel_map.iter().find(|c| usize::from(c.channel) == ch));
        let Some(entry) = entry else {
            return Self {
                title: format!("ch{ch}"),
                leg_lines: Vec::new(),
                legs: Vec::new(),
            };
        };
        let content = match entry.content {
            ChannelContent::Mix => "mix of all legs",
            ChannelContent::CallerSent => "what the caller sent",
            ChannelContent::CallerHeard => "what the caller heard",
            ChannelContent::Participant => "participant",
        };
        let who: Vec<String> = entry
            .legs
            .iter()
            .map(|l| format!("{} -> {}", l.from, l.to))
            .collect();
        let title = if who.is_empty() {
            format!("ch{ch}  {content}")
        } else {
            format!("ch{ch}  {content}: {}", who.join(" | "))
        };
        let leg_lines = entry
            .legs
            .iter()
            .map(|l| {
                let role = match l.role {
                    LegRole::Caller => "caller",
                    LegRole::Callee => "callee",
                    LegRole::Participant => "participant",
                };
                let left = l.left_ms.map_or_else(String::new, |m| {
                    format!(", left {:.2} s", m as f64 / 1000.0)
                });
                format!(
                    "{role} {} -> {}  leg {}  joined {:.2} s{left}",
                    l.from,
                    l.to,
                    l.leg_uuid,
                    l.joined_ms as f64 / 1000.0
                )
            })
            .collect();
        Self {
            title,
            leg_lines,
            legs: entry.legs.clone(),
        }
    }

    fn strip_height(&self) -> i32 {
        4 + 16 + 4 + LEG_LINE_H * self.leg_lines.len() as i32 + 2
    }
}

/// The short name of a leg on its marker: the caller by its number, others by the
/// destination.
fn leg_name(leg: &SidecarLeg) -> String {
    let name = match leg.role {
        LegRole::Caller => &leg.from,
        LegRole::Callee | LegRole::Participant => &leg.to,
    };
    name.chars().take(16).collect()
}

/// Tick positions (seconds) and their labels: at most about a dozen, at 0.1/0.2/0.5/1/2/5/…
fn time_ticks(duration_s: f64) -> Vec<(f64, String)> {
    const STEPS: [f64; 17] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| duration_s / s <= 12.0)
        .unwrap_or(14_400.0);
    let mut out = Vec::new();
    let mut i = 0u32;
    loop {
        let t = f64::from(i) * step;
        if t > duration_s + 1e-9 {
            break;
        }
        let label = if step < 1.0 {
            format!("{t:.1}s")
        } else {
            format!("{t:.0}s")
        };
        out.push((t, label));
        i += 1;
    }
    out
}

/// Exact min/max per column from a WAV file's samples (any PCM width, or float).
fn wav_envelopes(path: &Path, cols: usize) -> anyhow::Result<Vec<Vec<Column>>> {
    let mut r =
        hound::WavReader::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    let frames = (r.len() as usize / channels).max(1);
    let mut env: Vec<Vec<Column>> = vec![vec![None; cols]; channels];
    let mut push = |i: usize, v: i32| {
        let frame = i / channels;
        let ch = i % channels;
        let c = (frame.min(frames - 1) * cols / frames).min(cols - 1);
        let slot = &mut env[ch][c];
        *slot = Some(match *slot {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    };
    match spec.sample_format {
        hound::SampleFormat::Int => {
            let shift = i32::from(spec.bits_per_sample) - 16;
            for (i, s) in r.samples::<i32>().enumerate() {
                let Ok(s) = s else { break }; // a truncated tail: draw what is there
                let v = if shift >= 0 { s >> shift } else { s << -shift };
                push(i, v.clamp(-32768, 32767));
            }
        }
        hound::SampleFormat::Float => {
            for (i, s) in r.samples::<f32>().enumerate() {
                let Ok(s) = s else { break };
                push(i, (s * 32767.0).round().clamp(-32768.0, 32767.0) as i32);
            }
        }
    }
    Ok(env)
}

/// For MP3 and Ogg: a symmetric envelope of ±√2·RMS from the analysis' 100 ms windows.
fn window_envelopes(a: &AudioAnalysis, cols: usize) -> Vec<Vec<Column>> {
    let dur = a.duration_ms.max(1);
    a.per_channel
        .iter()
        .map(|ch| {
            (0..cols)
                .map(|c| {
                    let t = (c as u64 * dur) / cols as u64;
                    let w = ch.windows.iter().rev().find(|w| w.start_ms <= t)?;
                    if w.rms_dbfs <= callmux_record::analysis::FLOOR_DBFS {
                        return Some((0, 0));
                    }
                    let amp = (32768.0 * 10f64.powf(w.rms_dbfs / 20.0) * std::f64::consts::SQRT_2)
                        .min(32767.0) as i32;
                    Some((-amp, amp))
                })
                .collect()
        })
        .collect()
}

/// Small drawing helpers over the plotters drawing area.
struct Canvas<'a, 'b> {
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
}

type DrawResult = anyhow::Result<()>;

impl Canvas<'_, '_> {
    fn err(e: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("drawing: {e}")
    }

    fn vline(&mut self, x: i32, y0: i32, y1: i32, color: RGBColor) -> DrawResult {
        self.root
            .draw(&PathElement::new(vec![(x, y0), (x, y1)], color))
            .map_err(Self::err)?;
        if y0 == y1 {
            self.root.draw_pixel((x, y0), &color).map_err(Self::err)?;
        }
        Ok(())
    }

    fn hline(&mut self, x0: i32, x1: i32, y: i32, color: RGBColor) -> DrawResult {
        self.root
            .draw(&PathElement::new(vec![(x0, y), (x1, y)], color))
            .map_err(Self::err)
    }

    fn frame(&mut self, x0: i32, y0: i32, x1: i32, y1: i32) -> DrawResult {
        self.root
            .draw(&Rectangle::new([(x0, y0), (x1, y1)], FRAME.stroke_width(1)))
            .map_err(Self::err)
    }

    /// A dashed vertical marker with a small label at its top (right of the marker, or left
    /// of it when there is no room before `right`).
    fn marker(
        &mut self,
        x: i32,
        top: i32,
        bottom: i32,
        color: RGBColor,
        label: &str,
        right: i32,
    ) -> DrawResult {
        let mut y = top + 1;
        while y < bottom {
            let end = (y + 3).min(bottom - 1);
            self.vline(x, y, end, color)?;
            y += 6;
        }
        let w = font::text_width(label, 1) as i32;
        let lx = if x + 3 + w < right { x + 3 } else { x - 3 - w };
        // On a white patch, so it stays readable over the waveform.
        self.root
            .draw(&Rectangle::new(
                [(lx - 1, top + 2), (lx + w, top + 3 + font::GLYPH_H as i32)],
                BACKGROUND.filled(),
            ))
            .map_err(Self::err)?;
        self.text(label, lx, top + 3, 1, color)
    }

    fn text(&mut self, text: &str, x: i32, y: i32, scale: u32, color: RGBColor) -> DrawResult {
        let mut result = Ok(());
        font::rasterize(text, x, y, scale, |px, py| {
            if result.is_ok() {
                result = self.root.draw_pixel((px, py), &color).map(|_| ());
            }
        });
        result.map_err(Self::err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_stay_readable() {
        let t = time_ticks(4.005);
        assert_eq!(t.len(), 9);
        assert_eq!(t[1].1, "0.5s");
        let t = time_ticks(3600.0);
        assert_eq!((t[1].0, t.len()), (300.0, 13));
        assert_eq!(time_ticks(0.0).len(), 1);
    }
}
