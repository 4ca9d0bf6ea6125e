//! `callmux serve`: binds the SIP, RTP and HTTP sockets, repairs recordings a crash left
//! behind, then runs until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use callmux_ncco::{default_ncco, parse_ncco, Capabilities, Ncco};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{info, warn};

use callmux_ncco::Action;
use callmux_record::RecordingSummary;
use callmux_webhook::{RecordEvent, RecordState, Timestamp};

use crate::call::{run_inbound, ServerContext};
use crate::config::{Config, ConfigError};
use crate::events::EventSink;
use crate::recordings_api::ApiState;
use crate::security::{GateCounters, InviteGate};
use crate::sip_task::{InviteDecision, ServerSecurity, SipTask, SipTransports};
use crate::supervisor::Supervisor;

/// What this build of the server performs. Anything else in an NCCO is rejected when the
/// NCCO is loaded, naming the action or field, instead of being silently ignored. `talk`
/// is there only when its text-to-speech program (espeak-ng) can be run.
pub(crate) fn capabilities() -> Capabilities {
    let mut actions = vec![
        "record",
        "wait",
        "stream",
        "input",
        "notify",
        "connect",
        "conversation",
    ];
    if crate::playback::tts_available() {
        actions.push("talk");
    }
    Capabilities::only_actions(&actions)
        // espeak-ng has no styles or premium voices to choose from.
        .without_field("talk", "style")
        .without_field("talk", "premium")
        // connect: SIP URIs, phone numbers through trunks and registered app users are
        // performed; the rest not yet.
        .without_value("connect", "endpoint.type", "websocket")
        .without_value("connect", "endpoint.type", "vbc")
        .without_field("connect", "endpoint.dtmfAnswer")
        .without_field("connect", "endpoint.onAnswer")
        .without_field("connect", "randomFromNumber")
        .without_field("connect", "eventType")
        .without_field("connect", "machineDetection")
        .without_field("connect", "advancedMachineDetection")
}

/// Formats `ip:port`, bracketing IPv6.
pub(crate) fn host_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// Loads the NCCO every call runs: the static file, or the built-in default. A mistake is
/// reported against the config file (`config_file`, None when it came from `--ncco`) and
/// its key, with the NCCO file's path in the reason.
fn load_ncco(config: &Config, config_file: Option<&std::path::Path>) -> Result<Ncco, ConfigError> {
    let caps = capabilities();
    let Some(path) = &config.ncco_file else {
        return Ok(default_ncco());
    };
    let file = config_file.map(std::path::Path::to_path_buf);
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: file.clone(),
        key: "ncco.file".into(),
        reason: format!("cannot read the NCCO file {}: {e}", path.display()),
    })?;
    parse_ncco(&bytes, &caps).map_err(|e| ConfigError {
        file,
        key: "ncco.file".into(),
        reason: format!("invalid NCCO in {}: {e}", path.display()),
    })
}

/// Where calls get their NCCO, for the start-up log line.
fn ncco_source(config: &Config) -> String {
    if let Some(a) = &config.answer {
        return format!("{} {}", a.method.as_str(), a.url);
    }
    config.ncco_file.as_ref().map_or_else(
        || "built-in default (record split)".to_string(),
        |p| p.display().to_string(),
    )
}

/// Whether any event can have somewhere to go: an event URL, an answer URL (its NCCOs
/// may name event URLs), or a static NCCO that names one.
fn needs_dispatcher(config: &Config, ncco: &Ncco) -> bool {
    config.event_url.is_some()
        || config.answer.is_some()
        || ncco.actions.iter().any(|a| match a {
            Action::Record(r) => r.event_url.is_some(),
            Action::Input(i) => i.event_url.is_some(),
            Action::Notify(_) => true,
            _ => false,
        })
}

