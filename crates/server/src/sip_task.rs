//! The SIP driver: one task owns the sans-IO `sip::Endpoint`, the UDP socket and the TCP
//! and TLS connections. It feeds them bytes and time, sends what the endpoint wants sent,
//! and routes events to the task of the call they belong to (by Call-ID). Calls talk back
//! through [`SipCommand`]s. New INVITEs pass the security gate (`crate::security`) before
//! the owner's handler sees them; datagrams of a banned source are dropped unread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use callmux_sip::{
    ClientTxKey, ConnectionId, Endpoint, EndpointConfig, Event, Method, Peer, Request, Response,
    ServerTxKey, StreamFramer, TransportKind,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::security::{GateVerdict, InviteGate};

/// A TLS handshake that has not finished by then is abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the SIP task tells a call.
#[derive(Debug)]
pub(crate) enum CallInput {
    /// A request inside the call's dialog (BYE, INFO, re-INVITE, …); the call must answer it.
    Request { key: ServerTxKey, request: Request },
    /// The ACK for our 2xx.
    Ack,
    /// The caller cancelled the INVITE; 487 was already sent.
    Cancelled,
    /// A response to a request the call sent.
    Response {
        key: ClientTxKey,
        response: Response,
    },
    /// A request the call sent got no final response (Timer B/F).
    ClientTimeout { key: ClientTxKey },
    /// Our 2xx was never acknowledged.
    AckTimeout,
    /// The server is shutting down.
    Shutdown,
}

/// What a call asks of the SIP task.
#[derive(Debug)]
pub(crate) enum SipCommand {
    /// Answer a request received by the call.
    Respond {
        key: ServerTxKey,
        response: Response,
    },
    /// Send a request in a client transaction; responses come back as `CallInput::Response`
    /// to whoever registered the request's Call-ID.
    SendRequest {
        request: Request,
        peer: Peer,
        reply: oneshot::Sender<Result<ClientTxKey, String>>,
    },
    /// Send an ACK for a 2xx.
    SendStateless { request: Request, peer: Peer },
    /// CANCEL a pending outgoing INVITE.
    Cancel { key: ClientTxKey },
    /// Route messages of this Call-ID to this call (outbound legs, the UAC).
    Register {
        call_id: String,
        inputs: mpsc::UnboundedSender<CallInput>,
    },
    /// The call ended; forget its Call-ID.
    Unregister { call_id: String },
    /// The server is stopping: every call is told to end; new INVITEs get 503.
    Shutdown,
    /// New security settings (SIGHUP): the gate new INVITEs pass from now on.
    SetGate(Box<InviteGate>),
    /// Replace the registrar's users (SIGHUP); ignored when no registrar runs.
    SetUsers {
        /// Users, passwords, realm and algorithms; `None` when no user is left.
        digest: Option<Box<crate::security::digest::DigestSettings>>,
        /// Users restricted to some sources.
        user_acls: HashMap<String, crate::security::acl::Acl>,
    },
    /// Start answering REGISTER (SIGHUP added the first users to a server started without).
    StartRegistrar(Box<crate::registrar::Registrar>),
}

/// How the owner of the SIP task answers a new INVITE.
pub(crate) enum InviteDecision {
    /// Route this dialog's messages to a call task (which answers the INVITE itself).
    Accept(mpsc::UnboundedSender<CallInput>),
    /// Answer at once with this response (e.g. 503 when full).
    Reject(Response),
}

/// Decides on new INVITEs (out of dialog). Runs inside the SIP task; must not block.
/// Called for each new INVITE the gate admitted, with the user it authenticated (if any).
pub(crate) type InviteHandler =
    Box<dyn FnMut(ServerTxKey, Request, Peer, Option<String>) -> InviteDecision + Send + 'static>;

/// Bytes framed off a TCP connection, or its end.
enum StreamInput {
    Message {
        peer: Peer,
        bytes: Vec<u8>,
    },
    Opened {
        id: u64,
        writer: mpsc::UnboundedSender<Vec<u8>>,
    },
    Closed {
        id: u64,
    },
}

/// Sockets and settings for [`SipTask::spawn`].
pub(crate) struct SipTransports {
    pub(crate) udp: UdpSocket,
    pub(crate) tcp: Option<TcpListener>,
    pub(crate) user_agent: String,
}

