//! The SIP endpoint: one sans-IO object that owns every transaction and answers what can be
//! answered without the application (retransmissions, CANCEL, OPTIONS, 400/405/416/420/483/
//! 501). It is driven like quinn-proto's endpoint:
//!
//! ```text
//! ep.handle_input(now, peer, bytes)   // one datagram, or one message cut by StreamFramer
//! ep.handle_timeout(now)              // when poll_timeout() has passed
//! while let Some(t) = ep.poll_transmit() { send t.bytes to t.peer }
//! while let Some(e) = ep.poll_event() { ... ep.respond(now, &key, response) ... }
//! sleep until ep.poll_timeout()
//! ```
//! Output is deterministic for a given seed and input sequence: events and transmits come
//! out in the order they were caused, and timers that fall due together fire in the order
//! their transactions were created.

mod incoming;
mod outgoing;
mod routing;
mod timers;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{ParseLimits, Request, Response};
use crate::method::Method;
use crate::rng::Rng;
use crate::transaction::invite_client::InviteClientTx;
use crate::transaction::invite_server::InviteServerTx;
use crate::transaction::non_invite_client::NonInviteClientTx;
use crate::transaction::non_invite_server::NonInviteServerTx;
use crate::transaction::{TimerConfig, TxError};

/// Transport a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP: unreliable, retransmissions on.
    Udp,
    /// TCP: reliable, no retransmissions.
    Tcp,
    /// TLS over TCP: reliable.
    Tls,
}

impl TransportKind {
    /// True for TCP and TLS.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The token used in Via headers.
    pub fn via_name(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

/// The driver's handle for one stream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Where a message came from or goes to. `local` must be an address the remote side can
/// reach: it becomes the sent-by of the Via the endpoint adds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport.
    pub transport: TransportKind,
    /// Our socket address.
    pub local: SocketAddr,
    /// The remote socket address.
    pub remote: SocketAddr,
    /// For TCP/TLS: the connection to reply on.
    pub connection: Option<ConnectionId>,
}

/// Bytes the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination (for streams, `connection` names the connection to use).
    pub peer: Peer,
    /// One complete SIP message.
    pub bytes: Vec<u8>,
}

/// Identifies a server transaction (RFC 3261 §17.2.3: branch, sent-by, method).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxKey {
    branch: String,
    sent_by: String,
    method: Method,
}

impl ServerTxKey {
    /// The method of the request that created the transaction.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

/// Identifies a client transaction (RFC 3261 §17.1.3: branch and CSeq method).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxKey {
    branch: String,
    method: Method,
}

impl ClientTxKey {
    /// The method of the request sent.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Via branch of the request sent.
    pub fn branch(&self) -> &str {
        &self.branch
    }
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new request the application must answer with [`Endpoint::respond`] (INVITE, BYE,
    /// INFO, REGISTER, …; not auto-answered OPTIONS, CANCEL or rejected methods).
    IncomingRequest {
        /// Transaction to answer on.
        key: ServerTxKey,
        /// The request, its top Via stamped with `received`/`rport`.
        request: Request,
        /// Where it came from.
        peer: Peer,
    },
    /// The first ACK for a 2xx we sent (its retransmission has stopped).
    AckReceived {
        /// The ACK (may carry an SDP answer).
        request: Request,
        /// Where it came from.
        peer: Peer,
    },
    /// A pending INVITE was cancelled; 200 to the CANCEL and 487 to the INVITE were sent.
    InviteCancelled {
        /// The INVITE's transaction.
        key: ServerTxKey,
        /// The CANCEL request.
        cancel: Request,
    },
    /// A response to a request we sent (every 2xx to INVITE, so each can be ACKed).
    ResponseReceived {
        /// The client transaction.
        key: ClientTxKey,
        /// The response.
        response: Response,
        /// Where it came from.
        peer: Peer,
    },
    /// No final response in time (Timer B/F, or the proceeding guard / 64·T1 after CANCEL).
    ClientTimeout {
        /// The client transaction.
        key: ClientTxKey,
    },
    /// A 2xx to INVITE was never acknowledged (64·T1): tear the call down with BYE.
    AckTimeout {
        /// The INVITE's transaction.
        key: ServerTxKey,
        /// Its Call-ID.
        call_id: String,
    },
    /// Input that did not parse. `answered` says whether a 400 (or 505/513) went back.
    Malformed {
        /// Where it came from.
        peer: Peer,
        /// What was wrong.
        reason: String,
        /// True when an error response was sent.
        answered: bool,
    },
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Put in `User-Agent` of requests and `Server` of responses; empty for none.
    pub user_agent: String,
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// Answer OPTIONS with 200 (Allow, Accept) without asking the application.
    pub auto_options: bool,
    /// Methods the application handles; others get 405 (known) or 501 (unknown).
    /// ACK and CANCEL are always handled.
    pub allowed_methods: Vec<Method>,
    /// Message and header-line size limits.
    pub limits: ParseLimits,
    /// Send 100 Trying for an INVITE the application has not answered within this delay
    /// (RFC 3261 §17.2.1 suggests 200 ms); zero sends it at once.
    pub trying_delay: Duration,
    /// Option tags we support; a Require with any other gets 420 Bad Extension.
    pub supported_extensions: Vec<String>,
    /// Give up on an outgoing INVITE that got a provisional response but no final one
    /// within this time (like RFC 3261 Timer C); `None` waits for ever.
    pub invite_proceeding_timeout: Option<Duration>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            user_agent: format!("callmux/{}", env!("CARGO_PKG_VERSION")),
            timers: TimerConfig::default(),
            auto_options: true,
            allowed_methods: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
            ],
            limits: ParseLimits::default(),
            trying_delay: Duration::from_millis(200),
            supported_extensions: Vec::new(),
            invite_proceeding_timeout: Some(Duration::from_secs(180)),
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests received (valid ones, retransmissions included).
    pub requests: u64,
    /// Responses received (valid ones, retransmissions included).
    pub responses: u64,
    /// Retransmissions we sent (timers, and answers to retransmitted requests).
    pub retransmissions_sent: u64,
    /// Retransmitted requests, responses and ACKs absorbed.
    pub retransmissions_absorbed: u64,
    /// Malformed requests answered with an error response.
    pub malformed_answered: u64,
    /// Malformed input dropped (responses, ACKs, or too broken to answer).
    pub malformed_dropped: u64,
    /// Responses matching no client transaction.
    pub stray_responses: u64,
    /// ACKs matching no INVITE transaction.
    pub stray_acks: u64,
    /// CRLF keep-alive datagrams ignored.
    pub keepalives: u64,
}

