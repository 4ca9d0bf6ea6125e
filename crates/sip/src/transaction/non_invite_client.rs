//! Non-INVITE client transaction (RFC 3261 §17.1.2).
//!
//! ```text
//!  Trying --1xx--> Proceeding --final--> Completed --Timer K (T4; 0 reliable)--> Terminated
//! ```
//! Timer E retransmits on UDP at T1, then doubling up to T2 (0.5, 1, 2, 4, 4 … s), and at T2
//! once a provisional response arrived; Timer F (64·T1) gives up.

use std::time::{Duration, Instant};

use super::{due, earliest, TimerConfig};

/// States of the non-INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// Final response received; absorbing retransmissions until Timer K.
    Completed,
    /// Done; the owner removes it.
    Terminated,
}

/// What a client transaction asks its owner to do after a timer fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput {
    /// Send the request again.
    Retransmit(Vec<u8>),
    /// Timer B or F (or the proceeding guard) fired: report a timeout.
    Timeout,
    /// The transaction ended.
    Terminated,
}

/// Non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct NonInviteClientTx {
    state: NonInviteClientState,
    timers: TimerConfig,
    reliable: bool,
    bytes: Vec<u8>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
}

impl NonInviteClientTx {
    /// A transaction for a request sent at `now` as `bytes`.
    pub fn new(now: Instant, timers: TimerConfig, reliable: bool, bytes: Vec<u8>) -> Self {
        Self {
            state: NonInviteClientState::Trying,
            timers,
            reliable,
            bytes,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            timeout_at: Some(now + timers.timeout()),
            end_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// True once the transaction can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }

    /// A response with `status` matched this transaction; true when it goes to the application.
    pub fn on_response(&mut self, now: Instant, status: u16) -> bool {
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                if status < 200 {
                    self.state = NonInviteClientState::Proceeding;
                } else {
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    if self.reliable {
                        self.state = NonInviteClientState::Terminated;
                    } else {
                        self.state = NonInviteClientState::Completed;
                        self.end_at = Some(now + self.timers.t4);
                    }
                }
                true
            }
            NonInviteClientState::Completed | NonInviteClientState::Terminated => false,
        }
    }

    /// Earliest pending deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_terminated() {
            return None;
        }
        earliest([self.retransmit_at, self.timeout_at, self.end_at])
    }

    /// Fires every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<ClientOutput> {
        let mut out = Vec::new();
        match self.state {
            NonInviteClientState::Trying | NonInviteClientState::Proceeding => {
                if due(self.timeout_at, now) {
                    self.terminate();
                    out.push(ClientOutput::Timeout);
                    out.push(ClientOutput::Terminated);
                } else if due(self.retransmit_at, now) {
                    out.push(ClientOutput::Retransmit(self.bytes.clone()));
                    self.interval = if self.state == NonInviteClientState::Proceeding {
                        self.timers.t2
                    } else {
                        (self.interval * 2).min(self.timers.t2)
                    };
                    self.retransmit_at = Some(now + self.interval);
                }
            }
            NonInviteClientState::Completed => {
                if due(self.end_at, now) {
                    self.terminate();
                    out.push(ClientOutput::Terminated);
                }
            }
            NonInviteClientState::Terminated => {}
        }
        out
    }

    fn terminate(&mut self) {
        self.state = NonInviteClientState::Terminated;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.end_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(tx: &mut NonInviteClientTx, t0: Instant) -> (Vec<u128>, Option<u128>) {
        let mut times = Vec::new();
        let mut timeout = None;
        while let Some(t) = tx.poll_timeout() {
            for o in tx.handle_timeout(t) {
                match o {
                    ClientOutput::Retransmit(_) => times.push((t - t0).as_millis()),
                    ClientOutput::Timeout => timeout = Some((t - t0).as_millis()),
                    ClientOutput::Terminated => {}
                }
            }
        }
        (times, timeout)
    }

    #[test]
    fn timer_e_doubles_from_t1_to_t2_and_timer_f() {
        let t0 = Instant::now();
        let mut tx = NonInviteClientTx::new(t0, TimerConfig::default(), false, b"BYE".to_vec());
        let (times, timeout) = drive(&mut tx, t0);
        assert_eq!(&times[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(times.last(), Some(&31500));
        assert_eq!(timeout, Some(32000));
    }

    #[test]
    fn proceeding_retransmits_at_t2_then_final_and_timer_k() {
        let t0 = Instant::now();
        let mut tx = NonInviteClientTx::new(t0, TimerConfig::default(), false, b"BYE".to_vec());
        assert!(tx.on_response(t0, 100));
        let first = tx.poll_timeout().unwrap();
        tx.handle_timeout(first);
        assert_eq!(tx.poll_timeout(), Some(first + Duration::from_secs(4)));
        assert!(tx.on_response(first, 200));
        assert!(!tx.on_response(first, 200));
        assert_eq!(tx.poll_timeout(), Some(first + Duration::from_secs(5)));
        assert_eq!(
            tx.handle_timeout(first + Duration::from_secs(5)),
            vec![ClientOutput::Terminated]
        );
    }

    #[test]
    fn reliable_has_no_timer_e_and_no_timer_k() {
        let t0 = Instant::now();
        let mut tx = NonInviteClientTx::new(t0, TimerConfig::default(), true, b"BYE".to_vec());
        let (times, timeout) = drive(&mut tx, t0);
        assert!(times.is_empty());
        assert_eq!(timeout, Some(32000));
        let mut tx = NonInviteClientTx::new(t0, TimerConfig::default(), true, b"BYE".to_vec());
        assert!(tx.on_response(t0, 200));
        assert!(tx.is_terminated());
    }
}
