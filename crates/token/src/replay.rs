//! The `jti` replay table: a token is accepted once; its `jti` is remembered until the
//! token could no longer pass the expiry check anyway. Time is an argument (seconds since
//! 1970), so tests jump through hours in microseconds; the caller adds any locking.

use std::collections::HashMap;

use crate::error::TokenError;

/// Longest `jti` accepted (they are kept in memory).
pub const MAX_JTI_LEN: usize = 256;

/// Most `jti`s remembered at once by default; past this, new tokens are refused until
/// older ones expire (replay protection is never silently dropped).
pub const DEFAULT_MAX_JTIS: usize = 100_000;

/// Fewest entries before the first purge of expired `jti`s.
const MIN_PURGE_AT: usize = 1024;

/// `jti`s of accepted tokens, each with the second after which it is forgotten.
#[derive(Debug)]
pub struct ReplayTable {
    until: HashMap<String, i64>,
    /// Size after the last purge, doubled; the next purge runs when the table reaches it,
    /// so purging costs O(1) amortised per insert.
    purge_at: usize,
    /// Capacity: [`TokenError::TooManyTokens`] beyond it.
    max: usize,
}

impl Default for ReplayTable {
    fn default() -> Self {
        Self::with_capacity_limit(DEFAULT_MAX_JTIS)
    }
}

impl ReplayTable {
    /// A table that remembers at most `max` unexpired `jti`s.
    pub fn with_capacity_limit(max: usize) -> Self {
        Self {
            until: HashMap::new(),
            purge_at: 0,
            max,
        }
    }

    /// Spends `jti` at `now`: refused if it was spent before and is remembered until
    /// `now` or later; otherwise remembered until `until` (both seconds since 1970).
    pub fn spend(&mut self, jti: &str, until: i64, now: i64) -> Result<(), TokenError> {
        if self.until.get(jti).is_some_and(|u| *u >= now) {
            return Err(TokenError::Replayed(jti.to_string()));
        }
        if self.until.len() >= self.purge_at.max(MIN_PURGE_AT) || self.until.len() >= self.max {
            self.purge(now);
        }
        if self.until.len() >= self.max {
            return Err(TokenError::TooManyTokens(self.max));
        }
        self.until.insert(jti.to_string(), until);
        Ok(())
    }

    /// Forgets every `jti` remembered until before `now`.
    pub fn purge(&mut self, now: i64) {
        self.until.retain(|_, u| *u >= now);
        self.purge_at = self.until.len().saturating_mul(2);
    }

    /// How many `jti`s are remembered (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_jtis_are_forgotten_after_expiry() {
        let mut t = ReplayTable::default();
        assert!(t.spend("x", 100, 50).is_ok());
        assert_eq!(t.spend("x", 100, 99).unwrap_err().code(), "token_replayed");
        assert_eq!(t.spend("x", 100, 100).unwrap_err().code(), "token_replayed");
        // After the token's own expiry the jti could only come with an expired token.
        assert!(t.spend("x", 200, 101).is_ok());
        for i in 0..5000 {
            t.spend(&format!("j{i}"), 10, 5).unwrap();
        }
        // Purges (whenever the table has doubled) keep it near the live count.
        for i in 0..4000 {
            t.spend(&format!("late{i}"), 1000, 20).unwrap();
        }
        assert!(t.len() <= 4001, "{}", t.len());
    }

    #[test]
    fn a_full_table_refuses_until_entries_expire() {
        let mut t = ReplayTable::with_capacity_limit(3);
        for j in ["a", "b", "c"] {
            t.spend(j, 10, 0).unwrap();
        }
        assert_eq!(t.spend("d", 10, 5), Err(TokenError::TooManyTokens(3)));
        // The refused one was not remembered; the others still are.
        assert_eq!(t.len(), 3);
        assert_eq!(t.spend("a", 10, 5).unwrap_err().code(), "token_replayed");
        // Once they expire there is room again, and a purged jti is new again.
        t.spend("d", 30, 11).unwrap();
        assert_eq!(t.len(), 1);
        t.spend("a", 30, 11).unwrap();
    }
}
