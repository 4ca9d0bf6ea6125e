//! RIFF/WAVE header parsing and the size repair of a file cut by a crash.

use super::Malformed;

/// Where the parts of a WAVE header are and what the audio looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavLayout {
    /// `wFormatTag`: 1 = PCM, 3 = float, 0xFFFE = WAVE_FORMAT_EXTENSIBLE.
    pub format_tag: u16,
    /// Interleaved channels.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
    /// Bits of one sample.
    pub bits_per_sample: u16,
    /// Bytes of one frame (all channels).
    pub block_align: u16,
    /// Offset of the first audio byte.
    pub data_start: u64,
    /// Size the `data` chunk header claims.
    pub data_size: u32,
}

impl WavLayout {
    /// Offset of the `data` chunk's size field.
    pub fn data_size_offset(&self) -> u64 {
        self.data_start - 4
    }
}

/// Parses the header of a WAVE file (`head` = its first bytes, up to the `data` chunk).
pub fn parse_header(head: &[u8]) -> Result<WavLayout, Malformed> {
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(Malformed("not a RIFF/WAVE file"));
    }
    let mut off = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16, u16)> = None;
    loop {
        let Some(chunk) = head.get(off..off + 8) else {
            return Err(Malformed("no data chunk in the header"));
        };
        let id = &chunk[0..4];
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        if id == b"data" {
            let (format_tag, channels, sample_rate, block_align, bits_per_sample) =
                fmt.ok_or(Malformed("data chunk before fmt chunk"))?;
            return Ok(WavLayout {
                format_tag,
                channels,
                sample_rate,
                bits_per_sample,
                block_align,
                data_start: off as u64 + 8,
                data_size: size,
            });
        }
        if id == b"fmt " {
            let body = head
                .get(off + 8..off + 8 + size as usize)
                .filter(|b| b.len() >= 16)
                .ok_or(Malformed("fmt chunk truncated or too short"))?;
            let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let format_tag = u16_at(0);
            let channels = u16_at(2);
            let sample_rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let block_align = u16_at(12);
            let bits = u16_at(14);
            if !matches!(format_tag, 1 | 3 | 0xFFFE) {
                return Err(Malformed("unsupported WAVE format tag"));
            }
            if channels == 0 || sample_rate == 0 || bits == 0 || bits % 8 != 0 {
                return Err(Malformed("zero channels, rate or sample size"));
            }
            if u32::from(block_align) != u32::from(channels) * u32::from(bits / 8) {
                return Err(Malformed(
                    "block align does not match channels × sample size",
                ));
            }
            fmt = Some((format_tag, channels, sample_rate, block_align, bits));
        }
        let next = (size as usize)
            .checked_add(size as usize & 1)
            .and_then(|s| s.checked_add(8));
        off = next
            .and_then(|n| off.checked_add(n))
            .ok_or(Malformed("chunk size overflows"))?;
    }
}

/// What to do to a WAVE file so that its header matches the audio on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavRepair {
    /// The parsed header.
    pub layout: WavLayout,
    /// New file length (whole frames only).
    pub truncate_to: u64,
    /// Value for the RIFF size field at offset 4.
    pub riff_size: u32,
    /// Value for the data chunk size field.
    pub data_size: u32,
    /// Whole frames kept.
    pub frames: u64,
}

/// Plans the repair of a WAVE file whose header is `head` and whose length is `file_len`:
/// sizes recomputed from the length, a partial last frame dropped, data capped at 4 GiB.
pub fn plan_repair(head: &[u8], file_len: u64) -> Result<WavRepair, Malformed> {
    let layout = parse_header(head)?;
    let align = u64::from(layout.block_align);
    let on_disk = file_len.saturating_sub(layout.data_start);
    let max_data = (u64::from(u32::MAX) - (layout.data_start - 8)) / align * align;
    let data = on_disk.min(max_data) / align * align;
    let truncate_to = layout.data_start + data;
    Ok(WavRepair {
        layout,
        truncate_to,
        // Both fit: data ≤ u32::MAX − (data_start − 8) by construction.
        riff_size: (truncate_to - 8) as u32,
        data_size: data as u32,
        frames: data / align,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(channels: u16, data_size: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&16_000u32.to_le_bytes());
        h.extend_from_slice(&(32_000 * u32::from(channels)).to_le_bytes());
        h.extend_from_slice(&(2 * channels).to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"LIST");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&[1, 2, 3, 0]);
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data_size.to_le_bytes());
        h
    }

    #[test]
    fn repair_drops_the_partial_frame_and_skips_odd_chunks() {
        let h = header(2, 0);
        let r = plan_repair(&h, h.len() as u64 + 4 * 10 + 3).unwrap();
        assert_eq!(r.layout.data_start, h.len() as u64);
        assert_eq!(r.frames, 10);
        assert_eq!(r.data_size, 40);
        assert_eq!(r.truncate_to, h.len() as u64 + 40);
        assert_eq!(u64::from(r.riff_size), r.truncate_to - 8);
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert!(parse_header(b"RIFF").is_err());
        assert!(parse_header(b"RIFX\0\0\0\0WAVE").is_err());
        let mut h = header(1, 0);
        h[22] = 0; // zero channels
        assert!(parse_header(&h).is_err());
        let mut h = header(1, 0);
        h[32] = 7; // block align
        assert!(parse_header(&h).is_err());
        let mut h = header(1, 0);
        h[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // huge fmt chunk
        assert!(parse_header(&h).is_err());
        let only_data = b"RIFF\0\0\0\0WAVEdata\0\0\0\0";
        assert!(parse_header(only_data).is_err());
    }

    #[test]
    fn data_is_capped_at_four_gib() {
        let h = header(32, 0);
        let r = plan_repair(&h, 10 * (1 << 32)).unwrap();
        assert!(u64::from(r.riff_size) + 8 == r.truncate_to);
        assert_eq!(u64::from(r.data_size) % 64, 0);
    }
}
