//! `footage categorize`, `tag`, `case`, `hold` and `release`: durable changes to a segment;
//! each prints the segment's `info` afterwards.

use clap::Args;

use super::{id_arg, print_json, segment_arg};
use crate::store::Change;
use crate::Store;

#[derive(Args, Debug)]
pub struct LabelArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
    /// The category, tag or case id
    #[arg(value_parser = id_arg)]
    pub value: String,
    /// Take it away instead of adding it
    #[arg(long)]
    pub remove: bool,
}

#[derive(Args, Debug)]
pub struct HoldArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
    /// The case the hold is for
    #[arg(long, value_parser = id_arg, value_name = "CASE")]
    pub case: String,
}

/// Which label a `LabelArgs` command changes.
#[derive(Debug, Clone, Copy)]
pub enum Label {
    Category,
    Tag,
    Case,
}

pub fn label(store: &Store, which: Label, args: LabelArgs, actor: &str) -> anyhow::Result<i32> {
    let v = args.value;
    let change = match (which, args.remove) {
        (Label::Category, false) => Change::Categorize(v),
        (Label::Category, true) => Change::Uncategorize(v),
        (Label::Tag, false) => Change::Tag(v),
        (Label::Tag, true) => Change::Untag(v),
        (Label::Case, false) => Change::AddCase(v),
        (Label::Case, true) => Change::RemoveCase(v),
    };
    print_json(&store.change(args.id, &change, actor)?)?;
    Ok(super::EXIT_OK)
}

pub fn hold(store: &Store, args: HoldArgs, release: bool, actor: &str) -> anyhow::Result<i32> {
    let change = if release {
        Change::Release(args.case)
    } else {
        Change::Hold(args.case)
    };
    print_json(&store.change(args.id, &change, actor)?)?;
    Ok(super::EXIT_OK)
}