/// The record event of a finished (or recovered) recording.
pub(crate) fn record_event(
    s: &RecordingSummary,
    http: SocketAddr,
    state: RecordState,
) -> RecordEvent {
    RecordEvent {
        start_time: Timestamp::from_system_time(s.start_time),
        end_time: Timestamp::from_system_time(s.end_time),
        recording_url: crate::recordings_api::recording_url(http, &s.recording_uuid),
        recording_uuid: s.recording_uuid.clone(),
        size: s.size,
        conversation_uuid: s.conversation_uuid.clone(),
        timestamp: Timestamp::from_system_time(SystemTime::now()),
        uuid: s.call_uuid.clone(),
        channels: u32::from(s.channels),
        format: s.format.extension().to_string(),
        path: s.path.display().to_string(),
        state,
    }
}

/// Runs the server until a shutdown signal.
pub(crate) async fn run(
    config: Config,
    config_file: Option<std::path::PathBuf>,
    overrides: crate::config::Overrides,
) -> anyhow::Result<ExitCode> {
    let ncco = load_ncco(&config, config_file.as_deref())?;
    crate::recordings_api::set_public_url(&config.api.public_url);
    if let Err(e) = crate::metrics::install() {
        warn!(error = %e, "metrics recorder not installed: /metrics stays empty");
    }
    crate::metrics::set_draining(false);
    if !crate::playback::tts_available() {
        warn!(
            program = crate::playback::TTS_PROGRAM,
            "text-to-speech program not found: NCCOs with talk are rejected"
        );
    }
    std::fs::create_dir_all(&config.recordings_dir).with_context(|| {
        format!(
            "cannot create the recordings directory {}",
            config.recordings_dir.display()
        )
    })?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;

    let events = tokio::task::block_in_place(|| {
        EventSink::start(&config.queue, config.event_url.clone(), config.event_method)
    })?;

    // This host's own recordings cut by a crash are recovered now; other unfinished ones
    // only once nothing has written them for STALE_AFTER (another host sharing the
    // directory may be recording them), here or by the periodic sweep.
    let own =
        tokio::task::block_in_place(|| crate::recovery::claim_own_unfinished(&config.data_dir));
    crate::recovery::recover_stale(&config, &events, own).await;

    let udp = UdpSocket::bind(config.sip_listen)
        .await
        .with_context(|| format!("cannot bind SIP UDP {}", config.sip_listen))?;
    let tcp = TcpListener::bind(config.sip_listen)
        .await
        .with_context(|| format!("cannot bind SIP TCP {}", config.sip_listen))?;
    let http = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot bind HTTP {}", config.http_listen))?;
    let tls = match &config.tls {
        Some(t) => Some((
            TcpListener::bind(t.listen)
                .await
                .with_context(|| format!("cannot bind SIP TLS {}", t.listen))?,
            tokio_rustls::TlsAcceptor::from(Arc::clone(&t.config)),
        )),
        None => None,
    };

    let supervisor = if config.spawn_dispatcher && needs_dispatcher(&config, &ncco) {
        Some(Supervisor::start(&config, config_file.clone())?)
    } else {
        None
    };
    let (conf_tx, mut conf_rx) = mpsc::unbounded_channel::<RecordingSummary>();
    let conferences = Arc::new(crate::conference::ConferenceHub::new(
        crate::conference::ConferenceRecordingConfig {
            root: config.recordings_dir.clone(),
            channels: config.conference_channels,
            checkpoint_interval: config.checkpoint_interval,
            reorder_delay: config.reorder_delay,
        },
        Box::new(move |summary| {
            let _ = conf_tx.send(summary);
        }),
    ));
    let ctx = Arc::new(ServerContext::new(
        config.clone(),
        ncco,
        events,
        conferences,
    ));
    // Conference recordings end with their conference; their record events go to the
    // application's event URL.
    let conf_ctx = Arc::clone(&ctx);
    tokio::spawn(async move {
        while let Some(s) = conf_rx.recv().await {
            info!(
                event = "record",
                recording_uuid = %s.recording_uuid,
                path = %s.path.display(),
                size = s.size,
                channels = s.channels,
                "conference recording finished"
            );
            let ev = record_event(&s, conf_ctx.config.http_listen, RecordState::Complete);
            conf_ctx
                .events
                .emit(
                    &s.call_uuid,
                    conf_ctx.config.event_url.as_deref(),
                    conf_ctx.config.event_method,
                    &ev,
                )
                .await;
        }
    });
    let invite_ctx = Arc::clone(&ctx);
    let draining = Arc::new(AtomicBool::new(false));
    let invite_draining = Arc::clone(&draining);
    let on_invite = Box::new(move |key, request: callmux_sip::Request, peer, user| {
        let ctx = &invite_ctx;
        if invite_draining.load(Ordering::Relaxed) {
            // Shutting down: the proxy in front sends the call to another host.
            crate::metrics::call_ended(crate::metrics::CallResult::Overloaded);
            let mut r = request.make_response(503, "Service Unavailable");
            r.headers.push("Retry-After", "5");
            r.headers.push("Warning", "399 callmux \"shutting down\"");
            return InviteDecision::Reject(r);
        }
        let max = ctx.config.max_calls as usize;
        if ctx.active_calls.fetch_add(1, Ordering::Relaxed) >= max {
            ctx.active_calls.fetch_sub(1, Ordering::Relaxed);
            crate::metrics::call_ended(crate::metrics::CallResult::Overloaded);
            let mut r = request.make_response(503, "Service Unavailable");
            r.headers.push("Retry-After", "5");
            r.headers
                .push("Warning", "399 callmux \"concurrent call limit reached\"");
            return InviteDecision::Reject(r);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_inbound(
            Arc::clone(ctx),
            key,
            request,
            peer,
            user,
            tx.clone(),
            rx,
        ));
        InviteDecision::Accept(tx)
    });
    let gate_counters = Arc::new(GateCounters::default());
    // Kept for gates rebuilt on SIGHUP, so outstanding digest nonces stay valid.
    let gate_secret = nonce_secret();
    let gate = InviteGate::new(
        config.security.clone(),
        &gate_secret,
        Arc::clone(&gate_counters),
    );
    let registrar = start_registrar(&config)?;
    let registrar_running = registrar.is_some();
    let (sip, sip_join) = SipTask::spawn_secured(
        SipTransports {
            udp,
            tcp: Some(tcp),
            user_agent: config.user_agent.clone(),
        },
        ServerSecurity {
            tls,
            gate: Some(gate),
            registrar,
        },
        on_invite,
        ctx.next_seed(),
    )?;
    let _ = ctx.sip.set(sip);
    let stale_sweeper = tokio::spawn(crate::recovery::sweep_stale(Arc::clone(&ctx)));
    let reloader = tokio::spawn(reload_on_sighup(
        Arc::clone(&ctx),
        Reload {
            file: config_file.clone(),
            overrides,
            gate_secret,
            gate_counters: Arc::clone(&gate_counters),
            registrar_running,
        },
    ));

    let health_ctx = Arc::clone(&ctx);
    let health_gate = Arc::clone(&gate_counters);
    let healthz = move || {
        let ctx = Arc::clone(&health_ctx);
        let gate = Arc::clone(&health_gate);
        async move {
            let ports = ctx.ports.lock().map_or(0, |p| p.in_use());
            axum::Json(serde_json::json!({
                "status": "ok",
                "active_calls": ctx.active_calls.load(Ordering::Relaxed),
                "rtp_ports_in_use": ports,
                "conferences": ctx.conferences.len(),
                "sip_security": gate.snapshot(),
            }))
        }
    };
    let api = Arc::new(ApiState::new(
        config.recordings_dir.clone(),
        config.api.public_url.clone(),
        config.api.jwt.clone(),
        config.api.open,
    ));
    let metrics_ctx = Arc::clone(&ctx);
    let queue_reader = Arc::new(crate::metrics::QueueReader::new(config.queue.clone()));
    let metrics = move || {
        let active = metrics_ctx.active_calls.load(Ordering::Relaxed);
        let queue = Arc::clone(&queue_reader);
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                crate::metrics::scrape(active, queue).await,
            )
        }
    };
    let metrics_upkeep = tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            crate::metrics::upkeep();
        }
    });
    let app = crate::recordings_api::routes(
        axum::Router::new()
            .route("/healthz", axum::routing::get(healthz))
            .route("/metrics", axum::routing::get(metrics)),
        api,
    );
    let sweeper = config.retention.map(|retention| {
        tokio::spawn(crate::sweeper::run(
            config.recordings_dir.clone(),
            retention,
            config.sweep_interval,
        ))
    });
    let http_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(http, app).await {
            warn!(error = %e, "HTTP server stopped");
        }
    });

    info!(
        sip = %config.sip_listen,
        http = %config.http_listen,
        rtp = %format!("{}-{}", config.rtp_ports.0, config.rtp_ports.1),
        recordings = %config.recordings_dir.display(),
        ncco = %ncco_source(&config),
        events = %config.event_url.as_deref().unwrap_or("-"),
        queue = %config.queue_url,
        dispatcher = supervisor.is_some(),
        "callmux serving"
    );
    log_security(&config);

    shutdown_signal().await;
    drain(&ctx, &draining, config.shutdown_grace).await;
    if let Some(s) = supervisor {
        s.stop().await;
    }
    http_task.abort();
    metrics_upkeep.abort();
    reloader.abort();
    stale_sweeper.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    sip_join.abort();
    Ok(ExitCode::SUCCESS)
}

