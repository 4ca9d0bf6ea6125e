//! Ogg Opus headers (RFC 7845) and Opus packet framing (RFC 6716 §3.2 and Appendix B):
//! enough to build multistream packets from single-stream encoders and to split them again.

use super::Malformed;

/// The identification header (`OpusHead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channels.
    pub channels: u8,
    /// Samples (at 48 kHz) to discard at the start.
    pub pre_skip: u16,
    /// Sample rate of the original input (informational).
    pub input_rate: u32,
    /// Output gain, Q7.8 dB.
    pub gain: i16,
    /// 0 (mono/stereo), 1 (Vorbis order, up to 8) or 255 (unidentified).
    pub family: u8,
    /// Streams in each packet (1 for family 0).
    pub streams: u8,
    /// Of which coupled (stereo) streams.
    pub coupled: u8,
    /// Output channel → decoded channel index (identity for family 0).
    pub mapping: Vec<u8>,
}

impl OpusHead {
    /// The header for `channels` independent channels: family 0 for 1–2 channels (one
    /// stream, stereo coupled for 2), else one mono stream per channel, family 1 up to 8
    /// channels and 255 beyond.
    pub fn for_channels(channels: u8, pre_skip: u16, input_rate: u32) -> Self {
        let (family, streams, coupled) = match channels {
            0..=2 => (0, 1, u8::from(channels == 2)),
            3..=8 => (1, channels, 0),
            _ => (255, channels, 0),
        };
        Self {
            channels,
            pre_skip,
            input_rate,
            gain: 0,
            family,
            streams,
            coupled,
            mapping: (0..channels).collect(),
        }
    }

    /// Serialises the header packet.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(21 + self.mapping.len());
        b.extend_from_slice(b"OpusHead");
        b.push(1);
        b.push(self.channels);
        b.extend_from_slice(&self.pre_skip.to_le_bytes());
        b.extend_from_slice(&self.input_rate.to_le_bytes());
        b.extend_from_slice(&self.gain.to_le_bytes());
        b.push(self.family);
        if self.family != 0 {
            b.push(self.streams);
            b.push(self.coupled);
            b.extend_from_slice(&self.mapping);
        }
        b
    }

    /// Parses and checks a header packet.
    pub fn parse(b: &[u8]) -> Result<Self, Malformed> {
        if b.len() < 19 || &b[0..8] != b"OpusHead" {
            return Err(Malformed("not an OpusHead packet"));
        }
        if b[8] >> 4 != 0 {
            return Err(Malformed("unsupported OpusHead version"));
        }
        let channels = b[9];
        if channels == 0 {
            return Err(Malformed("OpusHead with zero channels"));
        }
        let pre_skip = u16::from_le_bytes([b[10], b[11]]);
        let input_rate = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        let gain = i16::from_le_bytes([b[16], b[17]]);
        let family = b[18];
        let (streams, coupled, mapping) = if family == 0 {
            if channels > 2 {
                return Err(Malformed("family 0 allows 1 or 2 channels"));
            }
            (1, channels - 1, (0..channels).collect())
        } else {
            let table = b
                .get(21..21 + usize::from(channels))
                .ok_or(Malformed("OpusHead channel mapping table cut short"))?;
            let (streams, coupled) = (b[19], b[20]);
            if streams == 0 || coupled > streams || u16::from(streams) + u16::from(coupled) > 255 {
                return Err(Malformed("bad stream counts in OpusHead"));
            }
            let decoded = streams + coupled;
            if table.iter().any(|&m| m != 255 && m >= decoded) {
                return Err(Malformed("channel mapping names a missing stream"));
            }
            (streams, coupled, table.to_vec())
        };
        Ok(Self {
            channels,
            pre_skip,
            input_rate,
            gain,
            family,
            streams,
            coupled,
            mapping,
        })
    }
}

/// The comment header (`OpusTags`) with a vendor string and `KEY=value` comments.
pub fn opus_tags(vendor: &str, comments: &[String]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"OpusTags");
    b.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    b.extend_from_slice(vendor.as_bytes());
    b.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        b.extend_from_slice(&(c.len() as u32).to_le_bytes());
        b.extend_from_slice(c.as_bytes());
    }
    b
}

/// Layout of one Opus packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketLayout {
    /// Bytes before the first frame's data (TOC and length fields).
    pub header_len: usize,
    /// Frames in the packet.
    pub frames: usize,
    /// Bytes of each frame's data (only the first `frames` are meaningful).
    pub frame_lens: [usize; 48],
    /// Bytes of the self-delimiting length field (0 for normal framing); it is the last
    /// field before the frame data.
    pub delim_field_len: usize,
    /// Padding bytes after the frames (code 3 only).
    pub padding: usize,
    /// Whole packet length.
    pub total: usize,
}

