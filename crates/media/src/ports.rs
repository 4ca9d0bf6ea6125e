//! RTP port allocation from the configured range: even ports for RTP (RTCP on port + 1),
//! round-robin so a port just released is not handed out again at once (late packets of
//! the old call must not land in a new one).

/// Hands out even RTP ports from `lo..=hi`.
#[derive(Debug, Clone)]
pub struct PortPool {
    /// First even port.
    base: u16,
    /// `used[i]` is port `base + 2 i`.
    used: Vec<bool>,
    /// Index to try first on the next allocation.
    cursor: usize,
    in_use: usize,
}

impl PortPool {
    /// A pool over the even ports `p` in `lo..=hi` whose RTCP port `p + 1` is also `<= hi`.
    /// An empty or inverted range gives a pool of capacity 0 (allocation always fails).
    pub fn new(lo: u16, hi: u16) -> Self {
        let base = lo.saturating_add(lo % 2);
        let count = if hi > base {
            usize::from((hi - base - 1) / 2 + 1)
        } else {
            0
        };
        Self {
            base,
            used: vec![false; count],
            cursor: 0,
            in_use: 0,
        }
    }

    /// How many ports the pool holds.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    /// Ports currently allocated.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// The next free even port after the last one handed out, or `None` when exhausted.
    pub fn allocate(&mut self) -> Option<u16> {
        let n = self.used.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if let Some(slot) = self.used.get_mut(i) {
                if !*slot {
                    *slot = true;
                    self.in_use += 1;
                    self.cursor = (i + 1) % n;
                    return u16::try_from(i * 2)
                        .ok()
                        .and_then(|off| self.base.checked_add(off));
                }
            }
        }
        None
    }

    /// Returns a port; `false` if it was not allocated from this pool.
    pub fn release(&mut self, port: u16) -> bool {
        if port < self.base || !(port - self.base).is_multiple_of(2) {
            return false;
        }
        let i = usize::from((port - self.base) / 2);
        match self.used.get_mut(i) {
            Some(slot) if *slot => {
                *slot = false;
                self.in_use -= 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_round_robin() {
        let mut p = PortPool::new(20000, 20007);
        assert_eq!(p.capacity(), 4);
        assert_eq!(p.allocate(), Some(20000));
        assert_eq!(p.allocate(), Some(20002));
        assert!(p.release(20000));
        // 20000 is free again but the cursor moves on first.
        assert_eq!(p.allocate(), Some(20004));
        assert_eq!(p.allocate(), Some(20006));
        assert_eq!(p.allocate(), Some(20000));
        assert_eq!(p.allocate(), None, "exhausted");
        assert_eq!(p.in_use(), 4);
    }

    #[test]
    fn odd_bounds_and_rtcp_room() {
        // 20001 → first even is 20002; 20006 cannot be used since 20007 > hi.
        let mut p = PortPool::new(20001, 20006);
        assert_eq!(p.capacity(), 2);
        assert_eq!(p.allocate(), Some(20002));
        assert_eq!(p.allocate(), Some(20004));
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn release_checks() {
        let mut p = PortPool::new(10000, 10009);
        let a = p.allocate().unwrap();
        assert!(!p.release(a + 1), "odd");
        assert!(!p.release(9998), "below range");
        assert!(!p.release(10020), "above range");
        assert!(!p.release(10002), "not allocated");
        assert!(p.release(a));
        assert!(!p.release(a), "double release");
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn degenerate_ranges() {
        assert_eq!(PortPool::new(5000, 4000).capacity(), 0);
        assert_eq!(PortPool::new(5000, 5000).capacity(), 0);
        assert_eq!(PortPool::new(5000, 5001).capacity(), 1);
        let mut p = PortPool::new(65534, 65535);
        assert_eq!(p.allocate(), Some(65534));
        let mut p = PortPool::new(65535, 65535);
        assert_eq!(p.allocate(), None);
        let mut empty = PortPool::new(1, 0);
        assert_eq!(empty.allocate(), None);
        assert_eq!(PortPool::new(0, u16::MAX).capacity(), 32768);
    }
}
