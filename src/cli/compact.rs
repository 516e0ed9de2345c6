//! `footage compact`: rewrite sealed volumes that hold mostly dead bytes.

use clap::Args;

use super::print_json;
use crate::Store;

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// Compact a sealed volume when at least this fraction (0..=1) of its disk space is dead
    #[arg(long, default_value_t = 0.5, value_name = "FRACTION", value_parser = fraction_arg)]
    pub min_dead: f64,
}

fn fraction_arg(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| format!("{s:?} is not a fraction between 0 and 1"))
}

pub fn run(store: &Store, args: CompactArgs, actor: &str) -> anyhow::Result<i32> {
    let summary = store.compact(args.min_dead, actor)?;
    print_json(&summary)?;
    if summary.failed.is_empty() {
        Ok(super::EXIT_OK)
    } else {
        super::eprintln_out(&format!(
            "error: {} volumes could not be compacted (nothing was changed in them)",
            summary.failed.len()
        ));
        Ok(super::EXIT_FAILURE)
    }
}