/// What `callmux serve` adds to a SIP task (the UAs of `callmux call`/`answer` run without).
#[derive(Default)]
pub(crate) struct ServerSecurity {
    /// SIP over TLS: the listener and the acceptor holding the certificate.
    pub(crate) tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    /// ACL, rate limit and digest authentication of new INVITEs.
    pub(crate) gate: Option<InviteGate>,
    /// Answers REGISTER (users' phones); without it REGISTER gets 405.
    pub(crate) registrar: Option<crate::registrar::Registrar>,
}

/// A handle to the running SIP task.
#[derive(Clone)]
pub(crate) struct SipHandle {
    pub(crate) commands: mpsc::UnboundedSender<SipCommand>,
    /// Local UDP address (for Via/Contact).
    pub(crate) local: SocketAddr,
}

impl SipHandle {
    /// Sends a request in a client transaction and returns its key.
    pub(crate) async fn send_request(
        &self,
        request: Request,
        peer: Peer,
    ) -> anyhow::Result<ClientTxKey> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(SipCommand::SendRequest {
                request,
                peer,
                reply: tx,
            })
            .map_err(|_| anyhow::anyhow!("SIP task stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("SIP task stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot send request: {e}"))
    }

    /// Queues a command; a stopped SIP task means the server is going down, so a lost
    /// command is harmless.
    pub(crate) fn send(&self, cmd: SipCommand) {
        let _ = self.commands.send(cmd);
    }

    /// A UDP peer for `remote` from our socket.
    pub(crate) fn udp_peer(&self, remote: SocketAddr) -> Peer {
        Peer {
            transport: TransportKind::Udp,
            local: self.local,
            remote,
            connection: None,
        }
    }
}

/// Counters the SIP task keeps (exposed in logs now, metrics later).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SipCounters {
    pub(crate) unknown_dialog: u64,
    pub(crate) malformed: u64,
}

/// The task itself.
pub(crate) struct SipTask {
    endpoint: Endpoint,
    udp: Arc<UdpSocket>,
    local: SocketAddr,
    calls: HashMap<String, mpsc::UnboundedSender<CallInput>>,
    client_owner: HashMap<ClientTxKey, String>,
    tcp_writers: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    on_invite: InviteHandler,
    /// ACL, rate limit and digest authentication of new INVITEs.
    gate: Option<InviteGate>,
    /// REGISTER handling and NAT keep-alives.
    registrar: Option<crate::registrar::Registrar>,
    counters: SipCounters,
    shutting_down: bool,
}

impl SipTask {
    /// Starts the SIP task on the given sockets and returns its handle.
    pub(crate) fn spawn(
        transports: SipTransports,
        on_invite: InviteHandler,
        seed: u64,
    ) -> anyhow::Result<(SipHandle, tokio::task::JoinHandle<()>)> {
        Self::spawn_secured(transports, ServerSecurity::default(), on_invite, seed)
    }

