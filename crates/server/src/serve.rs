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

use crate::call::{run_inbound, ServerContext};
use crate::config::{Config, ConfigError};
use crate::sip_task::{InviteDecision, SipTask, SipTransports};

/// What this build of the server performs. Anything else in an NCCO is rejected when the
/// NCCO is loaded, naming the action or field, instead of being silently ignored.
pub(crate) fn capabilities() -> Capabilities {
    Capabilities::only_actions(&["record", "wait"])
        .without_field("record", "eventUrl")
        .without_field("record", "eventMethod")
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

/// Runs the server until a shutdown signal.
pub(crate) async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let ncco = load_ncco(&config)?;
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

    for result in callmux_record::recover_unfinished(&config.recordings_dir, SystemTime::now()) {
        match result {
            Ok(s) => info!(
                event = "record",
                state = "recovered",
                recording_uuid = %s.recording_uuid,
                call_uuid = %s.call_uuid,
                path = %s.path.display(),
                size = s.size,
                duration_ms = s.duration.as_millis() as u64,
                "recovered a recording left unfinished by a crash"
            ),
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

    let ctx = Arc::new(ServerContext::new(config.clone(), ncco));
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
        tokio::spawn(run_inbound(Arc::clone(ctx), key, request, peer, rx));
        InviteDecision::Accept(tx)
    });
    let (sip, sip_join) = SipTask::spawn(
        SipTransports {
            udp,
            tcp: Some(tcp),
            user_agent: config.user_agent.clone(),
        },
        on_invite,
        ctx.next_seed(),
    )?;
    let _ = ctx.sip.set(sip);

    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
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
        ncco = %config.ncco_file.as_ref().map_or("built-in default (record split)".to_string(), |p| p.display().to_string()),
        "callmux serving"
    );

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
    http_task.abort();
    sip_join.abort();
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
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
