//! Token buckets per source: the INVITE rate limit (503 with Retry-After, then a temporary
//! ban whose datagrams are dropped unread), and the throttle on failed digest attempts.
//! Time is an argument; nothing here reads the clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Whom a bucket belongs to: an IPv4 address, or an IPv6 /64 (one host usually owns a
/// whole /64, so per-address buckets would be free to multiply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SourceKey {
    /// One IPv4 address (or IPv4-mapped IPv6).
    V4(u32),
    /// The /64 prefix of an IPv6 address.
    V6(u64),
    /// Every source that arrived while the table was full shares this bucket.
    Overflow,
}

impl SourceKey {
    /// The key of `ip`.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Most sources tracked at once; past this (after pruning idle ones) new sources share one
/// bucket, so a flood of spoofed addresses cannot grow the table without bound.
const MAX_SOURCES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// INVITEs refused in a row while empty.
    refused: u32,
    banned_until: Option<Instant>,
}

/// Token buckets keyed by source.
#[derive(Debug)]
pub(crate) struct Buckets {
    rate: f64,
    burst: f64,
    map: HashMap<SourceKey, Bucket>,
    /// Pruning walks the whole table: at most once a second.
    last_prune: Option<Instant>,
}

impl Buckets {
    /// `rate` tokens per second, at most `burst` saved up (at least 1).
    pub(crate) fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            map: HashMap::new(),
            last_prune: None,
        }
    }

    fn bucket(&mut self, ip: IpAddr, now: Instant) -> &mut Bucket {
        let mut key = SourceKey::of(ip);
        if !self.map.contains_key(&key) && self.map.len() >= MAX_SOURCES {
            self.prune(now);
            if self.map.len() >= MAX_SOURCES {
                key = SourceKey::Overflow;
            }
        }
        let burst = self.burst;
        let rate = self.rate;
        let b = self.map.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
            refused: 0,
            banned_until: None,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        b
    }

    /// Forgets buckets that are full again and not banned (they would be created full).
    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.last_prune = Some(now);
        let (rate, burst) = (self.rate, self.burst);
        self.map.retain(|_, b| {
            let tokens = b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate;
            tokens < burst || b.banned_until.is_some_and(|u| u > now)
        });
    }

    /// Takes a token; `Err(wait)` says how long until one is there.
    pub(crate) fn take(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let rate = self.rate;
        let b = self.bucket(ip, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.refused = 0;
            Ok(())
        } else {
            b.refused = b.refused.saturating_add(1);
            Err(Duration::from_secs_f64(
                ((1.0 - b.tokens) / rate).min(3600.0),
            ))
        }
    }

    /// Whether the bucket of `ip` is empty (without taking anything).
    pub(crate) fn is_empty(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.bucket(ip, now).tokens < 1.0
    }

    /// Number of sources tracked (for tests and logs).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// What the INVITE rate limit says about one new INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateVerdict {
    /// Within the rate.
    Allow,
    /// Over the rate: answer 503 with this Retry-After (whole seconds, at least 1).
    Limited { retry_after_s: u64 },
    /// Over the rate and still sending (another burst refused in a row): answer this one
    /// with 503, and drop everything from the source for `ban`.
    Ban { retry_after_s: u64, ban: Duration },
}

/// The per-source INVITE rate limit.
#[derive(Debug)]
pub(crate) struct InviteRateLimiter {
    buckets: Buckets,
    ban: Duration,
    burst: u32,
}

impl InviteRateLimiter {
    /// `rate` INVITEs per second with bursts of `burst`; a source that keeps sending
    /// another `burst` INVITEs after being refused is dropped for `ban`.
    pub(crate) fn new(rate: f64, burst: u32, ban: Duration) -> Self {
        Self {
            buckets: Buckets::new(rate, burst),
            ban,
            burst: burst.max(1),
        }
    }

    /// Counts one new INVITE from `ip`.
    pub(crate) fn check(&mut self, ip: IpAddr, now: Instant) -> RateVerdict {
        match self.buckets.take(ip, now) {
            Ok(()) => RateVerdict::Allow,
            Err(wait) => {
                let retry_after_s = wait.as_secs_f64().ceil().max(1.0) as u64;
                let b = self.buckets.bucket(ip, now);
                if b.refused > self.burst && !self.ban.is_zero() {
                    b.banned_until = Some(now + self.ban);
                    b.refused = 0;
                    RateVerdict::Ban {
                        retry_after_s: retry_after_s.max(self.ban.as_secs()),
                        ban: self.ban,
                    }
                } else {
                    RateVerdict::Limited { retry_after_s }
                }
            }
        }
    }

    /// Whether datagrams from `ip` are dropped now.
    pub(crate) fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.buckets
            .map
            .get(&SourceKey::of(ip))
            .and_then(|b| b.banned_until)
            .is_some_and(|until| until > now)
    }

    /// Number of sources tracked.
    pub(crate) fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = Buckets::new(2.0, 3);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(b.take(a, t0), Ok(()));
        }
        let wait = b.take(a, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Another source has its own bucket.
        assert_eq!(b.take(ip("192.0.2.2"), t0), Ok(()));
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take(a, t1), Ok(()));
        assert!(b.take(a, t1).is_err());
        // Long idle: refilled to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(100);
        for _ in 0..3 {
            assert_eq!(b.take(a, t2), Ok(()));
        }
        assert!(b.take(a, t2).is_err());
    }

    #[test]
    fn v6_sources_share_their_64() {
        assert_eq!(
            SourceKey::of(ip("2001:db8:1:2::1")),
            SourceKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            SourceKey::of(ip("2001:db8:1:2::1")),
            SourceKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            SourceKey::of(ip("::ffff:192.0.2.1")),
            SourceKey::of(ip("192.0.2.1"))
        );
    }

    #[test]
    fn limited_then_banned_then_released() {
        let t0 = Instant::now();
        let mut r = InviteRateLimiter::new(1.0, 2, Duration::from_secs(30));
        let a = ip("198.51.100.7");
        assert_eq!(r.check(a, t0), RateVerdict::Allow);
        assert_eq!(r.check(a, t0), RateVerdict::Allow);
        assert_eq!(r.check(a, t0), RateVerdict::Limited { retry_after_s: 1 });
        assert_eq!(r.check(a, t0), RateVerdict::Limited { retry_after_s: 1 });
        assert!(!r.is_banned(a, t0));
        // The third refusal in a row (more than a burst) bans the source.
        assert_eq!(
            r.check(a, t0),
            RateVerdict::Ban {
                retry_after_s: 30,
                ban: Duration::from_secs(30)
            }
        );
        assert!(r.is_banned(a, t0 + Duration::from_secs(29)));
        assert!(!r.is_banned(ip("198.51.100.8"), t0));
        let later = t0 + Duration::from_secs(31);
        assert!(!r.is_banned(a, later));
        assert_eq!(r.check(a, later), RateVerdict::Allow);
    }

    #[test]
    fn a_flood_of_sources_is_bounded() {
        let t0 = Instant::now();
        let mut b = Buckets::new(1.0, 1);
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = b.take(ip, t0);
        }
        assert!(b.len() <= MAX_SOURCES + 1, "{}", b.len());
        // The latecomers share the overflow bucket: one token among them all.
        assert!(b.is_empty(IpAddr::V4(std::net::Ipv4Addr::new(11, 0, 0, 1)), t0));
        // Pruning makes room once the early buckets have refilled.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(b.take(ip("11.0.0.2"), later), Ok(()));
    }
}
