//! External audio tools (sox, opusinfo/opusdec) used as independent readers. When one is
//! missing the check is skipped with a notice, unless CALLMUX_REQUIRE_AUDIO_TOOLS=1 (CI sets
//! it after installing sox, libsox-fmt-mp3 and opus-tools), which turns the skip into a failure.

use std::path::Path;
use std::process::Command;

/// Runs `tool args…`; None if the tool is not installed (and not required).
pub(crate) fn run(tool: &str, args: &[&str]) -> Option<(bool, String)> {
    match Command::new(tool).args(args).output() {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            Some((o.status.success(), text))
        }
        Err(e) => {
            let required = std::env::var("CALLMUX_REQUIRE_AUDIO_TOOLS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{tool} is required (CALLMUX_REQUIRE_AUDIO_TOOLS=1) but cannot run: {e}"
            );
            eprintln!("note: {tool} not available ({e}); external check skipped");
            None
        }
    }
}

/// `sox --i FILE` → its report (None if sox is missing).
pub(crate) fn sox_info(path: &Path) -> Option<String> {
    let (ok, text) = run("sox", &["--i", path.to_str()?])?;
    assert!(ok, "sox --i failed on {}: {text}", path.display());
    Some(text)
}

/// Converts `src` to a 16-bit WAV at `dst` with sox (None if sox is missing).
pub(crate) fn sox_convert(src: &Path, dst: &Path) -> Option<()> {
    let (ok, text) = run("sox", &[src.to_str()?, "-b", "16", dst.to_str()?])?;
    assert!(ok, "sox could not decode {}: {text}", src.display());
    Some(())
}
