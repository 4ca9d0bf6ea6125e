//! Dialog state (RFC 3261 §12): identification, CSeq spaces, route set and remote target,
//! and building in-dialog requests (BYE, re-INVITE, INFO, ACK for 2xx).

use crate::headers::{HeaderError, NameAddr};
use crate::message::{Request, Response};
use crate::method::Method;
use crate::uri::{Scheme, Uri};

/// Call-ID plus both tags: the key for a map of dialogs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an incoming request belongs to, seen from our side (To tag is ours).
    /// `None` when Call-ID or the To tag is missing (an out-of-dialog request).
    pub fn for_incoming(request: &Request) -> Option<Self> {
        Some(Self {
            call_id: request.call_id()?.to_owned(),
            local_tag: request.to().ok()?.tag()?.to_owned(),
            remote_tag: request.from().ok()?.tag().unwrap_or_default().to_owned(),
        })
    }

    /// The dialog a response to our request belongs to (From tag is ours).
    pub fn for_response(response: &Response) -> Option<Self> {
        Some(Self {
            call_id: response.call_id()?.to_owned(),
            local_tag: response.from().ok()?.tag()?.to_owned(),
            remote_tag: response.to().ok()?.tag()?.to_owned(),
        })
    }
}

/// Why a dialog could not be built or a request does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A tag the dialog needs is missing.
    #[error("missing {0} tag")]
    MissingTag(&'static str),
    /// Call-ID or tags do not match this dialog (answer 481).
    #[error("request does not belong to this dialog")]
    NoMatch,
    /// CSeq went backwards (answer 500).
    #[error("CSeq {got} is lower than the last one seen ({last})")]
    OutOfOrder {
        /// CSeq number received.
        got: u32,
        /// Highest number seen before.
        last: u32,
    },
}

impl DialogError {
    /// The response status this error calls for.
    pub fn status_code(&self) -> u16 {
        self.status().0
    }

    /// The response status and reason phrase this error calls for.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Self::NoMatch => (481, "Call/Transaction Does Not Exist"),
            Self::OutOfOrder { .. } => (500, "Server Internal Error"),
            Self::Header(_) | Self::MissingTag(_) => (400, "Bad Request"),
        }
    }
}

/// One dialog, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Last CSeq number we used (the next request uses one more).
    pub local_seq: u32,
    /// Highest CSeq number received from the peer.
    pub remote_seq: Option<u32>,
    /// Our address (From of our requests), without tag.
    pub local_uri: NameAddr,
    /// The peer's address (To of our requests), without tag.
    pub remote_uri: NameAddr,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Route set, in the order Route headers are sent.
    pub route_set: Vec<NameAddr>,
    /// Our Contact URI for target-refresh requests and their answers.
    pub local_contact_uri: Uri,
    /// True when the dialog was set up with a SIPS Request-URI.
    pub secure: bool,
}

fn without_tag(mut na: NameAddr) -> NameAddr {
    na.params.remove("tag");
    na
}

impl Dialog {
    /// The dialog a UAS creates when it answers `invite` with a 2xx (or a 1xx with tag)
    /// carrying `local_tag` and Contact `local_contact` (RFC 3261 §12.1.1). A missing
    /// Contact falls back to the From URI.
    pub fn uas(
        invite: &Request,
        local_tag: &str,
        local_contact: &Uri,
    ) -> Result<Self, DialogError> {
        let call_id = invite
            .call_id()
            .ok_or(HeaderError::Missing("Call-ID"))?
            .to_owned();
        let from = invite.from()?;
        let to = invite.to()?;
        let cseq = invite.cseq()?;
        let remote_target = invite
            .contact()
            .ok()
            .flatten()
            .map_or_else(|| from.uri.clone(), |c| c.uri);
        Ok(Self {
            id: DialogId {
                call_id,
                local_tag: local_tag.to_owned(),
                remote_tag: from.tag().unwrap_or_default().to_owned(),
            },
            local_seq: 0,
            remote_seq: Some(cseq.seq),
            local_uri: without_tag(to),
            remote_uri: without_tag(from),
            remote_target,
            route_set: invite.record_routes()?,
            local_contact_uri: local_contact.clone(),
            secure: invite.uri.scheme == Scheme::Sips,
        })
    }

