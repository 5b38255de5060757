//! The `ringedge-bench` binary: dispatches `load`, `origin` and `merge`.
//!
//! `merge` is complete. `load` and `origin` validate their flags and then stop with a clear
//! error: their networking lands with the engine integration.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use ringedge_bench::args::{Cli, Command, MergeArgs};
use ringedge_bench::{merge, report};

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn run_merge(args: MergeArgs) -> Result<()> {
    let mut intervals = Vec::new();
    for f in &args.files {
        let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        intervals.extend(merge::parse_log(&f.display().to_string(), &text)?);
        if intervals.len() > merge::MAX_INTERVALS {
            anyhow::bail!(merge::MergeError::TooManyIntervals);
        }
    }
    let names: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let (rec, mut meta) = merge::merge_intervals(&intervals, &names.join(" "));
    meta.settings
        .insert("intervals".to_owned(), intervals.len().to_string());
    meta.machine = report::Machine::detect();
    print!("{}", report::summary(&rec, &meta));
    if let Some(p) = &args.json {
        write_file(p, report::json_string(&rec, &meta).as_bytes())?;
    }
    if let Some(p) = &args.hgrm {
        write_file(p, report::hgrm(&rec.corrected).as_bytes())?;
    }
    if let Some(p) = &args.svg {
        write_file(p, report::svg(&rec, "ringedge-bench merge").as_bytes())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Merge(m) => run_merge(m),
        Command::Load(l) => l.validate().map_err(anyhow::Error::from).and_then(|_| {
            anyhow::bail!("load: not implemented yet: networking lands with the lead's integration")
        }),
        Command::Origin(o) => o.validate().map_err(anyhow::Error::from).and_then(|_| {
            anyhow::bail!(
                "origin: not implemented yet: networking lands with the lead's integration"
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringedge-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
