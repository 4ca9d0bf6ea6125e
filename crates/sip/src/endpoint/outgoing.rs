//! Everything the application sends: responses on server transactions, requests on new
//! client transactions, stateless ACKs for 2xx, and CANCEL.

use std::time::Instant;

use super::routing::replace_top_via;
use super::{
    CancelState, ClientMachine, ClientTx, ClientTxKey, Endpoint, EndpointError, Peer,
    ServerMachine, ServerTxKey,
};
use crate::headers::Via;
use crate::lex;
use crate::message::{default_reason, Request, Response};
use crate::method::Method;
use crate::transaction::invite_client::InviteClientTx;
use crate::transaction::non_invite_client::NonInviteClientTx;
use crate::transaction::TxError;

fn invalid_request(e: impl ToString) -> EndpointError {
    EndpointError::InvalidRequest(e.to_string())
}

/// A request must carry Call-ID, From, To and a CSeq for its own method.
fn check_request(r: &Request) -> Result<(), EndpointError> {
    r.call_id()
        .ok_or_else(|| invalid_request("missing Call-ID"))?;
    r.from().map_err(invalid_request)?;
    r.to().map_err(invalid_request)?;
    let cseq = r.cseq().map_err(invalid_request)?;
    if cseq.method != r.method {
        return Err(invalid_request(
            "CSeq method differs from the request method",
        ));
    }
    Ok(())
}

