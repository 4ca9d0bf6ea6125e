//! Seeded pseudo-random numbers for tags, branches and Call-IDs.
//!
//! SplitMix64: tiny, fast and fully determined by the seed, which is what tests need (the same
//! seed and inputs give byte-identical output). It is not a cryptographic generator; the values
//! it makes only have to be unique, not secret (digest nonces use their own keyed hash).

/// Deterministic 64-bit generator (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `words` random 64-bit words as lowercase hex (16 characters each).
    pub(crate) fn hex(&mut self, words: usize) -> String {
        let mut out = String::with_capacity(words * 16);
        for _ in 0..words {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert_eq!(a.hex(2).len(), 32);
    }
}
