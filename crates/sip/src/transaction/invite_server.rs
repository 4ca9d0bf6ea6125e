//! INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1).
//!
//! ```text
//!  Proceeding --1xx--> Proceeding
//!  Proceeding --2xx--> Accepted   (2xx retransmitted T1, 2T1 .. T2 until ACK; Timer L = 64·T1)
//!  Proceeding --3xx-6xx--> Completed (Timer G retransmits, Timer H = 64·T1)
//!  Completed --ACK--> Confirmed (Timer I = T4, zero on reliable transports) --> Terminated
//! ```
//! The 2xx retransmission belongs to the UAS core in RFC 3261; it lives here so that one
//! object owns everything that happens after an INVITE. As RFC 3261 §13.3.1.4 says, the 2xx
//! is retransmitted even on reliable transports (a hop behind a proxy may be UDP).

use std::time::{Duration, Instant};

use super::{due, earliest, TimerConfig, TxError};

/// States of the INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    /// No final response yet.
    Proceeding,
    /// Non-2xx final sent, waiting for the ACK.
    Completed,
    /// ACK received for the non-2xx; absorbing retransmitted ACKs.
    Confirmed,
    /// 2xx sent (RFC 6026); waiting for the ACK, absorbing INVITE retransmissions.
    Accepted,
    /// Done; the owner removes it.
    Terminated,
}

/// What the owner must do after a timer fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteServerOutput {
    /// Send these bytes again (Timer G, or 2xx retransmission).
    Retransmit(Vec<u8>),
    /// The application has not answered in time: send 100 Trying now.
    SendTrying,
    /// The 2xx was never acknowledged within 64·T1.
    AckTimeout,
    /// The transaction ended (Timer H, I or L).
    Terminated,
}

/// What to do with a retransmitted INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetransmissionAction {
    /// Re-send the last response.
    Resend(Vec<u8>),
    /// Nothing was sent yet: send 100 Trying now.
    SendTrying,
    /// Drop it silently.
    Absorb,
}

/// What an ACK with this transaction's key (or, for 2xx, its dialog) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAction {
    /// ACK for our non-2xx, or a repeated ACK: nothing to report.
    Absorbed,
    /// The first ACK for our 2xx: report it to the application.
    AcceptedAck,
    /// No final response was sent; the ACK makes no sense here.
    Unexpected,
}

/// INVITE server transaction.
#[derive(Debug, Clone)]
pub struct InviteServerTx {
    state: InviteServerState,
    timers: TimerConfig,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    trying_at: Option<Instant>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    give_up_at: Option<Instant>,
    end_at: Option<Instant>,
    acked: bool,
}

