//! `callmux dispatch`: the separate process that delivers queued events to the
//! application's webhooks. It claims due events from the queue, lets the sans-IO
//! `DeliveryScheduler` order them (one attempt per call at a time, in sequence), sends each
//! with reqwest (signed when a secret is configured), and reports every outcome back to
//! the queue (ack, retry later, dead letter). Any number of dispatchers can share a queue.
//!
//! `--dead` lists the dead letters, `--requeue ID|all` puts them back.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use callmux_webhook::{
    open_queue, query_pairs, sign_webhook, DeliveryResult, DeliveryScheduler, EventId, EventQueue,
    HttpMethod, QueuedEvent, EVENT_ID_HEADER, IDEMPOTENCY_KEY_HEADER,
};
use clap::Args;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{Config, Overrides};

/// Header naming the dispatcher that sent an attempt (for operators and tests).
pub(crate) const DISPATCHER_HEADER: &str = "X-Callmux-Dispatcher";

/// Most answer bytes read from a receiver (the rest is ignored).
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// `callmux dispatch` arguments.
#[derive(Debug, Args)]
pub(crate) struct DispatchArgs {
    /// TOML configuration file (the same one `callmux serve` reads).
    #[arg(long, env = "CALLMUX_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory holding events.db (the SQLite queue) [default: ./data].
    #[arg(long, conflicts_with = "queue")]
    data: Option<PathBuf>,
    /// Event queue: sqlite:DIR or redis://HOST:PORT/DB?prefix=P&group=G.
    #[arg(long)]
    queue: Option<String>,
    /// Sign webhooks: HS256 JWT with this secret in `Authorization: Bearer`.
    #[arg(long, env = "CALLMUX_SIGNATURE_SECRET", hide_env_values = true)]
    signature_secret: Option<String>,
    /// Dead-letter events older than this many seconds [default: 86400].
    #[arg(long)]
    max_age: Option<u64>,
    /// Name of this dispatcher in the queue [default: HOST-PID].
    #[arg(long)]
    consumer: Option<String>,
    /// List the dead letters and exit.
    #[arg(long, conflicts_with = "requeue")]
    dead: bool,
    /// Requeue one dead letter by id, or `all`, and exit.
    #[arg(long, value_name = "ID|all")]
    requeue: Option<String>,
    /// Exit when standard input closes (used by `callmux serve` for its child dispatcher,
    /// so the child never outlives the server).
    #[arg(long, hide = true)]
    watch_stdin: bool,
}

/// Runs `callmux dispatch`.
pub(crate) async fn run(args: DispatchArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        data: args.data.clone(),
        queue: args.queue.clone(),
        signature_secret: args.signature_secret.clone(),
        ..Overrides::default()
    };
    let mut cfg = Config::load(args.config.as_deref(), &overrides)?;
    if let Some(s) = args.max_age {
        cfg.dispatch.policy.max_age = Duration::from_secs(s);
    }
    let mut queue = tokio::task::block_in_place(|| open_queue(&cfg.queue))
        .with_context(|| format!("cannot open the event queue {}", cfg.queue_url))?;
    if args.dead {
        return list_dead(queue.as_mut());
    }
    if let Some(which) = &args.requeue {
        let id = (!which.eq_ignore_ascii_case("all")).then(|| EventId::from_string(which));
        let n = queue.requeue_dead(id.as_ref())?;
        if n == 0 && id.is_some() {
            eprintln!("callmux dispatch: no dead letter with id {which}");
            return Ok(ExitCode::FAILURE);
        }
        println!("requeued {n} event(s)");
        return Ok(ExitCode::SUCCESS);
    }
    let consumer = args
        .consumer
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    deliver(cfg, queue, consumer, args.watch_stdin).await?;
    if args.watch_stdin {
        // The runtime would wait for the blocking stdin reader on the way out.
        std::process::exit(0);
    }
    Ok(ExitCode::SUCCESS)
}

fn list_dead(queue: &mut dyn EventQueue) -> anyhow::Result<ExitCode> {
    let dead = queue.list_dead(10_000)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} dead letter(s)", dead.len())?;
    for ev in dead {
        writeln!(
            out,
            "{}\tcall={}\tkind={}\t{} {}\tattempts={}\t{}",
            ev.id,
            ev.call_uuid,
            ev.kind,
            ev.method.as_str(),
            ev.url,
            ev.attempts,
            ev.last_error.as_deref().unwrap_or("-")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "callmux".into())
}

