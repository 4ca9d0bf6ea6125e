//! The deadline index and timer dispatch. Every transaction has at most one entry in
//! `timers` (its earliest deadline), keyed by (deadline, creation id) so that equal
//! deadlines fire in creation order, whatever the hash maps do.

use std::time::Instant;

use super::{ClientMachine, Endpoint, Event, ServerMachine};
use crate::transaction::invite_server::InviteServerOutput;
use crate::transaction::non_invite_client::ClientOutput;

/// Upper bound on passes over due timers in one `handle_timeout` call; a transaction whose
/// handler leaves a deadline in the past is picked up by the next call instead of looping.
const MAX_PASSES: usize = 8;

impl Endpoint {
    /// Fires every timer due at `now`: retransmissions, 100 Trying, timeouts, clean-up.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_PASSES {
            let due: Vec<u64> = self
                .timers
                .iter()
                .take_while(|(t, _)| *t <= now)
                .map(|(_, id)| *id)
                .collect();
            if due.is_empty() {
                return;
            }
            for id in due {
                self.fire(now, id);
            }
        }
    }

    /// Re-indexes transaction `id` after its machine changed.
    pub(super) fn refresh_timer(&mut self, id: u64) {
        let next = if let Some(tx) = self.server.get(&id) {
            match &tx.machine {
                ServerMachine::Invite(m) => m.poll_timeout(),
                ServerMachine::NonInvite(m) => m.poll_timeout(),
            }
        } else if let Some(tx) = self.client.get(&id) {
            match &tx.machine {
                ClientMachine::Invite(m) => m.poll_timeout(),
                ClientMachine::NonInvite(m) => m.poll_timeout(),
            }
        } else {
            None
        };
        if let Some(old) = self.deadlines.remove(&id) {
            self.timers.remove(&(old, id));
        }
        if let Some(t) = next {
            self.deadlines.insert(id, t);
            self.timers.insert((t, id));
        }
    }

    /// Drops a terminated transaction everywhere.
    pub(super) fn remove_tx(&mut self, id: u64) {
        if let Some(tx) = self.server.remove(&id) {
            self.server_keys.remove(&tx.key);
            if let (Some(call_id), Ok(cseq)) = (tx.request.call_id(), tx.request.cseq()) {
                let k = (call_id.to_owned(), cseq.seq);
                if self.accepted.get(&k) == Some(&id) {
                    self.accepted.remove(&k);
                }
            }
        }
        if let Some(tx) = self.client.remove(&id) {
            self.client_keys.remove(&tx.key);
        }
        if let Some(old) = self.deadlines.remove(&id) {
            self.timers.remove(&(old, id));
        }
    }

    /// Removes `id` when its machine has terminated, otherwise re-indexes its timer.
    pub(super) fn settle(&mut self, id: u64) {
        let terminated = if let Some(tx) = self.server.get(&id) {
            match &tx.machine {
                ServerMachine::Invite(m) => m.is_terminated(),
                ServerMachine::NonInvite(m) => m.is_terminated(),
            }
        } else if let Some(tx) = self.client.get(&id) {
            match &tx.machine {
                ClientMachine::Invite(m) => m.is_terminated(),
                ClientMachine::NonInvite(m) => m.is_terminated(),
            }
        } else {
            false
        };
        if terminated {
            self.remove_tx(id);
        } else {
            self.refresh_timer(id);
        }
    }

    fn fire(&mut self, now: Instant, id: u64) {
        if let Some(tx) = self.server.get_mut(&id) {
            let outputs = match &mut tx.machine {
                ServerMachine::Invite(m) => m.handle_timeout(now),
                ServerMachine::NonInvite(m) => {
                    m.handle_timeout(now);
                    Vec::new()
                }
            };
            let reply_to = tx.reply_to.clone();
            let key = tx.key.clone();
            let call_id = tx.request.call_id().unwrap_or("").to_owned();
            for out in outputs {
                match out {
                    InviteServerOutput::Retransmit(bytes) => {
                        self.stats.retransmissions_sent += 1;
                        self.transmit(reply_to.clone(), bytes);
                    }
                    InviteServerOutput::SendTrying => self.send_trying(now, id),
                    InviteServerOutput::AckTimeout => self.events.push_back(Event::AckTimeout {
                        key: key.clone(),
                        call_id: call_id.clone(),
                    }),
                    InviteServerOutput::Terminated => {}
                }
            }
        } else if let Some(tx) = self.client.get_mut(&id) {
            let outputs = match &mut tx.machine {
                ClientMachine::Invite(m) => m.handle_timeout(now),
                ClientMachine::NonInvite(m) => m.handle_timeout(now),
            };
            let peer = tx.peer.clone();
            let key = tx.key.clone();
            let report = tx.report;
            for out in outputs {
                match out {
                    ClientOutput::Retransmit(bytes) => {
                        self.stats.retransmissions_sent += 1;
                        self.transmit(peer.clone(), bytes);
                    }
                    ClientOutput::Timeout if report => {
                        self.events
                            .push_back(Event::ClientTimeout { key: key.clone() });
                    }
                    ClientOutput::Timeout | ClientOutput::Terminated => {}
                }
            }
        }
        self.settle(id);
    }
}
