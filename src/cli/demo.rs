//! `footage demo`: placeholder replaced below.
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the demo store and its generated clips
    #[arg(long, default_value = "./footage-demo")]
    pub dir: PathBuf,
}

pub fn run(_args: DemoArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
