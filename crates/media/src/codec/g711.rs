//! ITU-T G.711 µ-law and A-law, by table. The tables are computed at compile time from the
//! reference algorithm (the one in the ITU-T G.191 software tools / Sun's g711.c), so the
//! run-time cost is one lookup per sample.

const BIAS: i32 = 0x84;
const CLIP: i32 = 8159;
const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn segment(value: i32, table: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if value <= table[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// Reference µ-law encoder on a 14-bit sample (`pcm >> 2`).
const fn ulaw_encode_14(pcm14: i32) -> u8 {
    let (mut v, mask) = if pcm14 < 0 {
        (-pcm14, 0x7F)
    } else {
        (pcm14, 0xFF)
    };
    if v > CLIP {
        v = CLIP;
    }
    v += BIAS >> 2;
    let seg = segment(v, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let uval = ((seg as i32) << 4) | ((v >> (seg + 1)) & 0xF);
    (uval ^ mask) as u8
}

/// Reference µ-law decoder.
const fn ulaw_decode_ref(code: u8) -> i16 {
    let u = !code as i32 & 0xFF;
    let mut t = ((u & 0x0F) << 3) + BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
}

/// Reference A-law encoder on a 13-bit sample (`pcm >> 3`).
const fn alaw_encode_13(pcm13: i32) -> u8 {
    let (v, mask) = if pcm13 >= 0 {
        (pcm13, 0xD5)
    } else {
        (-pcm13 - 1, 0x55)
    };
    let seg = segment(v, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut aval = (seg as i32) << 4;
    if seg < 2 {
        aval |= (v >> 1) & 0x0F;
    } else {
        aval |= (v >> seg) & 0x0F;
    }
    (aval ^ mask) as u8
}

/// Reference A-law decoder.
const fn alaw_decode_ref(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn build_decode(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode_ref(i as u8)
        } else {
            ulaw_decode_ref(i as u8)
        };
        i += 1;
    }
    table
}

/// µ-law encode table indexed by the 14-bit sample offset by 8192.
const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        table[i] = ulaw_encode_14(i as i32 - 8192);
        i += 1;
    }
    table
}

/// A-law encode table indexed by the 13-bit sample offset by 4096.
const fn build_alaw_encode() -> [u8; 8192] {
    let mut table = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        table[i] = alaw_encode_13(i as i32 - 4096);
        i += 1;
    }
    table
}

static ULAW_DECODE: [i16; 256] = build_decode(false);
static ALAW_DECODE: [i16; 256] = build_decode(true);
static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();
static ALAW_ENCODE: [u8; 8192] = build_alaw_encode();

/// Decodes one µ-law byte to linear 16-bit PCM.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decodes one A-law byte to linear 16-bit PCM.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Encodes one linear 16-bit sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    // (sample >> 2) is in -8192..=8191, so the index is in 0..16384.
    ULAW_ENCODE[((i32::from(sample) >> 2) + 8192) as usize]
}

/// Encodes one linear 16-bit sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // (sample >> 3) is in -4096..=4095, so the index is in 0..8192.
    ALAW_ENCODE[((i32::from(sample) >> 3) + 4096) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // G.711 µ-law end points: codes 0x80/0x00 are ±8031 in 14-bit units (×4 = 32124),
        // 0xFF and 0x7F the two zeros. Values checked against CPython's audioop.
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0xF0), 120);
        assert_eq!(ulaw_to_linear(0xEF), 132);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(
            linear_to_ulaw(-1),
            0x7E,
            "-1 rounds to the first negative step"
        );
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(linear_to_ulaw(-1000), 0x4E);
    }

    #[test]
    fn alaw_known_values() {
        // A-law with the even bits inverted (0x55): 0xD5 and 0x55 are the ±8 first steps,
        // 0xAA/0x2A the extremes ±32256 (4032 in 13-bit units ×8).
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0xC5), 264);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(linear_to_alaw(-1000), 0x7A);
    }

    #[test]
    fn code_round_trip() {
        for code in 0..=255u8 {
            let expected_u = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected_u,
                "µ {code:#x}"
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A {code:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded_and_sign_kept() {
        for sample in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(sample));
            let a = alaw_to_linear(linear_to_alaw(sample));
            // Half a step is at most 1/32 of the magnitude plus the finest step; beyond the
            // largest code (32124 / 32256) the input is clipped.
            let mag = i32::from(sample).abs();
            let bound = if mag > 32000 { 700 } else { mag / 16 + 16 };
            assert!(
                (i32::from(u) - i32::from(sample)).abs() <= bound,
                "µ {sample}"
            );
            assert!(
                (i32::from(a) - i32::from(sample)).abs() <= bound,
                "A {sample}"
            );
            assert!(i32::from(u) * i32::from(sample) >= 0, "µ sign {sample}");
            assert!(i32::from(a) * i32::from(sample) >= 0, "A sign {sample}");
        }
    }

    #[test]
    fn decode_is_monotonic() {
        // µ-law codes 0x00..=0x7F are negative from the most negative up, 0xFF..=0x80 positive
        // from zero up; A-law (after the 0x55 inversion) orders the same way by segment.
        let mut prev = i16::MIN;
        for code in (0x00..=0x7Fu8).chain((0x80..=0xFFu8).rev()) {
            let v = ulaw_to_linear(code);
            assert!(v >= prev, "µ decode not monotonic at {code:#x}");
            prev = v;
        }
        let mut sorted: Vec<i16> = (0..=255u8).map(alaw_to_linear).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256, "A-law has 256 distinct levels");
    }

    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Every output compared, through an FNV-1a hash, with CPython's `audioop` (an
    /// independent C implementation): lin2ulaw/lin2alaw over all 65536 inputs and
    /// ulaw2lin/alaw2lin over all 256 codes (16-bit little-endian output).
    #[test]
    fn matches_independent_implementation() {
        let all = || i16::MIN..=i16::MAX;
        assert_eq!(fnv1a(all().map(linear_to_ulaw)), 0xd5ee_23f7_d0ff_ae91);
        assert_eq!(fnv1a(all().map(linear_to_alaw)), 0xf030_666e_b780_cf25);
        let le = |f: fn(u8) -> i16| (0..=255u8).flat_map(move |c| f(c).to_le_bytes());
        assert_eq!(fnv1a(le(ulaw_to_linear)), 0xb91e_65d6_8481_a1a8);
        assert_eq!(fnv1a(le(alaw_to_linear)), 0x693a_40ca_62a3_d2a5);
    }
}
