//! `callmux serve`: binds the SIP, RTP and HTTP sockets, repairs recordings a crash left
//! behind, then runs until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

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
        // connect: SIP URIs and phone numbers through trunks are performed; the rest not yet.
        .without_value("connect", "endpoint.type", "websocket")
        .without_value("connect", "endpoint.type", "app")
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

/// Loads the NCCO every call runs: the static file, or the built-in default.
fn load_ncco(config: &Config) -> Result<Ncco, ConfigError> {
    let caps = capabilities();
    let Some(path) = &config.ncco_file else {
        return Ok(default_ncco());
    };
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: Some(path.clone()),
        key: "ncco.file".into(),
        reason: format!("cannot read the NCCO file: {e}"),
    })?;
    parse_ncco(&bytes, &caps).map_err(|e| ConfigError {
        file: Some(path.clone()),
        key: "ncco.file".into(),
        reason: format!("invalid NCCO: {e}"),
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
) -> anyhow::Result<ExitCode> {
    let ncco = load_ncco(&config)?;
    crate::recordings_api::set_public_url(&config.api.public_url);
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

    for result in callmux_record::recover_unfinished(&config.recordings_dir, SystemTime::now()) {
        match result {
            Ok(s) => {
                info!(
                    event = "record",
                    state = "recovered",
                    recording_uuid = %s.recording_uuid,
                    call_uuid = %s.call_uuid,
                    path = %s.path.display(),
                    size = s.size,
                    duration_ms = s.duration.as_millis() as u64,
                    "recovered a recording left unfinished by a crash"
                );
                // The record action's own eventUrl is not kept on disk: the recovered
                // recording is announced to the application's event URL.
                let ev = record_event(&s, config.http_listen, RecordState::Recovered);
                events
                    .emit(
                        &s.call_uuid,
                        config.event_url.as_deref(),
                        config.event_method,
                        &ev,
                    )
                    .await;
            }
            Err(e) => warn!(error = %e, "could not recover an unfinished recording"),
        }
    }

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
        Some(Supervisor::start(&config, config_file)?)
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
    let on_invite = Box::new(move |key, request: callmux_sip::Request, peer| {
        let ctx = &invite_ctx;
        let max = ctx.config.max_calls as usize;
        if ctx.active_calls.fetch_add(1, Ordering::Relaxed) >= max {
            ctx.active_calls.fetch_sub(1, Ordering::Relaxed);
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
            tx.clone(),
            rx,
        ));
        InviteDecision::Accept(tx)
    });
    let gate_counters = Arc::new(GateCounters::default());
    let gate = InviteGate::new(
        config.security.clone(),
        &nonce_secret(),
        Arc::clone(&gate_counters),
    );
    let (sip, sip_join) = SipTask::spawn_secured(
        SipTransports {
            udp,
            tcp: Some(tcp),
            user_agent: config.user_agent.clone(),
        },
        ServerSecurity {
            tls,
            gate: Some(gate),
        },
        on_invite,
        ctx.next_seed(),
    )?;
    let _ = ctx.sip.set(sip);

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
    let app = crate::recordings_api::routes(
        axum::Router::new().route("/healthz", axum::routing::get(healthz)),
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
    info!(
        active_calls = ctx.active_calls.load(Ordering::Relaxed),
        "shutting down"
    );
    // Every call hangs up (BYE) and finalizes its recordings; new INVITEs get 503.
    if let Some(handle) = ctx.sip.get() {
        handle.send(crate::sip_task::SipCommand::Shutdown);
    }
    let ctx_wait = Arc::clone(&ctx);
    let wait_calls = async move {
        while ctx_wait.active_calls.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait_calls).await;
    if let Some(s) = supervisor {
        s.stop().await;
    }
    http_task.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    sip_join.abort();
    Ok(ExitCode::SUCCESS)
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