impl InviteServerTx {
    /// A new transaction for an INVITE received at `now`. With `trying_delay` set, a
    /// `SendTrying` output fires if no response is sent within that delay.
    pub fn new(
        now: Instant,
        timers: TimerConfig,
        reliable: bool,
        trying_delay: Option<Duration>,
    ) -> Self {
        Self {
            state: InviteServerState::Proceeding,
            timers,
            reliable,
            last_response: None,
            trying_at: trying_delay.map(|d| now + d),
            retransmit_at: None,
            interval: timers.t1,
            give_up_at: None,
            end_at: None,
            acked: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// True once the transaction can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    /// Records a response the owner is sending now (the owner transmits `bytes` itself).
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Vec<u8>,
    ) -> Result<(), TxError> {
        if !(100..=699).contains(&status) {
            return Err(TxError::BadStatus(status));
        }
        if self.state != InviteServerState::Proceeding {
            return Err(TxError::AlreadyFinal);
        }
        self.last_response = Some(bytes);
        self.trying_at = None;
        match status {
            100..=199 => {}
            200..=299 => {
                self.state = InviteServerState::Accepted;
                self.interval = self.timers.t1;
                self.retransmit_at = Some(now + self.interval);
                self.give_up_at = Some(now + self.timers.timeout());
            }
            _ => {
                self.state = InviteServerState::Completed;
                self.interval = self.timers.t1;
                self.retransmit_at = (!self.reliable).then(|| now + self.interval);
                self.give_up_at = Some(now + self.timers.timeout());
            }
        }
        Ok(())
    }

    /// The INVITE arrived again.
    pub fn on_retransmission(&mut self) -> RetransmissionAction {
        match (self.state, &self.last_response) {
            (InviteServerState::Proceeding, None) => {
                self.trying_at = None;
                RetransmissionAction::SendTrying
            }
            (
                InviteServerState::Proceeding
                | InviteServerState::Completed
                | InviteServerState::Accepted,
                Some(last),
            ) => RetransmissionAction::Resend(last.clone()),
            _ => RetransmissionAction::Absorb,
        }
    }

    /// An ACK for this transaction arrived.
    pub fn on_ack(&mut self, now: Instant) -> AckAction {
        match self.state {
            InviteServerState::Completed => {
                self.retransmit_at = None;
                self.give_up_at = None;
                if self.reliable {
                    self.state = InviteServerState::Terminated;
                } else {
                    self.state = InviteServerState::Confirmed;
                    self.end_at = Some(now + self.timers.t4);
                }
                AckAction::Absorbed
            }
            InviteServerState::Confirmed => AckAction::Absorbed,
            InviteServerState::Accepted if !self.acked => {
                self.acked = true;
                self.retransmit_at = None;
                AckAction::AcceptedAck
            }
            InviteServerState::Accepted => AckAction::Absorbed,
            InviteServerState::Proceeding | InviteServerState::Terminated => AckAction::Unexpected,
        }
    }

    /// True when the 2xx has been acknowledged.
    pub fn is_acked(&self) -> bool {
        self.acked
    }

    /// Earliest pending deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_terminated() {
            return None;
        }
        earliest([
            self.trying_at,
            self.retransmit_at,
            self.give_up_at,
            self.end_at,
        ])
    }

    /// Fires every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<InviteServerOutput> {
        let mut out = Vec::new();
        if due(self.trying_at, now) {
            self.trying_at = None;
            if self.state == InviteServerState::Proceeding && self.last_response.is_none() {
                out.push(InviteServerOutput::SendTrying);
            }
        }
        match self.state {
            InviteServerState::Completed | InviteServerState::Accepted => {
                if due(self.give_up_at, now) {
                    if self.state == InviteServerState::Accepted && !self.acked {
                        out.push(InviteServerOutput::AckTimeout);
                    }
                    self.terminate();
                    out.push(InviteServerOutput::Terminated);
                } else if due(self.retransmit_at, now) {
                    if let Some(last) = &self.last_response {
                        out.push(InviteServerOutput::Retransmit(last.clone()));
                    }
                    self.interval = (self.interval * 2).min(self.timers.t2);
                    self.retransmit_at = Some(now + self.interval);
                }
            }
            InviteServerState::Confirmed => {
                if due(self.end_at, now) {
                    self.terminate();
                    out.push(InviteServerOutput::Terminated);
                }
            }
            InviteServerState::Proceeding | InviteServerState::Terminated => {}
        }
        out
    }

    fn terminate(&mut self) {
        self.state = InviteServerState::Terminated;
        self.retransmit_at = None;
        self.give_up_at = None;
        self.end_at = None;
        self.trying_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        tx: &mut InviteServerTx,
        start: Instant,
        limit: Duration,
    ) -> Vec<(Duration, InviteServerOutput)> {
        let mut out = Vec::new();
        while let Some(t) = tx.poll_timeout() {
            if t - start > limit {
                break;
            }
            for o in tx.handle_timeout(t) {
                out.push((t - start, o));
            }
        }
        out
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn trying_after_delay_unless_answered() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), false, Some(ms(200)));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(200)));
        assert_eq!(
            tx.handle_timeout(t0 + ms(200)),
            vec![InviteServerOutput::SendTrying]
        );
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), false, Some(ms(200)));
        tx.send_response(t0 + ms(50), 180, b"180".to_vec()).unwrap();
        assert_eq!(tx.poll_timeout(), None);
        assert_eq!(
            tx.on_retransmission(),
            RetransmissionAction::Resend(b"180".to_vec())
        );
    }

    #[test]
    fn timer_g_doubles_to_t2_and_timer_h_ends() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), false, None);
        tx.send_response(t0, 486, b"486".to_vec()).unwrap();
        let out = run(&mut tx, t0, Duration::from_secs(40));
        let times: Vec<u64> = out
            .iter()
            .filter(|(_, o)| matches!(o, InviteServerOutput::Retransmit(_)))
            .map(|(t, _)| t.as_millis() as u64)
            .collect();
        assert_eq!(
            times,
            [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(
            out.last(),
            Some(&(ms(32000), InviteServerOutput::Terminated))
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn ack_confirms_then_timer_i() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), false, None);
        tx.send_response(t0, 404, b"404".to_vec()).unwrap();
        assert_eq!(tx.on_ack(t0 + ms(100)), AckAction::Absorbed);
        assert_eq!(tx.state(), InviteServerState::Confirmed);
        assert_eq!(tx.on_retransmission(), RetransmissionAction::Absorb);
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(5100)));
        assert_eq!(
            tx.handle_timeout(t0 + ms(5100)),
            vec![InviteServerOutput::Terminated]
        );
        // reliable: no Timer G, and the ACK ends it at once
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), true, None);
        tx.send_response(t0, 404, b"404".to_vec()).unwrap();
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32000)));
        tx.on_ack(t0);
        assert!(tx.is_terminated());
    }

    #[test]
    fn accepted_retransmits_until_ack_or_times_out() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), false, None);
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert_eq!(
            tx.send_response(t0, 200, b"200".to_vec()),
            Err(TxError::AlreadyFinal)
        );
        let out = run(&mut tx, t0, Duration::from_secs(40));
        let n = out
            .iter()
            .filter(|(_, o)| matches!(o, InviteServerOutput::Retransmit(_)))
            .count();
        assert_eq!(n, 10);
        assert_eq!(
            out.iter()
                .rev()
                .take(2)
                .map(|(t, o)| (t.as_millis(), o.clone()))
                .collect::<Vec<_>>(),
            vec![
                (32000, InviteServerOutput::Terminated),
                (32000, InviteServerOutput::AckTimeout)
            ]
        );

        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), true, None);
        tx.send_response(t0, 200, b"200".to_vec()).unwrap();
        assert_eq!(
            tx.handle_timeout(t0 + ms(500)),
            vec![InviteServerOutput::Retransmit(b"200".to_vec())]
        );
        assert_eq!(tx.on_ack(t0 + ms(600)), AckAction::AcceptedAck);
        assert_eq!(tx.on_ack(t0 + ms(700)), AckAction::Absorbed);
        assert_eq!(
            tx.on_retransmission(),
            RetransmissionAction::Resend(b"200".to_vec())
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(32000)));
        assert_eq!(
            tx.handle_timeout(t0 + ms(32000)),
            vec![InviteServerOutput::Terminated]
        );
    }

    #[test]
    fn misuse_is_reported() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new(t0, TimerConfig::default(), false, None);
        assert_eq!(
            tx.send_response(t0, 99, vec![]),
            Err(TxError::BadStatus(99))
        );
        assert_eq!(tx.on_ack(t0), AckAction::Unexpected);
        assert_eq!(tx.on_retransmission(), RetransmissionAction::SendTrying);
    }
}
