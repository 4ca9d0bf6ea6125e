//! Parallel forking of an outbound leg (RFC 3261 §16.7 seen from the UAC side): a
//! `connect` to a user registered from several phones sends one INVITE to each. They
//! share a Call-ID, so the call routes every answer to the connect; the first to answer
//! wins and the others get CANCEL. While nothing answered, a branch that fails just drops
//! out; the connect ends with the outcome of the last one.

use std::ops::Deref;
use std::time::Instant;

use callmux_sip::{ClientTxKey, Request, Response, ServerTxKey};
use tracing::info;

use super::{OutboundLeg, Progress};
use crate::sip_task::SipHandle;

/// One or more branches of a leg. Field access goes to the current primary branch (the
/// one that answered, once one did).
pub(crate) struct ForkedLeg {
    primary: OutboundLeg,
    others: Vec<OutboundLeg>,
    answered: bool,
    rang: bool,
}

impl Deref for ForkedLeg {
    type Target = OutboundLeg;

    fn deref(&self) -> &OutboundLeg {
        &self.primary
    }
}

impl ForkedLeg {
    /// A leg of `primary` and further branches (same Call-ID).
    pub(crate) fn new(primary: OutboundLeg, others: Vec<OutboundLeg>) -> Self {
        Self {
            primary,
            others,
            answered: false,
            rang: false,
        }
    }

    /// When any branch must be woken.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .filter_map(OutboundLeg::deadline)
            .min()
    }

    /// A response to any branch's request.
    pub(crate) async fn on_response(
        &mut self,
        sip: &SipHandle,
        key: &ClientTxKey,
        r: &Response,
    ) -> Progress {
        let p = self.primary.on_response(sip, key, r).await;
        if p != Progress::Nothing {
            return self.after_primary(sip, p);
        }
        for i in 0..self.others.len() {
            let Some(leg) = self.others.get_mut(i) else {
                break;
            };
            let p = leg.on_response(sip, key, r).await;
            if p != Progress::Nothing {
                return self.after_other(sip, i, p);
            }
        }
        Progress::Nothing
    }

    /// A request from the callee: only the answered (primary) branch has a dialog.
    pub(crate) fn on_request(
        &mut self,
        sip: &SipHandle,
        key: ServerTxKey,
        req: &Request,
    ) -> Progress {
        let p = self.primary.on_request(sip, key, req);
        self.after_primary(sip, p)
    }

    /// A branch's transaction got no answer.
    pub(crate) fn on_client_timeout(&mut self, sip: &SipHandle, key: &ClientTxKey) -> Progress {
        let p = self.primary.on_client_timeout(key);
        if p != Progress::Nothing {
            return self.after_primary(sip, p);
        }
        for i in 0..self.others.len() {
            let Some(leg) = self.others.get_mut(i) else {
                break;
            };
            let p = leg.on_client_timeout(key);
            if p != Progress::Nothing {
                return self.after_other(sip, i, p);
            }
        }
        Progress::Nothing
    }

    /// Ringing time-out of every branch.
    pub(crate) fn on_timeout(&mut self, sip: &SipHandle, now: Instant) -> Progress {
        for leg in std::iter::once(&mut self.primary).chain(&mut self.others) {
            let _ = leg.on_timeout(sip, now);
        }
        Progress::Nothing
    }

    /// Ends every branch (BYE the answered one, CANCEL the ringing ones).
    pub(crate) async fn hangup(&mut self, sip: &SipHandle) {
        self.primary.hangup(sip).await;
        for leg in &mut self.others {
            leg.hangup(sip).await;
        }
    }

    /// The answered branch's media.
    pub(crate) fn take_media(
        &mut self,
        reorder_delay: std::time::Duration,
        seed: u64,
    ) -> anyhow::Result<Option<crate::media_leg::MediaLeg>> {
        self.primary.take_media(reorder_delay, seed)
    }

    fn ringing_once(&mut self) -> Progress {
        if self.rang {
            return Progress::Nothing;
        }
        self.rang = true;
        Progress::Ringing
    }

    fn cancel_others(&mut self, sip: &SipHandle) {
        for leg in &mut self.others {
            info!(leg = %leg.uuid, "another branch answered: cancelling this one");
            leg.cancel(sip);
        }
    }

    fn after_primary(&mut self, sip: &SipHandle, p: Progress) -> Progress {
        match p {
            Progress::Answered if !self.answered => {
                self.answered = true;
                self.cancel_others(sip);
                Progress::Answered
            }
            Progress::Ringing => self.ringing_once(),
            Progress::Ended(outcome) if !self.answered && !self.others.is_empty() => {
                info!(leg = %self.primary.uuid, outcome = outcome.status(), branches_left = self.others.len(), "branch ended; others still ringing");
                self.primary = self.others.remove(0);
                Progress::Nothing
            }
            other => other,
        }
    }

    fn after_other(&mut self, sip: &SipHandle, i: usize, p: Progress) -> Progress {
        match p {
            Progress::Answered if !self.answered => {
                if let Some(winner) = self.others.get_mut(i) {
                    std::mem::swap(&mut self.primary, winner);
                }
                self.answered = true;
                self.cancel_others(sip);
                Progress::Answered
            }
            Progress::Ringing if !self.answered => self.ringing_once(),
            Progress::Ended(outcome) => {
                if i < self.others.len() {
                    let gone = self.others.remove(i);
                    info!(leg = %gone.uuid, outcome = outcome.status(), "branch ended");
                }
                Progress::Nothing
            }
            _ => Progress::Nothing,
        }
    }
}
