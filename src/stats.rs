//! Small statistics shared by the live run, the reports and the benchmarks.

/// p50 and p99 (nearest rank) of `v`; zeros when empty.
pub fn percentiles(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}
