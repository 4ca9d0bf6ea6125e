//! The `callmux` binary.
fn main() -> anyhow::Result<()> {
    Ok(())
}
