//! Integration tests of the public API: validation tables, the hosted API's documentation
//! examples, capability gating, runner scenarios on a simulated clock, and property tests.

mod capabilities;
mod examples;
mod props;
mod runner;
mod runner_input;
mod validation;

use callmux_ncco::{parse_ncco, Capabilities, Ncco, NccoError};

/// Parses with every capability.
pub(crate) fn parse(json: &str) -> Result<Ncco, NccoError> {
    parse_ncco(json.as_bytes(), &Capabilities::all())
}

/// Parses and insists on success, showing the error otherwise.
pub(crate) fn parse_ok(json: &str) -> Ncco {
    match parse(json) {
        Ok(ncco) => ncco,
        Err(e) => panic!("expected a valid NCCO, got `{e}` for {json}"),
    }
}
