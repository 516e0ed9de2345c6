//! `footage ingest`: one file (or stdin), or every entry of a JSON-lines manifest.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::{id_arg, println_out, progress_bar, time_arg};
use crate::input::{mp4_duration_us, parse_gps_file, read_manifest};
use crate::meta::SegmentMeta;
use crate::{Committed, SegmentWriter, Store};

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Video file to store, or - to read stdin
    #[arg(required_unless_present = "manifest", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Officer id (badge or payroll number), e.g. MET-004217
    #[arg(long, value_parser = id_arg, required_unless_present = "manifest")]
    pub officer: Option<String>,
    /// Camera serial number, e.g. AX-B3-00123
    #[arg(long, value_parser = id_arg, required_unless_present = "manifest")]
    pub device: Option<String>,
    /// Recording start, RFC 3339 (2026-11-20T14:03:00Z; offsets allowed)
    #[arg(long, value_parser = time_arg, required_unless_present = "manifest")]
    pub start: Option<i64>,
    /// Recording end, RFC 3339 (default: start + the MP4's duration)
    #[arg(long, value_parser = time_arg)]
    pub end: Option<i64>,
    /// GPS track: GPX 1.1 with <time> on every trkpt, or CSV with header time,lat,lon
    #[arg(long, value_name = "FILE")]
    pub gps: Option<PathBuf>,
    /// Case or incident id (repeatable)
    #[arg(long = "case", value_parser = id_arg, value_name = "ID")]
    pub cases: Vec<String>,
    /// Free tag (repeatable)
    #[arg(long = "tag", value_parser = id_arg, value_name = "T")]
    pub tags: Vec<String>,
    /// Retention category, e.g. evidential (repeatable)
    #[arg(long = "category", value_parser = id_arg, value_name = "NAME")]
    pub categories: Vec<String>,
    /// Ingest every segment listed in a JSON-lines manifest instead of FILE
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["file", "officer", "device", "start", "end", "gps", "cases", "tags", "categories"])]
    pub manifest: Option<PathBuf>,
}

/// The line printed for each ingested segment.
#[derive(Serialize)]
pub(crate) struct IngestOutput {
    id: String,
    sha256: String,
    bytes: u64,
    duplicate: bool,
}

impl From<&Committed> for IngestOutput {
    fn from(c: &Committed) -> IngestOutput {
        IngestOutput {
            id: c.id.to_string(),
            sha256: c.sha256_hex(),
            bytes: c.bytes,
            duplicate: c.duplicate,
        }
    }
}

impl From<crate::control::Stored> for IngestOutput {
    fn from(s: crate::control::Stored) -> IngestOutput {
        IngestOutput {
            id: s.id,
            sha256: s.sha256,
            bytes: s.bytes,
            duplicate: s.duplicate,
        }
    }
}

/// Where `footage ingest` stores segments: the store this process opened, or the running
/// service (src/cli/beside.rs), which receives the bytes this process reads.
pub(crate) trait Target {
    /// Starts a segment of `length` bytes (when known).
    fn begin(&self, meta: SegmentMeta, length: Option<u64>) -> anyhow::Result<Box<dyn Sink + '_>>;

    /// Stores a whole segment read from a stream of unknown length (stdin).
    fn ingest_stream(&self, meta: SegmentMeta, r: &mut dyn Read) -> anyhow::Result<IngestOutput> {
        let mut w = self.begin(meta, None)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(anyhow::Error::from(e).context("cannot read stdin")),
            };
            w.write(buf.get(..n).unwrap_or_default())?;
        }
        w.commit()
    }
}

/// One segment being stored.
pub(crate) trait Sink {
    fn write(&mut self, data: &[u8]) -> anyhow::Result<()>;
    /// Makes the segment durable; returns the line `footage ingest` prints.
    fn commit(self: Box<Self>) -> anyhow::Result<IngestOutput>;
}

impl Target for Store {
    fn begin(&self, meta: SegmentMeta, _length: Option<u64>) -> anyhow::Result<Box<dyn Sink + '_>> {
        Ok(Box::new(self.begin_segment(meta)?))
    }

    fn ingest_stream(&self, meta: SegmentMeta, r: &mut dyn Read) -> anyhow::Result<IngestOutput> {
        Ok(IngestOutput::from(&self.ingest_reader(meta, r)?))
    }
}