/// The registrar, when users exist (`[sip] auth = "required"` with `[[user]]`s): their
/// phones register with the same passwords. Bindings are reloaded from the data directory.
fn start_registrar(config: &Config) -> anyhow::Result<Option<crate::registrar::Registrar>> {
    let Some(digest) = config.security.auth.clone() else {
        return Ok(None);
    };
    if digest.users.is_empty() {
        return Ok(None);
    }
    let registrar = tokio::task::block_in_place(|| {
        crate::registrar::Registrar::open(
            config.registrar,
            digest,
            config.user_acls.clone(),
            &nonce_secret(),
            &config.data_dir,
        )
    })
    .context("cannot open the registrar's bindings store")?;
    Ok(Some(registrar))
}

/// What a SIGHUP reload needs: where the settings came from, and what the new gate shares
/// with the old one.
struct Reload {
    file: Option<std::path::PathBuf>,
    overrides: crate::config::Overrides,
    gate_secret: Vec<u8>,
    gate_counters: Arc<GateCounters>,
    /// Whether REGISTER is answered (users existed at start-up, or a reload added some).
    registrar_running: bool,
}

/// SIGHUP: reads the config file again (flags and environment still override it) and
/// applies the trunks, ACLs, trusted trunks, users and INVITE limits to new calls. Calls in
/// progress are not touched. A file with a mistake is logged and the old settings stay.
/// Everything else (addresses, directories, queue, TLS) needs a restart.
async fn reload_on_sighup(ctx: Arc<ServerContext>, mut reload: Reload) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP: no configuration reload");
                return;
            }
        };
        while hup.recv().await.is_some() {
            let loaded = tokio::task::block_in_place(|| {
                Config::load(reload.file.as_deref(), &reload.overrides)
            });
            let new = match loaded {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "configuration reload failed; the old settings stay");
                    continue;
                }
            };
            ctx.set_trunks(new.trunks.clone());
            let gate = InviteGate::new(
                new.security.clone(),
                &reload.gate_secret,
                Arc::clone(&reload.gate_counters),
            );
            if let Some(sip) = ctx.sip.get() {
                sip.send(crate::sip_task::SipCommand::SetGate(Box::new(gate)));
                if reload.registrar_running {
                    let digest = new.security.auth.clone().filter(|a| !a.users.is_empty());
                    sip.send(crate::sip_task::SipCommand::SetUsers {
                        digest: digest.map(Box::new),
                        user_acls: new.user_acls.clone(),
                    });
                } else {
                    // The first users: open the registrar now rather than at the next restart.
                    match start_registrar(&new) {
                        Ok(Some(r)) => {
                            sip.send(crate::sip_task::SipCommand::StartRegistrar(Box::new(r)));
                            reload.registrar_running = true;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            warn!(error = %e, "cannot start the registrar; REGISTER stays refused")
                        }
                    }
                }
            }
            info!(
                trunks = new.trunks.len(),
                acl = !new.security.acl.is_empty(),
                trusted_trunks = new.security.trunks.len(),
                users = new.security.auth.as_ref().map_or(0, |a| a.users.len()),
                "configuration reloaded (SIGHUP): trunks, ACLs, users and INVITE limits apply to new calls"
            );
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (ctx, reload);
    }
}

