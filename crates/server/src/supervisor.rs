//! The dispatcher as a child of `callmux serve`: started with the server's queue and
//! settings, restarted (with back-off) whenever it exits, and stopped with the server. It
//! stays a separate process, so a slow receiver or a crash in delivery never touches media.
//!
//! The child's standard input is a pipe from the server; when the server exits in any way
//! (even SIGKILL) the pipe closes and the child (`--watch-stdin`) finishes its attempts in
//! flight and exits, so no dispatcher outlives its server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;

/// A running supervisor; [`Supervisor::stop`] ends the child.
pub(crate) struct Supervisor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Starts the child dispatcher and keeps it running.
    pub(crate) fn start(config: &Config, config_file: Option<PathBuf>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut args: Vec<String> = vec!["dispatch".into(), "--watch-stdin".into()];
        if let Some(f) = &config_file {
            args.push("--config".into());
            args.push(f.display().to_string());
        }
        args.push("--queue".into());
        args.push(config.queue_url.clone());
        args.push("--max-age".into());
        args.push(config.dispatch.policy.max_age.as_secs().to_string());
        let secret = config.signature_secret.clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                let mut cmd = Command::new(&exe);
                cmd.args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .env_remove("CALLMUX_SIGNATURE_SECRET");
                if let Some(s) = &secret {
                    // Through the environment, so it does not show in `ps`.
                    cmd.env("CALLMUX_SIGNATURE_SECRET", s);
                }
                let started = Instant::now();
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(error = %e, "cannot start the dispatcher; retrying");
                        if wait_or_stop(&mut stopped, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                };
                info!(pid = child.id(), "dispatcher started");
                // `Child::wait` would close stdin (the child's signal to stop): keep it here.
                let stdin = child.stdin.take();
                tokio::select! {
                    status = child.wait() => {
                        match status {
                            Ok(s) => warn!(status = %s, "dispatcher exited; restarting"),
                            Err(e) => warn!(error = %e, "dispatcher lost; restarting"),
                        }
                        if started.elapsed() > Duration::from_secs(60) {
                            backoff = Duration::from_millis(250);
                        }
                        if wait_or_stop(&mut stopped, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    _ = stopped.changed() => {
                        drop(stdin);
                        stop_child(child).await;
                        return;
                    }
                }
            }
        });
        Ok(Self { stop, task })
    }

    /// Stops the child (it finishes its attempts in flight first) and waits for it.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

/// Sleeps for `d`; true when told to stop meanwhile.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

/// Waits for the child whose stdin was closed (its signal to stop), then kills it if need be.
async fn stop_child(mut child: Child) {
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(_) => info!("dispatcher stopped"),
        Err(_) => {
            warn!("dispatcher did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}