impl Sink for SegmentWriter {
    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        Ok(SegmentWriter::write(self, data)?)
    }

    fn commit(self: Box<Self>) -> anyhow::Result<IngestOutput> {
        Ok(IngestOutput::from(&SegmentWriter::commit(*self)?))
    }
}

pub fn run(store: &Store, args: IngestArgs) -> anyhow::Result<i32> {
    run_to(store, args)
}

/// `footage ingest` into `target`: every input is opened and parsed here.
pub(crate) fn run_to(store: &dyn Target, args: IngestArgs) -> anyhow::Result<i32> {
    if let Some(manifest) = &args.manifest {
        return run_manifest(store, manifest);
    }
    let (Some(file), Some(officer), Some(device), Some(start)) =
        (args.file, args.officer, args.device, args.start)
    else {
        bail!("FILE, --officer, --device and --start are required (or use --manifest)");
    };
    let gps = match &args.gps {
        Some(p) => parse_gps_file(p)?,
        None => Vec::new(),
    };
    let meta = SegmentMeta {
        officer,
        device,
        start_us: start,
        end_us: args.end.unwrap_or(start),
        gps,
        cases: args.cases,
        tags: args.tags,
        categories: args.categories,
    };
    let c = ingest_one(store, &file, meta, args.end, None)?;
    println_out(&serde_json::to_string(&c)?)?;
    Ok(super::EXIT_OK)
}

/// Ingests one file (or stdin for `-`), filling in `end` from the MP4 when not given.
fn ingest_one(
    store: &dyn Target,
    file: &Path,
    mut meta: SegmentMeta,
    end: Option<i64>,
    shared_bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<IngestOutput> {
    if file == Path::new("-") {
        let Some(end) = end else {
            bail!("--end is required when reading from stdin (the duration cannot be read from a stream)");
        };
        meta.end_us = end;
        check_times(&meta)?;
        return store.ingest_stream(meta, &mut std::io::stdin().lock());
    }
    let mut f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = f
        .metadata()
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        bail!("{} is a directory, not a video file", file.display());
    }
    meta.end_us = match end {
        Some(e) => e,
        None => match mp4_duration_us(file)? {
            Some(d) => meta.start_us.saturating_add(d),
            None => bail!(
                "cannot read a duration from {} (not an MP4 with a duration in its header): pass --end",
                file.display()
            ),
        },
    };
    check_times(&meta)?;
    let own_bar;
    let pb = match shared_bar {
        Some(pb) => pb,
        None => {
            own_bar = progress_bar(size, "ingesting");
            &own_bar
        }
    };
    let mut w = store.begin(meta, Some(size))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if n == 0 {
            break;
        }
        w.write(buf.get(..n).unwrap_or_default())?;
        pb.inc(n as u64);
    }
    if shared_bar.is_none() {
        pb.finish_and_clear();
    }
    w.commit()
}

fn check_times(meta: &SegmentMeta) -> anyhow::Result<()> {
    if meta.end_us < meta.start_us {
        bail!("end is before start: check --start and --end");
    }
    Ok(())
}

fn run_manifest(store: &dyn Target, manifest: &Path) -> anyhow::Result<i32> {
    // The whole manifest is checked before anything is stored.
    let entries = read_manifest(manifest)?;
    let mut total = 0u64;
    for e in &entries {
        let size = std::fs::metadata(&e.file)
            .with_context(|| {
                format!(
                    "{} line {}: cannot read {}",
                    manifest.display(),
                    e.line,
                    e.file.display()
                )
            })?
            .len();
        total += size;
    }
    let pb = progress_bar(total, "ingesting");
    let mut failed = 0;
    for e in entries {
        let meta = SegmentMeta {
            officer: e.officer,
            device: e.device,
            start_us: e.start_us,
            end_us: e.end_us.unwrap_or(e.start_us),
            gps: e.gps,
            cases: e.cases,
            tags: e.tags,
            categories: e.categories,
        };
        match ingest_one(store, &e.file, meta, e.end_us, Some(&pb)) {
            Ok(c) => pb.suspend(|| println_out(&serde_json::to_string(&c)?))?,
            Err(err) => {
                failed += 1;
                let line = serde_json::json!({"line": e.line, "file": e.file.display().to_string(), "error": format!("{err:#}")});
                pb.suspend(|| println_out(&line.to_string()))?;
                eprintln!("error: {} line {}: {err:#}", manifest.display(), e.line);
            }
        }
    }
    pb.finish_and_clear();
    Ok(if failed > 0 {
        super::EXIT_FAILURE
    } else {
        super::EXIT_OK
    })
}
