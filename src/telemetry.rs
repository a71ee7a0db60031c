//! Logging through `tracing`. `RUST_LOG` filters (default `info`); production logs JSON lines.
//! Nothing here ever formats a secret: secrets are `SecretString`s and print `[REDACTED]`.

use crate::config::LogFormat;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls (tests spawning many apps) are no-ops.
pub fn init(format: LogFormat) {
    init_with_writer(format, std::io::stdout);
}

/// As [`init`], writing somewhere else: the load generator keeps the server's log in a file
/// so that a benchmark pays for logging as a deployed server does without flooding its table.
pub fn init_with_writer<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match format {
        LogFormat::Json => fmt()
            .json()
            .with_current_span(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init(),
        LogFormat::Pretty => fmt().with_env_filter(filter).with_writer(writer).try_init(),
    };
    drop(result);
}
