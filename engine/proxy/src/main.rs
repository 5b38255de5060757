//! The `ringedge` binary: `check`, `run` and the one-line `proxy` mode.
//!
//! Exit codes: 0 success, 2 invalid configuration (every error printed with its key path),
//! 1 any other failure (TLS files, origin resolution, start-up of shards or listeners).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringedge::config::{self, Config, LogConfig, LogFormat, QuickOptions};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Environment variable overriding the configured log level (the flag wins over it).
const LOG_ENV: &str = "RINGEDGE_LOG";

#[derive(Debug, Parser)]
#[command(
    name = "ringedge",
    version,
    about = "A thread-per-core gRPC edge proxy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate a configuration file and list every error with its key path.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file, then run the proxy.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Log filter (overrides RINGEDGE_LOG and `[log] level`), e.g. `debug`.
        #[arg(long)]
        log_level: Option<String>,
    },
    /// One-line mode: TLS on ADDR, every request to one origin (host `*`, prefix `/`).
    Proxy {
        /// Listen address (repeatable). Default 0.0.0.0:443.
        #[arg(long)]
        listen: Vec<String>,
        /// Certificate chain, PEM.
        #[arg(long)]
        cert: String,
        /// Private key, PEM.
        #[arg(long)]
        key: String,
        /// Origin URL: h2c://host:port or https://host:port.
        #[arg(long)]
        origin: String,
        /// CA bundle (PEM) to verify an https origin (default: webpki roots).
        #[arg(long)]
        origin_ca: Option<String>,
        /// Do not verify the origin's certificate (lab use only).
        #[arg(long)]
        origin_insecure: bool,
        /// Number of shards (default: one per allowed CPU).
        #[arg(long)]
        shards: Option<u32>,
        /// Print the equivalent configuration file and exit.
        #[arg(long)]
        print_config: bool,
        /// Log filter (overrides RINGEDGE_LOG), e.g. `debug`.
        #[arg(long)]
        log_level: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config } => match config::load(&config) {
            Ok(c) => {
                println!(
                    "config OK: {} hosts, {} routes, {} origins",
                    c.hosts.len(),
                    c.route_count(),
                    c.origins.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => config_failed(&config.display().to_string(), &e),
        },
        Cmd::Run { config, log_level } => match config::load(&config) {
            Ok(c) => start(c, log_level.as_deref()),
            Err(e) => config_failed(&config.display().to_string(), &e),
        },
        Cmd::Proxy {
            listen,
            cert,
            key,
            origin,
            origin_ca,
            origin_insecure,
            shards,
            print_config,
            log_level,
        } => {
            let opts = QuickOptions {
                listen,
                cert,
                key,
                origin,
                origin_ca,
                origin_insecure,
                shards,
            };
            if print_config {
                print!("{}", opts.to_toml());
                return ExitCode::SUCCESS;
            }
            match Config::quick(&opts) {
                Ok(c) => start(c, log_level.as_deref()),
                Err(e) => config_failed("command line", &e),
            }
        }
    }
}

fn config_failed(source: &str, e: &config::ConfigError) -> ExitCode {
    eprintln!("{source}: {e}");
    ExitCode::from(2)
}

fn start(config: Config, log_level: Option<&str>) -> ExitCode {
    if let Err(e) = init_logging(log_level, &config.log) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    for o in config.origins.iter().filter(|o| o.insecure_skip_verify) {
        tracing::warn!(
            origin = %o.name,
            url = %o.url,
            "INSECURE: origin certificate verification is DISABLED (insecure_skip_verify); lab use only"
        );
    }
    tracing::info!(
        hosts = config.hosts.len(),
        routes = config.route_count(),
        origins = config.origins.len(),
        "configuration valid"
    );
    match ringedge::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ringedge stopped");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Level: `--log-level`, else `RINGEDGE_LOG`, else `[log] level`.
fn init_logging(flag: Option<&str>, log: &LogConfig) -> anyhow::Result<()> {
    let env = std::env::var(LOG_ENV).ok().filter(|s| !s.is_empty());
    let (directive, origin) = match (flag, env.as_deref()) {
        (Some(f), _) => (f, "--log-level"),
        (None, Some(e)) => (e, LOG_ENV),
        (None, None) => (log.level.as_str(), "[log] level"),
    };
    config::check_log_filter(directive)
        .map_err(|e| anyhow::anyhow!("{origin} {directive:?} is not a valid log filter: {e}"))?;
    let filter = EnvFilter::builder()
        .parse(directive)
        .map_err(|e| anyhow::anyhow!("{origin} {directive:?} is not a valid log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let res = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
    };
    res.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// One JSON object per event: `{"ts":…,"level":…,"target":…,"message":…, fields…}`.
#[derive(Debug)]
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let meta = event.metadata();
        let mut line = String::with_capacity(256);
        let _ = write!(
            line,
            "{{\"ts\":{ts:.6},\"level\":\"{}\",\"target\":",
            meta.level()
        );
        json_str(&mut line, meta.target());
        let mut v = JsonVisitor(&mut line);
        event.record(&mut v);
        line.push('}');
        writeln!(w, "{line}")
    }
}

struct JsonVisitor<'a>(&'a mut String);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push(',');
        json_str(self.0, field.name());
        self.0.push(':');
        json_str(self.0, value);
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.push(',');
        json_str(self.0, field.name());
        let _ = write!(self.0, ":{value}");
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.push(',');
        json_str(self.0, field.name());
        let _ = write!(self.0, ":{value}");
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.push(',');
        json_str(self.0, field.name());
        let _ = write!(self.0, ":{value}");
    }
}

/// Append `s` as a JSON string literal (RFC 8259 §7).
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
