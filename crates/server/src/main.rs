//! The `callmux` binary: `serve` runs the media server, `call` is a small SIP user agent
//! for demos and tests, `inspect` describes a recording.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod answer;
mod call;
mod conference;
mod config;
mod dispatch;
mod events;
mod inspect;
mod media_leg;
mod metrics;
mod outbound;
mod playback;
mod recordings_api;
mod recovery;
mod registrar;
mod security;
mod serve;
mod sip_task;
mod supervisor;
mod sweeper;
mod tls;
mod trunks;
mod ua;

/// Command line of the `callmux` binary (the CLI contract in DESIGN.md).
#[derive(Debug, Parser)]
#[command(
    name = "callmux",
    version,
    about = "SIP/RTP media server with per-leg real-time recording"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `callmux=debug` (the binary's modules are `callmux::…`).
    #[arg(long, global = true, env = "CALLMUX_LOG", default_value = "info")]
    log: String,
    /// Log line format.
    #[arg(long, global = true, env = "CALLMUX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SIP/RTP server.
    Serve(Box<ServeArgs>),
    /// Deliver queued events to the application's webhooks (a separate process).
    Dispatch(dispatch::DispatchArgs),
    /// Place a call (a small SIP UAC that streams a tone or a WAV file).
    Call(ua::call::CallArgs),
    /// Answer calls (a small SIP UAS that streams a tone or a WAV file).
    Answer(ua::answer::AnswerArgs),
    /// Describe a recording: format, channels, levels, dominant frequencies.
    Inspect(inspect::InspectArgs),
    /// Configuration helpers.
    Config(ConfigArgs),
}