/// The delivery loop, until SIGTERM/SIGINT (or stdin closing with `--watch-stdin`); then
/// the attempts in flight are finished and reported.
async fn deliver(
    cfg: Config,
    mut queue: Box<dyn EventQueue>,
    consumer: String,
    watch_stdin: bool,
) -> anyhow::Result<()> {
    let settings = cfg.dispatch.clone();
    let client = reqwest::Client::builder()
        .connect_timeout(settings.request_timeout.min(Duration::from_secs(2)))
        .timeout(settings.request_timeout)
        .pool_max_idle_per_host(settings.max_in_flight)
        .user_agent(concat!("callmux-dispatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut sched = DeliveryScheduler::new(settings.policy.clone(), seed)
        .with_max_in_flight(settings.max_in_flight)
        .with_lease(settings.lease);
    let secret: Option<Arc<[u8]>> = cfg
        .signature_secret
        .as_ref()
        .map(|s| Arc::from(s.as_bytes()));
    let consumer_arc: Arc<str> = Arc::from(consumer.as_str());
    let mut attempts: JoinSet<(EventId, DeliveryResult)> = JoinSet::new();
    let shutdown = shutdown_signal(watch_stdin);
    tokio::pin!(shutdown);
    let mut stopping = false;
    let mut queue_error_until: Option<Instant> = None;
    info!(
        queue = %cfg.queue_url,
        %consumer,
        signed = secret.is_some(),
        max_in_flight = settings.max_in_flight,
        "callmux dispatch delivering"
    );

    loop {
        let now = Instant::now();
        if !stopping && queue_error_until.is_none_or(|t| now >= t) {
            queue_error_until = None;
            let n = sched.claim_limit(now);
            if n > 0 {
                let claimed = tokio::task::block_in_place(|| {
                    queue.claim(&consumer, SystemTime::now(), n, settings.lease)
                });
                match claimed {
                    Ok(events) => {
                        if !events.is_empty() {
                            debug!(n = events.len(), "claimed");
                        }
                        sched.offer(events, now);
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot claim from the event queue; retrying in 1 s");
                        queue_error_until = Some(now + Duration::from_secs(1));
                    }
                }
            }
            while let Some(job) = sched.poll_job(Instant::now()) {
                let client = client.clone();
                let secret = secret.clone();
                let consumer = Arc::clone(&consumer_arc);
                attempts.spawn(async move {
                    let id = job.event.id.clone();
                    let result = attempt(&client, &job.event, secret.as_deref(), &consumer).await;
                    (id, result)
                });
            }
        }
        if stopping && attempts.is_empty() {
            break;
        }
        let deadline = if stopping {
            None
        } else {
            [sched.poll_timeout(), queue_error_until]
                .into_iter()
                .flatten()
                .min()
        };
        tokio::select! {
            Some(joined) = attempts.join_next(), if !attempts.is_empty() => {
                let Ok((id, result)) = joined else { continue };
                report(queue.as_mut(), &mut sched, &id, result);
            }
            () = sleep_until(deadline) => {}
            () = &mut shutdown, if !stopping => {
                info!(in_flight = attempts.len(), "stopping: finishing the attempts in flight");
                stopping = true;
            }
        }
    }
    let st = sched.stats();
    info!(
        delivered = st.acked,
        retried = st.retried,
        dead = st.dead,
        "callmux dispatch stopped"
    );
    Ok(())
}

/// Tells the queue how an attempt ended.
fn report(
    queue: &mut dyn EventQueue,
    sched: &mut DeliveryScheduler,
    id: &EventId,
    result: DeliveryResult,
) {
    let error = match &result {
        DeliveryResult::Delivered(s) => format!("HTTP {s}"),
        DeliveryResult::Failed { error, .. } => error.clone(),
    };
    let action = sched.on_result(id, result, Instant::now(), SystemTime::now());
    match &action {
        callmux_webhook::QueueAction::Ack => debug!(%id, "delivered"),
        callmux_webhook::QueueAction::RetryLater(at) => {
            let secs = at
                .duration_since(SystemTime::now())
                .map_or(0.0, |d| d.as_secs_f64());
            info!(%id, %error, retry_in_s = format!("{secs:.1}"), "delivery failed; will retry");
        }
        callmux_webhook::QueueAction::DeadLetter(reason) => {
            warn!(%id, %reason, "event dead-lettered")
        }
    }
    if let Err(e) = tokio::task::block_in_place(|| action.apply(queue, id, &error)) {
        // NotFound: our lease ran out and another dispatcher dealt with it. Anything else:
        // the lease expires and the event is delivered again (at least once).
        warn!(%id, error = %e, "cannot record the outcome in the queue");
    }
}

/// One HTTP attempt.
async fn attempt(
    client: &reqwest::Client,
    ev: &QueuedEvent,
    secret: Option<&[u8]>,
    consumer: &str,
) -> DeliveryResult {
    let (builder, signed_body): (reqwest::RequestBuilder, &[u8]) = match ev.method {
        HttpMethod::Post => (
            client
                .post(&ev.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(ev.body.clone()),
            &ev.body,
        ),
        HttpMethod::Get => {
            let pairs = query_pairs(&ev.body).unwrap_or_default();
            (client.get(&ev.url).query(&pairs), b"")
        }
    };
    let mut builder = builder
        .header(EVENT_ID_HEADER, ev.id.as_str())
        .header(IDEMPOTENCY_KEY_HEADER, ev.id.as_str())
        .header(DISPATCHER_HEADER, consumer);
    if let Some(secret) = secret {
        let jti = uuid::Uuid::new_v4().to_string();
        match sign_webhook(secret, signed_body, SystemTime::now(), &jti) {
            Ok(token) => {
                builder = builder.header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            Err(e) => {
                return DeliveryResult::Failed {
                    status: None,
                    error: format!("cannot sign: {e}"),
                }
            }
        }
    }
    match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read (a bounded part of) the answer so the connection can be reused.
            let _ = crate::answer::read_limited(response, MAX_ANSWER_BODY).await;
            DeliveryResult::from_status(status)
        }
        Err(e) => DeliveryResult::Failed {
            status: None,
            error: crate::answer::describe(&e),
        },
    }
}

/// SIGTERM, SIGINT, or (with `watch_stdin`) standard input reaching its end.
async fn shutdown_signal(watch_stdin: bool) {
    use tokio::io::AsyncReadExt as _;
    let stdin_closed = async move {
        if !watch_stdin {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        () = crate::serve::shutdown_signal() => {}
        () = stdin_closed => info!("standard input closed (the server stopped)"),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