    /// The dialog a UAC creates from its `invite` and a 2xx `response` (RFC 3261 §12.1.2):
    /// route set is the response's Record-Route reversed.
    pub fn uac(invite: &Request, response: &Response) -> Result<Self, DialogError> {
        let call_id = invite
            .call_id()
            .ok_or(HeaderError::Missing("Call-ID"))?
            .to_owned();
        let from = invite.from()?;
        let local_tag = from
            .tag()
            .ok_or(DialogError::MissingTag("From"))?
            .to_owned();
        let to = response.to()?;
        let remote_tag = to.tag().ok_or(DialogError::MissingTag("To"))?.to_owned();
        let cseq = invite.cseq()?;
        let remote_target = response
            .contact()
            .ok()
            .flatten()
            .map_or_else(|| to.uri.clone(), |c| c.uri);
        let local_contact = invite
            .contact()
            .ok()
            .flatten()
            .map_or_else(|| from.uri.clone(), |c| c.uri);
        let mut route_set = response.record_routes()?;
        route_set.reverse();
        Ok(Self {
            id: DialogId {
                call_id,
                local_tag,
                remote_tag,
            },
            local_seq: cseq.seq,
            remote_seq: None,
            local_uri: without_tag(from),
            remote_uri: without_tag(to),
            remote_target,
            route_set,
            local_contact_uri: local_contact,
            secure: invite.uri.scheme == Scheme::Sips,
        })
    }

    /// The ACK for a 2xx to `invite` (RFC 3261 §13.2.2.4): CSeq number of the INVITE,
    /// route set, target and To tag from `response` (so an answer from another fork is ACKed
    /// correctly; this dialog's state is used where the response lacks them), credentials
    /// copied from the INVITE. Send it with `Endpoint::send_stateless`, again for every
    /// retransmitted 2xx.
    pub fn ack_for_2xx(&self, invite: &Request, response: &Response) -> Request {
        let mut dialog = Self::uac(invite, response).unwrap_or_else(|_| self.clone());
        dialog.local_seq = invite.cseq().map_or(self.local_seq, |c| c.seq);
        let mut ack = dialog.create_request(Method::Ack);
        for name in ["Authorization", "Proxy-Authorization"] {
            for v in invite.headers.get_all(name) {
                ack.headers.push(name, v);
            }
        }
        ack
    }

    /// Our Contact as a header value (`<sip:...>`).
    pub fn local_contact(&self) -> String {
        NameAddr::new(self.local_contact_uri.clone()).to_string()
    }