/// `callmux serve` flags; each also reads a `CALLMUX_*` environment variable.
#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "CALLMUX_CONFIG")]
    config: Option<PathBuf>,
    /// SIP UDP and TCP address [default: 127.0.0.1:5060].
    #[arg(long, env = "CALLMUX_SIP")]
    sip: Option<String>,
    /// HTTP API address [default: 127.0.0.1:8080].
    #[arg(long, env = "CALLMUX_HTTP")]
    http: Option<String>,
    /// RTP port range LO-HI [default: 20000-29999].
    #[arg(long, env = "CALLMUX_RTP_PORTS")]
    rtp_ports: Option<String>,
    /// Address advertised in SDP [default: the SIP address].
    #[arg(long, env = "CALLMUX_MEDIA_IP")]
    media_ip: Option<String>,
    /// Static NCCO file run for every call [default: record split, async].
    #[arg(long, env = "CALLMUX_NCCO", conflicts_with = "answer_url")]
    ncco: Option<PathBuf>,
    /// Application answer URL, fetched for every call.
    #[arg(long, env = "CALLMUX_ANSWER_URL")]
    answer_url: Option<String>,
    /// GET (query string, the default) or POST (JSON body) for the answer URL.
    #[arg(long, env = "CALLMUX_ANSWER_METHOD")]
    answer_method: Option<String>,
    /// Tried when the answer URL fails (unreachable, time-out, non-2xx).
    #[arg(long, env = "CALLMUX_FALLBACK_ANSWER_URL")]
    fallback_answer_url: Option<String>,
    /// Application event URL (call status events; record and input events by default).
    #[arg(long, env = "CALLMUX_EVENT_URL")]
    event_url: Option<String>,
    /// POST (JSON body, the default) or GET (query string) for the event URL.
    #[arg(long, env = "CALLMUX_EVENT_METHOD")]
    event_method: Option<String>,
    /// Sign webhooks: HS256 JWT with this secret in `Authorization: Bearer`.
    #[arg(long, env = "CALLMUX_SIGNATURE_SECRET", hide_env_values = true)]
    signature_secret: Option<String>,
    /// Event queue: sqlite:DIR or redis://HOST:PORT/DB [default: SQLite in --data].
    #[arg(long, env = "CALLMUX_QUEUE")]
    queue: Option<String>,
    /// Do not start `callmux dispatch` as a child process (run it separately).
    #[arg(long, env = "CALLMUX_NO_DISPATCHER")]
    no_dispatcher: bool,
    /// Recordings root directory [default: ./recordings].
    #[arg(long, env = "CALLMUX_RECORDINGS")]
    recordings: Option<PathBuf>,
    /// Local state directory [default: ./data].
    #[arg(long, env = "CALLMUX_DATA")]
    data: Option<PathBuf>,
    /// Concurrent calls before new INVITEs get 503 [default: 2000].
    #[arg(long, env = "CALLMUX_MAX_CALLS")]
    max_calls: Option<u32>,
    /// Base URL of recording_url in record events [default: http://{--http}].
    #[arg(long, env = "CALLMUX_PUBLIC_URL")]
    public_url: Option<String>,
    /// Application id whose RS256 JWTs the recordings API accepts.
    #[arg(long, env = "CALLMUX_APPLICATION_ID")]
    application_id: Option<String>,
    /// The application's RSA key (PEM, public or private) for the recordings API.
    #[arg(long, env = "CALLMUX_APPLICATION_KEY")]
    application_key: Option<PathBuf>,
    /// Serve the recordings API without tokens (local demos only).
    #[arg(long, env = "CALLMUX_RECORDINGS_API_OPEN")]
    recordings_api_open: bool,
    /// Days recordings are kept, 0 = for ever [default: 30].
    #[arg(long, env = "CALLMUX_RETENTION_DAYS")]
    retention_days: Option<u64>,
    /// SIP over TLS address (with --tls-cert and --tls-key).
    #[arg(long, env = "CALLMUX_SIP_TLS")]
    sip_tls: Option<String>,
    /// PEM certificate chain for SIP over TLS.
    #[arg(long, env = "CALLMUX_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for SIP over TLS.
    #[arg(long, env = "CALLMUX_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Digest authentication of INVITEs: off or required [default: off].
    #[arg(long, env = "CALLMUX_SIP_AUTH")]
    sip_auth: Option<String>,
    /// A SIP user NAME:PASSWORD for digest authentication (repeatable; visible in `ps`:
    /// prefer [[user]] in the config file).
    #[arg(
        long = "user",
        env = "CALLMUX_USERS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    users: Vec<String>,
    /// Source allowed to send INVITEs, as CIDR (repeatable; replaces [sip] acl).
    #[arg(long = "acl", env = "CALLMUX_ACL", value_delimiter = ',')]
    acl: Vec<String>,
    /// New INVITEs per second per source, 0 = unlimited [default: 20].
    #[arg(long, env = "CALLMUX_INVITE_RATE")]
    invite_rate: Option<f64>,
    /// Seconds calls go on after SIGTERM before they are hung up [default: 30].
    #[arg(long, env = "CALLMUX_SHUTDOWN_GRACE")]
    shutdown_grace: Option<u64>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Print the default configuration file, with every key.
    #[arg(long)]
    print_default: bool,
    /// Validate a configuration file and exit (0 if valid, 2 if not).
    #[arg(long)]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let args = *args;
            let overrides = config::Overrides {
                sip: args.sip,
                http: args.http,
                rtp_ports: args.rtp_ports,
                media_ip: args.media_ip,
                ncco: args.ncco,
                answer_url: args.answer_url,
                answer_method: args.answer_method,
                fallback_answer_url: args.fallback_answer_url,
                event_url: args.event_url,
                event_method: args.event_method,
                signature_secret: args.signature_secret,
                queue: args.queue,
                no_dispatcher: args.no_dispatcher,
                recordings: args.recordings,
                data: args.data,
                max_calls: args.max_calls,
                public_url: args.public_url,
                application_id: args.application_id,
                application_key: args.application_key,
                recordings_api_open: args.recordings_api_open,
                retention_days: args.retention_days,
                tls_listen: args.sip_tls,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                sip_auth: args.sip_auth,
                users: args.users,
                acl: args.acl,
                invite_rate: args.invite_rate,
                shutdown_grace: args.shutdown_grace,
            };
            let cfg = match config::Config::load(args.config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("callmux: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            run_async(serve::run(cfg, args.config, overrides))
        }
        Command::Dispatch(args) => run_async(dispatch::run(args)),
        Command::Call(args) => run_async(ua::call::run(args)),
        Command::Answer(args) => run_async(ua::answer::run(args)),
        Command::Inspect(args) => match inspect::run(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("callmux inspect: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Config(args) => {
            if args.print_default {
                print!("{}", config::default_toml());
                return ExitCode::SUCCESS;
            }
            if let Some(path) = args.check {
                return match config::Config::load(Some(&path), &config::Overrides::default()) {
                    Ok(_) => {
                        println!("{}: ok", path.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("callmux: configuration error: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            eprintln!("callmux config: give --print-default or --check FILE");
            ExitCode::from(2)
        }
    }
}

/// Runs a future on a multi-threaded tokio runtime and maps its error to exit code 1
/// (or 2 for a configuration error found at start-up).
fn run_async<F>(fut: F) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callmux: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<config::ConfigError>() {
                eprintln!("callmux: configuration error: {ce}");
                return ExitCode::from(2);
            }
            eprintln!("callmux: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs file-system work that may block (creating, fsyncing and finalizing recordings)
/// without stalling the other tasks of this runtime worker: tokio moves them to another
/// worker for the duration. The caller's task waits, as it must: the call does not go on
/// before its file is in place.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
