//! Non-INVITE server transaction (RFC 3261 §17.2.2).
//!
//! ```text
//!  Trying --1xx--> Proceeding --final--> Completed --Timer J (64·T1; 0 reliable)--> Terminated
//! ```
//! Retransmitted requests are absorbed in Trying and answered with the last response after.

use std::time::Instant;

use super::{due, TimerConfig, TxError};

/// States of the non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    /// Nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// Final response sent; answering retransmissions until Timer J.
    Completed,
    /// Done; the owner removes it.
    Terminated,
}

/// Non-INVITE server transaction.
#[derive(Debug, Clone)]
pub struct NonInviteServerTx {
    state: NonInviteServerState,
    timers: TimerConfig,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    end_at: Option<Instant>,
}

impl NonInviteServerTx {
    /// A new transaction for a request just received.
    pub fn new(timers: TimerConfig, reliable: bool) -> Self {
        Self {
            state: NonInviteServerState::Trying,
            timers,
            reliable,
            last_response: None,
            end_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// True once the transaction can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }

    /// Records a response the owner is sending now.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Result<(), TxError> {
        if !(100..=699).contains(&status) {
            return Err(TxError::BadStatus(status));
        }
        if !matches!(
            self.state,
            NonInviteServerState::Trying | NonInviteServerState::Proceeding
        ) {
            return Err(TxError::AlreadyFinal);
        }
        self.last_response = Some(bytes);
        if status < 200 {
            self.state = NonInviteServerState::Proceeding;
        } else if self.reliable {
            self.state = NonInviteServerState::Terminated;
        } else {
            self.state = NonInviteServerState::Completed;
            self.end_at = Some(now + self.timers.timeout());
        }
        Ok(())
    }

    /// The request arrived again: the bytes to re-send, if any.
    pub fn on_retransmission(&self) -> Option<Vec<u8>> {
        match self.state {
            NonInviteServerState::Proceeding | NonInviteServerState::Completed => {
                self.last_response.clone()
            }
            _ => None,
        }
    }

    /// Timer J deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.end_at.filter(|_| !self.is_terminated())
    }

    /// Fires Timer J; returns true when the transaction just terminated.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.state == NonInviteServerState::Completed && due(self.end_at, now) {
            self.state = NonInviteServerState::Terminated;
            self.end_at = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lifecycle_unreliable() {
        let t0 = Instant::now();
        let mut tx = NonInviteServerTx::new(TimerConfig::default(), false);
        assert_eq!(tx.on_retransmission(), None);
        tx.send_response(t0, 100, b"100".to_vec()).unwrap();
        assert_eq!(tx.state(), NonInviteServerState::Proceeding);
        assert_eq!(tx.on_retransmission(), Some(b"100".to_vec()));
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert_eq!(tx.on_retransmission(), Some(b"200".to_vec()));
        assert_eq!(
            tx.send_response(t0, 500, vec![]),
            Err(TxError::AlreadyFinal)
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(!tx.handle_timeout(t0 + Duration::from_secs(31)));
        assert!(tx.handle_timeout(t0 + Duration::from_secs(32)));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn reliable_ends_at_final() {
        let t0 = Instant::now();
        let mut tx = NonInviteServerTx::new(TimerConfig::default(), true);
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert!(tx.is_terminated());
        assert_eq!(tx.send_response(t0, 0, vec![]), Err(TxError::BadStatus(0)));
    }
}