    /// [`Self::spawn`] with a TLS listener and the INVITE gate.
    pub(crate) fn spawn_secured(
        transports: SipTransports,
        security: ServerSecurity,
        on_invite: InviteHandler,
        seed: u64,
    ) -> anyhow::Result<(SipHandle, tokio::task::JoinHandle<()>)> {
        let ServerSecurity {
            tls,
            gate,
            registrar,
        } = security;
        let local = transports.udp.local_addr()?;
        let mut config = EndpointConfig {
            user_agent: transports.user_agent,
            ..EndpointConfig::default()
        };
        if registrar.is_some() {
            config.allowed_methods.push(Method::Register);
        }
        let endpoint = Endpoint::new(config, seed);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (stream_tx, stream_rx) = mpsc::unbounded_channel();
        // Connection ids are shared by TCP and TLS: both reply through `tcp_writers`.
        let ids = Arc::new(AtomicU64::new(1));
        if let Some(listener) = transports.tcp {
            tokio::spawn(accept_streams(
                listener,
                None,
                Arc::clone(&ids),
                stream_tx.clone(),
            ));
        }
        if let Some((listener, acceptor)) = tls {
            tokio::spawn(accept_streams(
                listener,
                Some(acceptor),
                ids,
                stream_tx.clone(),
            ));
        }
        drop(stream_tx);
        let task = Self {
            endpoint,
            udp: Arc::new(transports.udp),
            local,
            calls: HashMap::new(),
            client_owner: HashMap::new(),
            tcp_writers: HashMap::new(),
            on_invite,
            gate,
            registrar,
            counters: SipCounters::default(),
            shutting_down: false,
        };
        let join = tokio::spawn(task.run(cmd_rx, stream_rx));
        Ok((
            SipHandle {
                commands: cmd_tx,
                local,
            },
            join,
        ))
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<SipCommand>,
        mut streams: mpsc::UnboundedReceiver<StreamInput>,
    ) {
        let mut buf = vec![0u8; 65_536];
        let udp = Arc::clone(&self.udp);
        let mut streams_open = true;
        loop {
            let deadline = self.endpoint.poll_timeout();
            let registrar_due = self.registrar.as_ref().and_then(|r| r.deadline());
            tokio::select! {
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, src)) => {
                        let now = Instant::now();
                        if self.admits(src, now) {
                            let peer = Peer { transport: TransportKind::Udp, local: self.local, remote: src, connection: None };
                            let bytes = buf.get(..n).unwrap_or_default();
                            self.endpoint.handle_input(now, peer, bytes);
                        }
                    }
                    Err(e) => debug!(error = %e, "SIP UDP receive error"),
                },
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    // Every handle is gone: the server is shutting down.
                    None => break,
                },
                input = streams.recv(), if streams_open => match input {
                    Some(StreamInput::Message { peer, bytes }) => {
                        let now = Instant::now();
                        if self.admits(peer.remote, now) {
                            self.endpoint.handle_input(now, peer, &bytes);
                        }
                    }
                    Some(StreamInput::Opened { id, writer }) => { self.tcp_writers.insert(id, writer); }
                    Some(StreamInput::Closed { id }) => { self.tcp_writers.remove(&id); }
                    None => streams_open = false,
                },
                () = sleep_until(registrar_due), if registrar_due.is_some() => {
                    self.registrar_tick();
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.endpoint.handle_timeout(Instant::now());
                }
            }
            self.flush().await;
        }
        for (_, call) in self.calls.drain() {
            let _ = call.send(CallInput::Shutdown);
        }
    }

    /// Expires registrations and sends the NAT keep-alives that are due (their answers and
    /// time-outs belong to no call and are dropped).
    fn registrar_tick(&mut self) {
        let now = Instant::now();
        let Some(registrar) = &mut self.registrar else {
            return;
        };
        for (request, peer) in registrar.tick(now, self.local) {
            if let Err(e) = self.endpoint.send_request(now, request, peer) {
                debug!(error = %e, "keep-alive OPTIONS not sent");
            }
        }
    }

    /// Whether input from `src` may reach the endpoint (not while the source is banned).
    fn admits(&self, src: SocketAddr, now: Instant) -> bool {
        self.gate.as_ref().is_none_or(|g| g.admit(src.ip(), now))
    }

    fn handle_command(&mut self, cmd: SipCommand) {
        let now = Instant::now();
        match cmd {
            SipCommand::Respond { key, response } => {
                if let Err(e) = self.endpoint.respond(now, &key, response) {
                    debug!(error = %e, "response not sent (transaction gone)");
                }
            }
            SipCommand::SendRequest {
                request,
                peer,
                reply,
            } => {
                let call_id = request.call_id().map(str::to_string);
                let result = self
                    .endpoint
                    .send_request(now, request, peer)
                    .map_err(|e| e.to_string());
                if let (Ok(key), Some(call_id)) = (&result, call_id) {
                    self.client_owner.insert(key.clone(), call_id);
                }
                let _ = reply.send(result);
            }
            SipCommand::SendStateless { request, peer } => {
                self.endpoint.send_stateless(request, peer);
            }
            SipCommand::Cancel { key } => {
                if let Err(e) = self.endpoint.cancel(now, &key) {
                    debug!(error = %e, "CANCEL not sent");
                }
            }
            SipCommand::Register { call_id, inputs } => {
                self.calls.insert(call_id, inputs);
            }
            SipCommand::Unregister { call_id } => {
                self.calls.remove(&call_id);
                self.client_owner.retain(|_, owner| *owner != call_id);
            }
            SipCommand::Shutdown => {
                self.shutting_down = true;
                for call in self.calls.values() {
                    let _ = call.send(CallInput::Shutdown);
                }
            }
            SipCommand::SetGate(gate) => self.gate = Some(*gate),
            SipCommand::SetUsers { digest, user_acls } => {
                if let Some(r) = &mut self.registrar {
                    match digest {
                        Some(digest) => r.set_users(*digest, user_acls),
                        None => r.forget_users(),
                    }
                }
            }
            SipCommand::StartRegistrar(registrar) => {
                if self.registrar.is_none() {
                    self.registrar = Some(*registrar);
                    self.endpoint.allow_method(Method::Register);
                    info!("registrar started: REGISTER is answered from now on");
                }
            }
        }
    }

    /// Sends what the endpoint queued and routes its events.
    async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                match t.peer.transport {
                    TransportKind::Udp => {
                        if let Err(e) = self.udp.send_to(&t.bytes, t.peer.remote).await {
                            debug!(error = %e, dst = %t.peer.remote, "SIP UDP send failed");
                        }
                    }
                    TransportKind::Tcp | TransportKind::Tls => {
                        let id = t.peer.connection.map(|ConnectionId(id)| id);
                        match id.and_then(|id| self.tcp_writers.get(&id)) {
                            Some(w) => {
                                let _ = w.send(t.bytes);
                            }
                            None => {
                                debug!(dst = %t.peer.remote, "no open connection for SIP stream send")
                            }
                        }
                    }
                }
            }
            while let Some(ev) = self.endpoint.poll_event() {
                progressed = true;
                self.route(ev);
            }
            if !progressed {
                break;
            }
        }
    }

    fn route(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::IncomingRequest { key, request, peer } => {
                let call_id = request.call_id().unwrap_or_default().to_string();
                let has_to_tag = request
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_string))
                    .is_some();
                if request.method == Method::Register && !has_to_tag {
                    if let Some(registrar) = &mut self.registrar {
                        let r = registrar.handle(&request, &peer, now, SystemTime::now());
                        let _ = self.endpoint.respond(now, &key, r);
                        return;
                    }
                }
                if request.method == Method::Invite && !has_to_tag {
                    if self.shutting_down {
                        let mut r = request.make_response(503, "Service Unavailable");
                        r.headers.push("Retry-After", "30");
                        r.headers.push("Warning", "399 callmux \"shutting down\"");
                        let _ = self.endpoint.respond(now, &key, r);
                        return;
                    }
                    let mut authenticated = None;
                    if let Some(gate) = &mut self.gate {
                        match gate.check_invite(&request, peer.remote.ip(), now, SystemTime::now())
                        {
                            GateVerdict::Pass(who) => {
                                let user_allowed = match (&who.user, &self.registrar) {
                                    (Some(u), Some(r)) => r.source_allowed(u, peer.remote.ip()),
                                    _ => true,
                                };
                                if !user_allowed {
                                    info!(src = %peer.remote, user = ?who.user, "INVITE refused: source not allowed for this user");
                                    let mut r = request.make_response(403, "Forbidden");
                                    r.headers.push(
                                        "Warning",
                                        "399 callmux \"source address not allowed for this user\"",
                                    );
                                    let _ = self.endpoint.respond(now, &key, r);
                                    return;
                                }
                                if who.trunk.is_some() || who.user.is_some() {
                                    info!(src = %peer.remote, trunk = ?who.trunk, user = ?who.user, %call_id, "INVITE admitted");
                                }
                                authenticated = who.user;
                            }
                            GateVerdict::Reject(r) => {
                                let _ = self.endpoint.respond(now, &key, r);
                                return;
                            }
                        }
                    }
                    if self.calls.contains_key(&call_id) {
                        // A second dialog-creating INVITE with a Call-ID in use (a loop or a
                        // forked request coming back): RFC 3261 §8.2.2.2.
                        let r = request.make_response(482, "Loop Detected");
                        let _ = self.endpoint.respond(now, &key, r);
                        return;
                    }
                    match (self.on_invite)(key.clone(), request, peer, authenticated) {
                        InviteDecision::Accept(inputs) => {
                            self.calls.insert(call_id, inputs);
                        }
                        InviteDecision::Reject(response) => {
                            let _ = self.endpoint.respond(now, &key, response);
                        }
                    }
                    return;
                }
                let delivered = match self.calls.get(&call_id) {
                    Some(call) => call
                        .send(CallInput::Request {
                            key: key.clone(),
                            request: request.clone(),
                        })
                        .is_ok(),
                    None => false,
                };
                if !delivered {
                    self.counters.unknown_dialog += 1;
                    self.calls.remove(&call_id);
                    let r = request.make_response(481, "Call/Transaction Does Not Exist");
                    let _ = self.endpoint.respond(now, &key, r);
                }
            }
            Event::AckReceived { request, .. } => {
                if let Some(call) = request.call_id().and_then(|c| self.calls.get(c)) {
                    let _ = call.send(CallInput::Ack);
                }
            }
            Event::InviteCancelled { cancel, .. } => {
                if let Some(call) = cancel.call_id().and_then(|c| self.calls.get(c)) {
                    let _ = call.send(CallInput::Cancelled);
                }
            }
            Event::ResponseReceived { key, response, .. } => {
                if let Some(call) = response.call_id().and_then(|c| self.calls.get(c)) {
                    let _ = call.send(CallInput::Response { key, response });
                }
            }
            Event::ClientTimeout { key } => {
                if let Some(call) = self
                    .client_owner
                    .remove(&key)
                    .and_then(|c| self.calls.get(&c).cloned())
                {
                    let _ = call.send(CallInput::ClientTimeout { key });
                }
            }
            Event::AckTimeout { call_id, .. } => {
                if let Some(call) = self.calls.get(&call_id) {
                    let _ = call.send(CallInput::AckTimeout);
                }
            }
            Event::Malformed {
                peer,
                reason,
                answered,
            } => {
                self.counters.malformed += 1;
                debug!(src = %peer.remote, %reason, answered, "malformed SIP message");
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// Accepts SIP-over-TCP (or, with an acceptor, SIP-over-TLS) connections; each gets a
/// reader (framing) and a writer task. TLS handshakes run in the connection's task, so a
/// slow client never holds up the others.
async fn accept_streams(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ids: Arc<AtomicU64>,
    to_sip: mpsc::UnboundedSender<StreamInput>,
) {
    let name = if tls.is_some() { "TLS" } else { "TCP" };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "SIP {name} listener has no address");
            return;
        }
    };
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "SIP {name} accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if to_sip.is_closed() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let to_sip = to_sip.clone();
        match &tls {
            None => {
                let peer = Peer {
                    transport: TransportKind::Tcp,
                    local,
                    remote,
                    connection: Some(ConnectionId(id)),
                };
                tokio::spawn(serve_connection(stream, peer, id, to_sip));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let tls_stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                debug!(peer = %remote, error = %e, "SIP TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!(peer = %remote, "SIP TLS handshake timed out");
                                return;
                            }
                        };
                    let peer = Peer {
                        transport: TransportKind::Tls,
                        local,
                        remote,
                        connection: Some(ConnectionId(id)),
                    };
                    serve_connection(tls_stream, peer, id, to_sip).await;
                });
            }
        }
    }
}

/// Reads framed SIP messages off one connection and writes what the SIP task sends to it.
async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    id: u64,
    to_sip: mpsc::UnboundedSender<StreamInput>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (writer, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    if to_sip
        .send(StreamInput::Opened {
            id,
            writer: writer.clone(),
        })
        .is_err()
    {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = outgoing.recv().await {
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(buf.get(..n).unwrap_or_default());
        loop {
            match framer.pop() {
                Ok(Some(item)) => match item {
                    callmux_sip::Framed::Message(bytes) => {
                        if to_sip
                            .send(StreamInput::Message {
                                peer: peer.clone(),
                                bytes,
                            })
                            .is_err()
                        {
                            break 'read;
                        }
                    }
                    callmux_sip::Framed::Ping => {
                        // RFC 5626 §4.4.1: answer a double-CRLF ping with one CRLF.
                        let _ = writer.send(b"\r\n".to_vec());
                    }
                    callmux_sip::Framed::Pong => {}
                },
                Ok(None) => break,
                Err(e) => {
                    info!(peer = %peer.remote, error = %e, "closing SIP stream connection: bad framing");
                    break 'read;
                }
            }
        }
    }
    drop(writer);
    write_task.abort();
    let _ = to_sip.send(StreamInput::Closed { id });
}