/// How long hung-up calls may take to end: an unanswered BYE gives up after 32 s (Timer F),
/// then the call's `completed` event is committed.
const HANGUP_WAIT: Duration = Duration::from_secs(40);

/// Graceful shutdown, after the first SIGTERM/SIGINT: new INVITEs get 503 while the calls
/// go on for `grace` (or until a second signal); then every call is hung up (BYE), which
/// finalizes its recordings and commits its events before its task ends; this returns
/// when no call is left (bounded).
async fn drain(ctx: &Arc<ServerContext>, draining: &AtomicBool, grace: Duration) {
    draining.store(true, Ordering::Relaxed);
    crate::metrics::set_draining(true);
    info!(
        active_calls = ctx.active_calls.load(Ordering::Relaxed),
        grace_s = grace.as_secs(),
        "draining: new INVITEs get 503; calls go on for the grace period (a second signal ends it)"
    );
    tokio::select! {
        () = no_calls_left(ctx) => info!("every call ended within the grace period"),
        () = tokio::time::sleep(grace) => info!("grace period over; hanging up every call"),
        () = shutdown_signal() => info!("second signal: grace period cut short; hanging up every call"),
    }
    if let Some(handle) = ctx.sip.get() {
        handle.send(crate::sip_task::SipCommand::Shutdown);
    }
    tokio::select! {
        () = no_calls_left(ctx) => info!("every call ended; recordings finalized, events committed"),
        () = tokio::time::sleep(HANGUP_WAIT) => warn!(
            active_calls = ctx.active_calls.load(Ordering::Relaxed),
            "calls still ending after the hang-up wait; exiting"
        ),
    }
}