impl Endpoint {
    /// Sends the application's answer on a server transaction. A response above 100
    /// without a To tag gets the transaction's tag (stable across provisional and final
    /// responses); `Server` is added when configured. A 2xx to INVITE is retransmitted
    /// until its ACK arrives.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &ServerTxKey,
        response: Response,
    ) -> Result<(), EndpointError> {
        let id = *self
            .server_keys
            .get(key)
            .ok_or(EndpointError::UnknownTransaction)?;
        self.send_server_response(now, id, response)
    }

    /// The To tag this server transaction uses for responses that lack one.
    pub(super) fn tx_to_tag(&mut self, id: u64) -> String {
        if let Some(tag) = self.server.get(&id).and_then(|tx| tx.to_tag.clone()) {
            return tag;
        }
        let tag = self.new_tag();
        if let Some(tx) = self.server.get_mut(&id) {
            tx.to_tag = Some(tag.clone());
        }
        tag
    }

    pub(super) fn send_server_response(
        &mut self,
        now: Instant,
        id: u64,
        mut response: Response,
    ) -> Result<(), EndpointError> {
        if !self.server.contains_key(&id) {
            return Err(EndpointError::UnknownTransaction);
        }
        if !(100..=699).contains(&response.status) {
            return Err(TxError::BadStatus(response.status).into());
        }
        if response.call_id().is_none() || response.cseq().is_err() || response.top_via().is_err() {
            return Err(EndpointError::InvalidResponse(
                "Via, Call-ID and CSeq must be copied from the request (use make_response)".into(),
            ));
        }
        if response.status > 100 && response.to().is_ok_and(|t| t.tag().is_none()) {
            let tag = self.tx_to_tag(id);
            response.set_to_tag(&tag);
        }
        if !self.config.user_agent.is_empty() && !response.headers.contains("Server") {
            response
                .headers
                .push("Server", self.config.user_agent.clone());
        }
        let bytes = response.to_bytes();
        let tx = self
            .server
            .get_mut(&id)
            .ok_or(EndpointError::UnknownTransaction)?;
        let is_invite = match &mut tx.machine {
            ServerMachine::Invite(m) => {
                m.send_response(now, response.status, bytes.clone())?;
                true
            }
            ServerMachine::NonInvite(m) => {
                m.send_response(now, response.status, bytes.clone())?;
                false
            }
        };
        if is_invite && response.is_success() {
            tx.accepted_tag = response.to().ok().and_then(|t| t.tag().map(str::to_owned));
            if let (Some(call_id), Ok(cseq)) = (tx.request.call_id(), tx.request.cseq()) {
                self.accepted.insert((call_id.to_owned(), cseq.seq), id);
            }
        }
        let dest = tx.reply_to.clone();
        self.transmit(dest, bytes);
        self.settle(id);
        Ok(())
    }

    pub(super) fn send_trying(&mut self, now: Instant, id: u64) {
        let Some(tx) = self.server.get(&id) else {
            return;
        };
        let trying = tx.request.make_response(100, "Trying");
        // Cannot fail: the transaction exists and is in Proceeding when this is called.
        let _ = self.send_server_response(now, id, trying);
    }

    /// Sends an automatic final answer on transaction `id`.
    pub(super) fn reply_auto(
        &mut self,
        now: Instant,
        id: u64,
        status: u16,
        extra: Vec<(&'static str, String)>,
    ) {
        let Some(tx) = self.server.get(&id) else {
            return;
        };
        let mut resp = tx.request.make_response(status, default_reason(status));
        for (name, value) in extra {
            resp.headers.push(name, value);
        }
        // The transaction was just created, so it cannot already be final.
        let _ = self.send_server_response(now, id, resp);
    }

    /// Adds what every request we send needs: a Via with a fresh branch (or a branch on
    /// the caller's Via), Max-Forwards 70 and User-Agent when absent.
    fn prepare_outgoing(
        &mut self,
        request: &mut Request,
        peer: &Peer,
    ) -> Result<(), EndpointError> {
        if !request.headers.contains("Via") {
            let branch = self.new_branch();
            let mut via = Via::new(
                peer.transport.via_name(),
                &peer.local.ip().to_string(),
                Some(peer.local.port()),
                &branch,
            );
            via.rport = Some(None);
            request.headers.push_front("Via", via.to_string());
        } else {
            let mut via = request.top_via().map_err(invalid_request)?;
            if via.branch.is_none() {
                via.branch = Some(self.new_branch());
                replace_top_via(&mut request.headers, &via);
            }
        }
        if !request.headers.contains("Max-Forwards") {
            request.headers.push("Max-Forwards", "70");
        }
        if !self.config.user_agent.is_empty() && !request.headers.contains("User-Agent") {
            request
                .headers
                .push("User-Agent", self.config.user_agent.clone());
        }
        Ok(())
    }

    /// Starts a client transaction for `request` towards `peer` and sends it. Requests
    /// need Call-ID, From, To and CSeq; Via (with a new `z9hG4bK` branch and `rport`),
    /// Max-Forwards and User-Agent are added when absent. ACK is refused: use
    /// [`Endpoint::send_stateless`].
    pub fn send_request(
        &mut self,
        now: Instant,
        mut request: Request,
        peer: Peer,
    ) -> Result<ClientTxKey, EndpointError> {
        if request.method == Method::Ack {
            return Err(invalid_request(
                "ACK is not a transaction; use send_stateless",
            ));
        }
        check_request(&request)?;
        self.prepare_outgoing(&mut request, &peer)?;
        let via = request.top_via().map_err(invalid_request)?;
        let branch = via
            .branch
            .ok_or_else(|| invalid_request("top Via has no branch"))?;
        let key = ClientTxKey {
            branch,
            method: request.method.clone(),
        };
        if self.client_keys.contains_key(&key) {
            return Err(invalid_request(
                "a transaction with this branch is still running",
            ));
        }
        let bytes = request.to_bytes();
        let reliable = peer.transport.is_reliable();
        let timers = self.config.timers;
        let machine = if request.method == Method::Invite {
            ClientMachine::Invite(Box::new(InviteClientTx::new(
                now,
                timers,
                reliable,
                request.clone(),
                bytes.clone(),
                self.config.invite_proceeding_timeout,
            )))
        } else {
            ClientMachine::NonInvite(NonInviteClientTx::new(now, timers, reliable, bytes.clone()))
        };
        let id = self.alloc_id();
        self.client_keys.insert(key.clone(), id);
        self.client.insert(
            id,
            ClientTx {
                key: key.clone(),
                request,
                peer: peer.clone(),
                machine,
                cancel: CancelState::None,
                report: true,
            },
        );
        self.transmit(peer, bytes);
        self.refresh_timer(id);
        Ok(key)
    }

    /// Sends a request outside any transaction (the ACK for a 2xx, RFC 3261 §13.2.2.4),
    /// adding Via (new branch), Max-Forwards and User-Agent when absent.
    pub fn send_stateless(&mut self, mut request: Request, peer: Peer) {
        // A malformed caller-supplied Via is sent as is; the peer will reject it.
        let _ = self.prepare_outgoing(&mut request, &peer);
        self.transmit(peer, request.to_bytes());
    }

    /// Cancels an INVITE we sent (RFC 3261 §9.1). Before any provisional response the
    /// CANCEL is deferred until one arrives; after a final response it is refused. The
    /// INVITE then gets its 487 (reported as usual) or times out 64·T1 after the CANCEL.
    /// If a 2xx arrives before any provisional response, no CANCEL is sent: the
    /// application must ACK that 2xx and end the call with BYE.
    pub fn cancel(&mut self, now: Instant, key: &ClientTxKey) -> Result<(), EndpointError> {
        use crate::transaction::invite_client::InviteClientState as S;
        let id = *self
            .client_keys
            .get(key)
            .ok_or(EndpointError::UnknownTransaction)?;
        let tx = self
            .client
            .get_mut(&id)
            .ok_or(EndpointError::UnknownTransaction)?;
        let ClientMachine::Invite(m) = &tx.machine else {
            return Err(EndpointError::CannotCancel);
        };
        match (m.state(), tx.cancel) {
            (S::Calling | S::Proceeding, CancelState::Sent)
            | (S::Calling, CancelState::Pending) => Ok(()),
            (S::Calling, CancelState::None) => {
                tx.cancel = CancelState::Pending;
                Ok(())
            }
            (S::Proceeding, _) => {
                self.send_cancel(now, id);
                Ok(())
            }
            _ => Err(EndpointError::CannotCancel),
        }
    }

    /// Builds the CANCEL from the INVITE of client transaction `id` and sends it on its own
    /// (unreported) transaction with the same branch.
    pub(super) fn send_cancel(&mut self, now: Instant, id: u64) {
        let timeout = self.config.timers.timeout();
        let Some(tx) = self.client.get_mut(&id) else {
            return;
        };
        tx.cancel = CancelState::Sent;
        if let ClientMachine::Invite(m) = &mut tx.machine {
            m.expire_at(now + timeout);
        }
        let invite = &tx.request;
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        if let Some(via) = invite.headers.get("Via") {
            let top = lex::split_list(via).into_iter().next().unwrap_or(via);
            cancel.headers.push("Via", top);
        }
        cancel.headers.push("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = invite.headers.get(name) {
                cancel.headers.push(name, v);
            }
        }
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(0);
        cancel.headers.push("CSeq", format!("{seq} CANCEL"));
        for route in invite.headers.get_all("Route") {
            cancel.headers.push("Route", route);
        }
        if !self.config.user_agent.is_empty() {
            cancel
                .headers
                .push("User-Agent", self.config.user_agent.clone());
        }
        let key = ClientTxKey {
            branch: tx.key.branch.clone(),
            method: Method::Cancel,
        };
        let peer = tx.peer.clone();
        if self.client_keys.contains_key(&key) {
            return;
        }
        let bytes = cancel.to_bytes();
        let machine = ClientMachine::NonInvite(NonInviteClientTx::new(
            now,
            self.config.timers,
            peer.transport.is_reliable(),
            bytes.clone(),
        ));
        let cancel_id = self.alloc_id();
        self.client_keys.insert(key.clone(), cancel_id);
        self.client.insert(
            cancel_id,
            ClientTx {
                key,
                request: cancel,
                peer: peer.clone(),
                machine,
                cancel: CancelState::None,
                report: false,
            },
        );
        self.transmit(peer, bytes);
        self.refresh_timer(cancel_id);
        self.refresh_timer(id);
    }
}
