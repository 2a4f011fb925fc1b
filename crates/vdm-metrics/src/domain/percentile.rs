//! Nearest-rank percentiles of a sorted list of values.

/// p50, p95 and p99 of a set of values, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// How many values.
    pub count: u64,
    /// The 50th percentile (`None` without values).
    pub p50: Option<f64>,
    /// The 95th percentile.
    pub p95: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
}

/// Nearest-rank percentiles of `sorted` (ascending): the p-th percentile is
/// the value at rank `ceil(p / 100 * n)`.
pub fn percentiles(sorted: &[f64]) -> Percentiles {
    Percentiles {
        count: sorted.len() as u64,
        p50: rank(sorted, 50.0),
        p95: rank(sorted, 95.0),
        p99: rank(sorted, 99.0),
    }
}

fn rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // ceil(p/100 * n) is in 1..=n for 0 < p <= 100.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles(&values);
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99),
            (100, Some(50.0), Some(95.0), Some(99.0))
        );
        let one = percentiles(&[3.0]);
        assert_eq!((one.p50, one.p99), (Some(3.0), Some(3.0)));
        assert_eq!(percentiles(&[]).p50, None);
    }
}