/// API misuse by the application (never caused by the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No live transaction has this key (it never existed or has terminated).
    #[error("no transaction for this key (unknown or already terminated)")]
    UnknownTransaction,
    /// The transaction refused the response (already final, bad status).
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// The request lacks something a transaction needs.
    #[error("request cannot be sent: {0}")]
    InvalidRequest(String),
    /// The response lacks headers the peer needs to match it.
    #[error("response cannot be sent: {0}")]
    InvalidResponse(String),
    /// The INVITE already has a final response (or is not an INVITE).
    #[error("the transaction can no longer be cancelled")]
    CannotCancel,
}

#[derive(Debug)]
enum ServerMachine {
    Invite(InviteServerTx),
    NonInvite(NonInviteServerTx),
}

#[derive(Debug)]
struct ServerTx {
    key: ServerTxKey,
    request: Request,
    reply_to: Peer,
    to_tag: Option<String>,
    accepted_tag: Option<String>,
    machine: ServerMachine,
}

#[derive(Debug)]
enum ClientMachine {
    Invite(Box<InviteClientTx>),
    NonInvite(NonInviteClientTx),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelState {
    None,
    Pending,
    Sent,
}

#[derive(Debug)]
struct ClientTx {
    key: ClientTxKey,
    request: Request,
    peer: Peer,
    machine: ClientMachine,
    cancel: CancelState,
    /// False for CANCELs the endpoint sent itself: their outcome is not reported.
    report: bool,
}

/// The sans-IO SIP endpoint. See the module docs for the run loop.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    rng: Rng,
    next_id: u64,
    server: HashMap<u64, ServerTx>,
    server_keys: HashMap<ServerTxKey, u64>,
    client: HashMap<u64, ClientTx>,
    client_keys: HashMap<ClientTxKey, u64>,
    /// (Call-ID, CSeq number) of INVITEs answered with 2xx, for matching their ACK.
    accepted: HashMap<(String, u32), u64>,
    timers: BTreeSet<(Instant, u64)>,
    deadlines: HashMap<u64, Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: EndpointStats,
}

impl Endpoint {
    /// A new endpoint. All tags, branches and Call-IDs it makes derive from `rng_seed`.
    pub fn new(config: EndpointConfig, rng_seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(rng_seed),
            next_id: 0,
            server: HashMap::new(),
            server_keys: HashMap::new(),
            client: HashMap::new(),
            client_keys: HashMap::new(),
            accepted: HashMap::new(),
            timers: BTreeSet::new(),
            deadlines: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Starts handing requests of `method` to the application (a service enabled while
    /// running, e.g. REGISTER once a registrar exists) instead of answering 405.
    pub fn allow_method(&mut self, method: Method) {
        if !self.config.allowed_methods.contains(&method) {
            self.config.allowed_methods.push(method);
        }
    }

    /// Next message to send, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the application, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Endpoint::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().next().map(|(t, _)| *t)
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Live server transactions (for metrics and tests).
    pub fn server_transactions(&self) -> usize {
        self.server.len()
    }

    /// Live client transactions (for metrics and tests).
    pub fn client_transactions(&self) -> usize {
        self.client.len()
    }

    /// A fresh From/To tag.
    pub fn new_tag(&mut self) -> String {
        self.rng.hex(1)
    }

    /// A fresh RFC 3261 branch (`z9hG4bK…`).
    pub fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}", self.rng.hex(1))
    }

    /// A fresh Call-ID `<random>@host`.
    pub fn new_call_id(&mut self, host: &str) -> String {
        format!("{}@{}", self.rng.hex(2), host)
    }

    fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn transmit(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, bytes });
    }
}
