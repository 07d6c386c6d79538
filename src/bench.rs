//! `callcoach bench`: placeholder replaced below.
pub fn run(_minutes: f64, _rates: &[u32]) -> anyhow::Result<()> {
    anyhow::bail!("bench: not yet built")
}