fn read_len(d: &[u8], at: usize) -> Result<(usize, usize), Malformed> {
    let b0 = *d.get(at).ok_or(Malformed("frame length cut short"))?;
    if b0 < 252 {
        return Ok((usize::from(b0), 1));
    }
    let b1 = *d.get(at + 1).ok_or(Malformed("frame length cut short"))?;
    Ok((usize::from(b1) * 4 + usize::from(b0), 2))
}

/// Encodes a frame length (RFC 6716 §3.2.1).
pub fn write_len(len: usize, out: &mut Vec<u8>) {
    if len < 252 {
        out.push(len as u8);
    } else {
        let b0 = 252 + (len & 3);
        out.push(b0 as u8);
        out.push(((len - b0) / 4) as u8);
    }
}

/// Parses the framing of a packet. With `self_delimited` the last frame's length is
/// explicit (Appendix B) and `d` may hold more data after the packet.
pub fn parse_packet(d: &[u8], self_delimited: bool) -> Result<PacketLayout, Malformed> {
    let toc = *d.first().ok_or(Malformed("empty Opus packet"))?;
    let mut lens = [0usize; 48];
    let mut delim = 0usize;
    let mut at = 1usize;
    let mut padding = 0usize;
    let frames;
    match toc & 3 {
        0 => {
            frames = 1;
            if self_delimited {
                let (l, n) = read_len(d, at)?;
                at += n;
                delim = n;
                lens[0] = l;
            } else {
                lens[0] = d.len() - at;
            }
        }
        1 => {
            frames = 2;
            let each = if self_delimited {
                let (l, n) = read_len(d, at)?;
                at += n;
                delim = n;
                l
            } else {
                let rest = d.len() - at;
                if !rest.is_multiple_of(2) {
                    return Err(Malformed("code 1 packet with odd length"));
                }
                rest / 2
            };
            lens[0] = each;
            lens[1] = each;
        }
        2 => {
            frames = 2;
            let (l1, n) = read_len(d, at)?;
            at += n;
            lens[0] = l1;
            if self_delimited {
                let (l2, n) = read_len(d, at)?;
                at += n;
                delim = n;
                lens[1] = l2;
            } else {
                let rest = (d.len() - at)
                    .checked_sub(l1)
                    .ok_or(Malformed("code 2 frame too long"))?;
                lens[1] = rest;
            }
        }
        _ => {
            let fc = *d
                .get(at)
                .ok_or(Malformed("code 3 packet without frame count"))?;
            at += 1;
            frames = usize::from(fc & 0x3F);
            if frames == 0 || frames > 48 {
                return Err(Malformed("code 3 frame count out of range"));
            }
            if fc & 0x40 != 0 {
                loop {
                    let p = *d.get(at).ok_or(Malformed("padding length cut short"))?;
                    at += 1;
                    padding += if p == 255 { 254 } else { usize::from(p) };
                    if p != 255 {
                        break;
                    }
                }
            }
            let vbr = fc & 0x80 != 0;
            if vbr {
                for len in lens.iter_mut().take(frames - 1) {
                    let (l, n) = read_len(d, at)?;
                    at += n;
                    *len = l;
                }
            }
            if self_delimited {
                let (l, n) = read_len(d, at)?;
                at += n;
                delim = n;
                if vbr {
                    lens[frames - 1] = l;
                } else {
                    lens[..frames].fill(l);
                }
            } else {
                let rest = d
                    .len()
                    .saturating_sub(at)
                    .checked_sub(padding)
                    .ok_or(Malformed("padding longer than the packet"))?;
                if vbr {
                    let coded: usize = lens[..frames - 1].iter().sum();
                    let last = rest
                        .checked_sub(coded)
                        .ok_or(Malformed("code 3 frames too long"))?;
                    lens[frames - 1] = last;
                } else {
                    if rest % frames != 0 {
                        return Err(Malformed("CBR code 3 frames of unequal size"));
                    }
                    lens[..frames].fill(rest / frames);
                }
            }
        }
    }
    if lens[..frames].iter().any(|&l| l > 1275) {
        return Err(Malformed("Opus frame longer than 1275 bytes"));
    }
    let data: usize = lens[..frames].iter().sum();
    let total = at + data + padding;
    if total > d.len() {
        return Err(Malformed("Opus packet cut short"));
    }
    Ok(PacketLayout {
        header_len: at,
        frames,
        frame_lens: lens,
        delim_field_len: delim,
        padding,
        total,
    })
}

/// Appends `packet` to `out` in self-delimiting framing (for every stream of a multistream
/// packet but the last).
pub fn append_self_delimited(packet: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let l = parse_packet(packet, false)?;
    out.extend_from_slice(&packet[..l.header_len]);
    write_len(l.frame_lens[l.frames - 1], out);
    out.extend_from_slice(&packet[l.header_len..l.total]);
    Ok(())
}

