//! MPEG audio Layer III frame headers: enough to walk a file frame by frame, find where the
//! last complete frame ends and how long the audio is.

use std::io::{self, Read};

use super::Malformed;

/// One parsed Layer III frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// 1 (MPEG-1), 2 (MPEG-2) or 25 (MPEG-2.5).
    pub version: u8,
    /// Samples per second.
    pub sample_rate: u32,
    /// Kilobits per second.
    pub bitrate_kbps: u32,
    /// 1 (mono) or 2.
    pub channels: u8,
    /// Bytes of the whole frame, header included.
    pub frame_len: usize,
    /// Samples per channel the frame decodes to.
    pub samples: u32,
}

const BITRATES_V1: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const BITRATES_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// Parses a Layer III frame header from the first 4 bytes of `b` (None if it is not one;
/// free-format frames are not supported).
pub fn parse_frame_header(b: &[u8]) -> Option<FrameHeader> {
    let h = b.get(..4)?;
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = match (h[1] >> 3) & 3 {
        0 => 25,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    if (h[1] >> 1) & 3 != 1 {
        return None; // not Layer III
    }
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 3);
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let padding = u32::from((h[2] >> 1) & 1);
    let (bitrate_kbps, sample_rate, coeff, samples) = match version {
        1 => (
            BITRATES_V1[bitrate_index],
            [44_100, 48_000, 32_000][rate_index],
            144,
            1152,
        ),
        2 => (
            BITRATES_V2[bitrate_index],
            [22_050, 24_000, 16_000][rate_index],
            72,
            576,
        ),
        _ => (
            BITRATES_V2[bitrate_index],
            [11_025, 12_000, 8_000][rate_index],
            72,
            576,
        ),
    };
    let frame_len = (coeff * bitrate_kbps * 1000 / sample_rate + padding) as usize;
    let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
    Some(FrameHeader {
        version,
        sample_rate,
        bitrate_kbps,
        channels,
        frame_len,
        samples,
    })
}

/// Result of walking an MP3 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mp3Scan {
    /// Complete frames found.
    pub frames: u64,
    /// Samples per channel they decode to.
    pub samples: u64,
    /// Byte offset just after the last complete frame.
    pub end: u64,
    /// Sample rate of the first frame.
    pub sample_rate: u32,
    /// Channels of the first frame.
    pub channels: u8,
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Walks consecutive frames (after an optional ID3v2 tag) until the data ends, is cut, or
/// stops looking like the first frame's stream; returns where the last whole frame ends.
pub fn scan(r: &mut impl Read) -> io::Result<Result<Mp3Scan, Malformed>> {
    let mut head = [0u8; 10];
    let n = read_full(r, &mut head)?;
    let mut off = 0u64;
    let mut buf = vec![0u8; 4096];
    let mut pending: Vec<u8> = head[..n].to_vec();
    if n == 10 && &head[0..3] == b"ID3" {
        let size = head[6..10]
            .iter()
            .fold(0u64, |a, &b| (a << 7) | u64::from(b & 0x7F));
        let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
        let skip = size + footer;
        let skipped = io::copy(&mut r.take(skip), &mut io::sink())?;
        if skipped < skip {
            return Ok(Err(Malformed("ID3v2 tag cut short")));
        }
        off = 10 + skip;
        pending.clear();
    }
    let mut scan = Mp3Scan {
        end: off,
        ..Mp3Scan::default()
    };
    loop {
        if pending.len() < 4 {
            let have = pending.len();
            pending.resize(4, 0);
            let got = read_full(r, &mut pending[have..])?;
            if have + got < 4 {
                break;
            }
        }
        let Some(h) = parse_frame_header(&pending) else {
            break;
        };
        if scan.frames == 0 {
            scan.sample_rate = h.sample_rate;
            scan.channels = h.channels;
        } else if h.sample_rate != scan.sample_rate || h.channels != scan.channels {
            break;
        }
        let rest = h.frame_len.saturating_sub(pending.len());
        if buf.len() < rest {
            buf.resize(rest, 0);
        }
        if read_full(r, &mut buf[..rest])? < rest {
            break;
        }
        scan.frames += 1;
        scan.samples += u64::from(h.samples);
        off += h.frame_len as u64;
        scan.end = off;
        pending.clear();
    }
    if scan.frames == 0 {
        return Ok(Err(Malformed("no complete MP3 frame")));
    }
    Ok(Ok(scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pad: bool) -> Vec<u8> {
        // MPEG-2 Layer III, 32 kbit/s, 16 kHz, mono.
        let mut f = vec![0xFF, 0xF3, 0x48 | (u8::from(pad) << 1), 0xC4];
        let h = parse_frame_header(&f).unwrap();
        f.resize(h.frame_len, 0);
        f
    }

    #[test]
    fn sixteen_khz_32k_frames_are_144_bytes() {
        let h = parse_frame_header(&frame(false)).unwrap();
        assert_eq!((h.version, h.sample_rate, h.bitrate_kbps), (2, 16_000, 32));
        assert_eq!((h.frame_len, h.samples, h.channels), (144, 576, 1));
        assert_eq!(parse_frame_header(&frame(true)).unwrap().frame_len, 145);
    }

    #[test]
    fn scan_stops_at_a_cut_frame() {
        let mut data = Vec::new();
        for i in 0..5 {
            data.extend(frame(i % 2 == 0));
        }
        let whole = data.len() as u64;
        data.extend(&frame(false)[..50]);
        let s = scan(&mut &data[..]).unwrap().unwrap();
        assert_eq!((s.frames, s.samples, s.end), (5, 5 * 576, whole));
    }

    #[test]
    fn id3_tag_is_skipped_and_garbage_rejected() {
        let mut data = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        data.extend(frame(false));
        let s = scan(&mut &data[..]).unwrap().unwrap();
        assert_eq!(s.end, data.len() as u64);
        assert!(scan(&mut &b"garbage garbage"[..]).unwrap().is_err());
        assert!(scan(&mut &b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f"[..])
            .unwrap()
            .is_err());
        assert!(parse_frame_header(&[0xFF, 0xF3, 0xF0, 0]).is_none());
    }
}