    /// Builds an in-dialog request (RFC 3261 §12.2.1.1): the next local CSeq (ACK and
    /// CANCEL reuse the current one), Request-URI and Route per loose or strict routing,
    /// Contact on target-refresh methods. Via is added by the endpoint.
    pub fn create_request(&mut self, method: Method) -> Request {
        if !matches!(method, Method::Ack | Method::Cancel) {
            self.local_seq = self.local_seq.wrapping_add(1);
        }
        let loose = self
            .route_set
            .first()
            .is_none_or(|r| r.uri.params.contains("lr"));
        let (uri, routes): (Uri, Vec<String>) = if loose {
            (
                self.remote_target.clone(),
                self.route_set.iter().map(ToString::to_string).collect(),
            )
        } else {
            let mut rest: Vec<String> = self
                .route_set
                .iter()
                .skip(1)
                .map(ToString::to_string)
                .collect();
            rest.push(NameAddr::new(self.remote_target.clone()).to_string());
            let first = self
                .route_set
                .first()
                .map_or_else(|| self.remote_target.clone(), |r| r.uri.clone());
            (first, rest)
        };
        let mut req = Request::new(method.clone(), uri);
        for r in routes {
            req.headers.push("Route", r);
        }
        req.headers.push("Max-Forwards", "70");
        let mut from = self.local_uri.clone();
        from.set_tag(&self.id.local_tag);
        req.headers.push("From", from.to_string());
        let mut to = self.remote_uri.clone();
        if !self.id.remote_tag.is_empty() {
            to.set_tag(&self.id.remote_tag);
        }
        req.headers.push("To", to.to_string());
        req.headers.push("Call-ID", self.id.call_id.clone());
        req.headers
            .push("CSeq", format!("{} {}", self.local_seq, method));
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
        ) {
            req.headers.push("Contact", self.local_contact());
        }
        req
    }

    /// Checks an incoming in-dialog request (RFC 3261 §12.2.2): tags and Call-ID must
    /// match (else 481) and CSeq must not go backwards (else 500). Records the CSeq.
    pub fn check_incoming(&mut self, request: &Request) -> Result<(), DialogError> {
        let matches = request.call_id() == Some(self.id.call_id.as_str())
            && request
                .to()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned))
                .as_deref()
                == Some(self.id.local_tag.as_str())
            && request
                .from()
                .ok()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default()
                == self.id.remote_tag;
        if !matches {
            return Err(DialogError::NoMatch);
        }
        if matches!(request.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let seq = request.cseq()?.seq;
        if let Some(last) = self.remote_seq {
            if seq < last {
                return Err(DialogError::OutOfOrder { got: seq, last });
            }
        }
        self.remote_seq = Some(seq);
        Ok(())
    }

    /// Replaces the remote target after an accepted target refresh (re-INVITE, UPDATE).
    pub fn refresh_target(&mut self, contact: Uri) {
        self.remote_target = contact;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn req(raw: &str) -> Request {
        match Message::parse(raw.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    const INVITE: &str = "INVITE sip:callmux@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP p2;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nRecord-Route: <sip:p2;lr>, <sip:p1;lr>\r\nFrom: \"A\" <sip:alice@a>;tag=ft\r\nTo: <sip:callmux@10.0.0.1>\r\nCall-ID: cid\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@192.0.2.5:5070>\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn uas_dialog_builds_bye_and_checks_incoming() {
        let invite = req(INVITE);
        let me = Uri::parse("sip:callmux@10.0.0.1:5060").unwrap();
        let mut d = Dialog::uas(&invite, "lt", &me).unwrap();
        assert_eq!(
            d.id,
            DialogId {
                call_id: "cid".into(),
                local_tag: "lt".into(),
                remote_tag: "ft".into()
            }
        );
        let bye = d.create_request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.5:5070");
        assert_eq!(
            bye.routes()
                .unwrap()
                .iter()
                .map(|r| r.uri.host.clone())
                .collect::<Vec<_>>(),
            ["p2", "p1"]
        );
        assert_eq!(bye.from().unwrap().tag(), Some("lt"));
        assert_eq!(bye.to().unwrap().tag(), Some("ft"));
        assert_eq!(bye.cseq().unwrap().seq, 1);
        assert!(bye.contact().unwrap().is_none());
        let reinvite = d.create_request(Method::Invite);
        assert_eq!(reinvite.cseq().unwrap().seq, 2);
        assert_eq!(reinvite.contact().unwrap().unwrap().uri, me);
        assert_eq!(d.local_contact(), "<sip:callmux@10.0.0.1:5060>");

        let their_bye = INVITE
            .replace("INVITE sip", "BYE sip")
            .replace("10 INVITE", "11 BYE")
            .replace(
                "To: <sip:callmux@10.0.0.1>",
                "To: <sip:callmux@10.0.0.1>;tag=lt",
            );
        assert_eq!(d.check_incoming(&req(&their_bye)), Ok(()));
        assert_eq!(d.remote_seq, Some(11));
        let old = their_bye.replace("11 BYE", "9 BYE");
        let e = d.check_incoming(&req(&old)).unwrap_err();
        assert_eq!(e.status(), (500, "Server Internal Error"));
        let wrong = their_bye.replace("tag=lt", "tag=zz");
        assert_eq!(
            d.check_incoming(&req(&wrong)).unwrap_err().status_code(),
            481
        );
        let no_tag = INVITE
            .replace("INVITE sip", "BYE sip")
            .replace("10 INVITE", "12 BYE");
        assert_eq!(d.check_incoming(&req(&no_tag)), Err(DialogError::NoMatch));
    }

    #[test]
    fn uac_dialog_reverses_route_set_and_acks() {
        let invite = req(&INVITE.replace("Record-Route: <sip:p2;lr>, <sip:p1;lr>\r\n", ""));
        let mut resp = invite.make_response(200, "OK").with_to_tag("rt");
        resp.headers
            .push("Record-Route", "<sip:p2;lr>, <sip:p1;lr>");
        resp.headers.push("Contact", "<sip:bob@198.51.100.2>");
        let mut d = Dialog::uac(&invite, &resp).unwrap();
        assert_eq!(
            d.route_set
                .iter()
                .map(|r| r.uri.host.clone())
                .collect::<Vec<_>>(),
            ["p1", "p2"]
        );
        assert_eq!(d.id, DialogId::for_response(&resp).unwrap());
        let ack = d.ack_for_2xx(&invite, &resp);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.cseq().unwrap().seq, 10);
        assert_eq!(ack.uri.to_string(), "sip:bob@198.51.100.2");
        let bye = d.create_request(Method::Bye);
        assert_eq!(bye.cseq().unwrap().seq, 11);
        let no_tag = invite.make_response(200, "OK");
        assert_eq!(
            Dialog::uac(&invite, &no_tag),
            Err(DialogError::MissingTag("To"))
        );
    }

    #[test]
    fn strict_route_puts_target_last() {
        let invite = req(&INVITE.replace("<sip:p2;lr>, <sip:p1;lr>", "<sip:p2>, <sip:p1;lr>"));
        let mut d = Dialog::uas(&invite, "lt", &Uri::parse("sip:me@h").unwrap()).unwrap();
        let bye = d.create_request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:p2");
        let routes: Vec<String> = bye
            .routes()
            .unwrap()
            .iter()
            .map(|r| r.uri.to_string())
            .collect();
        assert_eq!(routes, ["sip:p1;lr", "sip:alice@192.0.2.5:5070"]);
        let id = DialogId::for_incoming(&invite);
        assert_eq!(id, None);
    }
}
