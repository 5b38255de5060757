//! The `ringedge-bench` binary: dispatches `load`, `origin`, `merge` and `cert`.
//!
//! `anyhow` is used here only (a binary); the library has one error enum per module.
#![forbid(unsafe_code)]

/// mimalloc, as in the proxy binary: the generator and the origin allocate small objects per
/// call (glibc's malloc/free were about 6% of their CPU under load).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use ringedge_bench::args::{CertArgs, Cli, Command, LoadOptions, MergeArgs};
use ringedge_bench::{cert, load, merge, origin, report};

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn run_merge(args: MergeArgs) -> Result<()> {
    let mut intervals = Vec::new();
    for f in &args.files {
        let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let parsed = merge::parse_log(&f.display().to_string(), &text)?;
        intervals.extend(merge::select_tag(parsed, args.tag.as_deref()));
        if intervals.len() > merge::MAX_INTERVALS {
            anyhow::bail!(merge::MergeError::TooManyIntervals);
        }
    }
    if args.unit != merge::ValueUnit::Us {
        for i in &mut intervals {
            i.histogram = merge::to_micros(&i.histogram, args.unit);
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

fn run_load(opts: LoadOptions) -> Result<()> {
    let result = load::run(&opts)?;
    let (rec, meta) = (&result.recorder, &result.meta);
    print!("{}", report::summary(rec, meta));
    let m = result.messages;
    println!(
        "Messages:    {} calls started, {} request messages sent, {} response messages received (warm-up included)",
        m.calls, m.sent, m.received
    );
    if let Some(p) = &opts.json {
        write_file(p, report::json_string(rec, meta).as_bytes())?;
    }
    if let Some(p) = &opts.hdr_log {
        write_file(p, &report::interval_log(rec, meta, None)?)?;
    }
    if let Some(p) = &opts.hgrm {
        write_file(p, report::hgrm(&rec.corrected).as_bytes())?;
    }
    if let Some(p) = &opts.svg {
        write_file(
            p,
            report::svg(rec, &format!("ringedge-bench load {}", meta.target)).as_bytes(),
        )?;
    }
    Ok(())
}

fn run_cert(args: CertArgs) -> Result<()> {
    let names = cert::split_names(&args.names);
    let (c, k) = cert::write_self_signed(&args.out, &names)?;
    println!("wrote {} and {}", c.display(), k.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Merge(m) => run_merge(m),
        Command::Load(l) => l.validate().map_err(anyhow::Error::from).and_then(run_load),
        Command::Origin(o) => o
            .validate()
            .map_err(anyhow::Error::from)
            .and_then(|o| origin::run(&o).map_err(anyhow::Error::from)),
        Command::Cert(c) => run_cert(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringedge-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
