//! Running the proxy from a validated [`Config`].
//!
//! Placeholder until the forwarding engine lands (issue 3): [`run`] refuses to start and says
//! so, so that `ringedge run` never pretends to serve. Must not open sockets half-way: a
//! proxy either starts completely or not at all.

use std::fmt;

use crate::config::Config;

/// Why the proxy could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The forwarding engine is not built yet (it lands with issue 3); nothing was started.
    NotYetImplemented,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NotYetImplemented => f.write_str(
                "the forwarding engine is not implemented yet (it lands with issue 3); \
                 the configuration is valid but nothing was started",
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Run the proxy with `config` until shutdown.
pub fn run(config: Config) -> Result<(), RunError> {
    drop(config);
    Err(RunError::NotYetImplemented)
}