/// Splits a multistream packet into its `streams` elementary packets (the first ones are
/// converted back to normal framing), appending them to `out` as (start, end) ranges of
/// `scratch`.
pub fn split_multistream(
    packet: &[u8],
    streams: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<(usize, usize)>,
) -> Result<(), Malformed> {
    scratch.clear();
    out.clear();
    let mut at = 0usize;
    for s in 0..streams {
        let rest = packet
            .get(at..)
            .ok_or(Malformed("multistream packet cut short"))?;
        let start = scratch.len();
        if s + 1 == streams {
            parse_packet(rest, false)?;
            scratch.extend_from_slice(rest);
        } else {
            let l = parse_packet(rest, true)?;
            // Normal framing = the same bytes without the self-delimiting length field.
            scratch.extend_from_slice(&rest[..l.header_len - l.delim_field_len]);
            scratch.extend_from_slice(&rest[l.header_len..l.total]);
            at += l.total;
        }
        out.push((start, scratch.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_head_roundtrip_for_each_family() {
        for ch in [1u8, 2, 3, 8, 9, 32] {
            let h = OpusHead::for_channels(ch, 312, 16_000);
            let p = OpusHead::parse(&h.to_bytes()).unwrap();
            assert_eq!(p, h);
        }
        assert_eq!(OpusHead::for_channels(2, 0, 16_000).family, 0);
        assert_eq!(OpusHead::for_channels(5, 0, 16_000).family, 1);
        assert_eq!(OpusHead::for_channels(20, 0, 16_000).family, 255);
    }

    #[test]
    fn malformed_heads_are_rejected() {
        assert!(OpusHead::parse(b"OpusHead").is_err());
        let mut h = OpusHead::for_channels(4, 0, 16_000).to_bytes();
        h[21] = 9; // mapping beyond streams
        assert!(OpusHead::parse(&h).is_err());
        let mut h = OpusHead::for_channels(4, 0, 16_000).to_bytes();
        h.truncate(23);
        assert!(OpusHead::parse(&h).is_err());
        let mut h = OpusHead::for_channels(1, 0, 16_000).to_bytes();
        h[9] = 3; // family 0 with 3 channels
        assert!(OpusHead::parse(&h).is_err());
    }

    #[test]
    fn lengths_roundtrip() {
        for len in [0usize, 1, 251, 252, 253, 255, 300, 1275] {
            let mut b = Vec::new();
            write_len(len, &mut b);
            assert_eq!(read_len(&b, 0).unwrap(), (len, b.len()));
        }
    }

    fn roundtrip(packets: &[Vec<u8>]) {
        let mut ms = Vec::new();
        for p in &packets[..packets.len() - 1] {
            append_self_delimited(p, &mut ms).unwrap();
        }
        ms.extend_from_slice(&packets[packets.len() - 1]);
        let mut scratch = Vec::new();
        let mut ranges = Vec::new();
        split_multistream(&ms, packets.len(), &mut scratch, &mut ranges).unwrap();
        let back: Vec<Vec<u8>> = ranges
            .iter()
            .map(|&(a, b)| scratch[a..b].to_vec())
            .collect();
        assert_eq!(back, packets);
    }

    #[test]
    fn every_framing_code_survives_self_delimiting() {
        let code0 = [vec![0x08], vec![7; 300]].concat();
        let code1 = [vec![0x09], vec![1; 40]].concat();
        let code2 = [vec![0x0A, 10], vec![2; 10], vec![3; 260]].concat();
        let code3_cbr_pad = [vec![0x0B, 0x43, 3], vec![4; 30], vec![0; 3]].concat();
        let code3_vbr = [vec![0x0B, 0x83, 5, 6], vec![5; 5], vec![6; 6], vec![7; 7]].concat();
        let code3_bigpad = [vec![0x0B, 0x41, 255, 10], vec![9; 20], vec![0; 264]].concat();
        roundtrip(&[
            code0.clone(),
            code1.clone(),
            code2.clone(),
            code3_cbr_pad,
            code0.clone(),
        ]);
        roundtrip(&[code3_vbr, code3_bigpad, code1, code2]);
        roundtrip(&[code0]);
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(parse_packet(&[], false).is_err());
        assert!(parse_packet(&[0x09, 1, 2, 3], false).is_err());
        assert!(parse_packet(&[0x0A, 200, 1], false).is_err());
        assert!(parse_packet(&[0x0B, 0x00], false).is_err());
        assert!(parse_packet(&[0x0B, 0x42, 255], false).is_err());
        assert!(parse_packet(&[0x08, 100, 1], true).is_err());
        let mut scratch = Vec::new();
        let mut r = Vec::new();
        assert!(split_multistream(&[0x08, 5, 1, 2], 2, &mut scratch, &mut r).is_err());
    }
}