/// Returns when no call is active.
async fn no_calls_left(ctx: &ServerContext) {
    while ctx.active_calls.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A random key for digest nonces (fresh per process: nonces do not survive a restart).
fn nonce_secret() -> Vec<u8> {
    let mut k = uuid::Uuid::new_v4().as_bytes().to_vec();
    k.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    k
}

/// One start-up line on what protects the SIP and HTTP sides.
fn log_security(config: &Config) {
    let s = &config.security;
    let api = match (&config.api.jwt, config.api.open) {
        (Some(j), _) => format!(
            "JWT RS256 for application {} ({}-bit key{})",
            j.application_id,
            j.key.bits,
            if j.key.from_private {
                ", public half of the private key"
            } else {
                ""
            }
        ),
        (None, true) => "OPEN: no token needed (--recordings-api-open)".into(),
        (None, false) => "refused (503): no application key configured".into(),
    };
    info!(
        sip_tls = %config.tls.as_ref().map_or_else(|| "-".to_string(), |t| t.listen.to_string()),
        acl = !s.acl.is_empty(),
        trusted_trunks = s.trunks.len(),
        digest_auth = s.auth.as_ref().map_or(0, |a| a.users.len()),
        invite_rate = s.rate.map_or(0.0, |r| r.per_second),
        recordings_api = %api,
        public_url = %config.api.public_url,
        retention_days = config.retention.map_or(0, |r| r.as_secs() / 86_400),
        "security"
    );
    if config.api.open {
        warn!("the recordings API is open: anyone who can reach the HTTP address can download and delete recordings");
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
