//! Summary statistics of timing samples: min, median, p95 (nearest rank).

use serde::Serialize;

/// Summary of one measurement's samples, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    /// Nearest-rank 95th percentile: the smallest sample with at least 95%
    /// of the samples at or below it (with fewer than 20 samples, the max).
    pub p95: f64,
    pub max: f64,
    /// Every sample in the order measured, for a look at the spread.
    pub samples: Vec<f64>,
}

impl Stats {
    /// `None` for no samples. NaN samples are dropped (they cannot be ordered).
    pub fn from_samples(samples: &[f64]) -> Option<Stats> {
        let kept: Vec<f64> = samples.iter().copied().filter(|s| !s.is_nan()).collect();
        if kept.is_empty() {
            return None;
        }
        let mut sorted = kept.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        // Nearest rank: ceil(0.95 * n), 1-based.
        let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
        Some(Stats {
            n,
            min: sorted[0],
            median,
            p95: sorted[rank - 1],
            max: sorted[n - 1],
            samples: kept,
        })
    }

    pub fn from_durations(samples: &[std::time::Duration]) -> Option<Stats> {
        Self::from_samples(&samples.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_median_is_the_middle_sample_and_p95_the_max() {
        let s = Stats::from_samples(&[3.0, 1.0, 2.0]).expect("samples");
        assert_eq!(
            (s.n, s.min, s.median, s.p95, s.max),
            (3, 1.0, 2.0, 3.0, 3.0)
        );
        // Samples keep the order they were measured in.
        assert_eq!(s.samples, vec![3.0, 1.0, 2.0]);
    }

    #[test]
    fn even_count_median_averages_the_two_middle_samples() {
        let s = Stats::from_samples(&[4.0, 1.0, 3.0, 2.0]).expect("samples");
        assert_eq!(s.median, 2.5);
        assert_eq!(s.p95, 4.0);
    }

    #[test]
    fn p95_is_nearest_rank() {
        // 1..=100: ceil(95) = 95th value; 1..=20: ceil(19) = 19th value.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Stats::from_samples(&hundred).expect("samples").p95, 95.0);
        let twenty: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        let s = Stats::from_samples(&twenty).expect("samples");
        assert_eq!((s.min, s.median, s.p95, s.max), (1.0, 10.5, 19.0, 20.0));
    }

    #[test]
    fn one_sample_is_every_statistic_and_none_is_nothing() {
        let s = Stats::from_samples(&[0.25]).expect("samples");
        assert_eq!((s.min, s.median, s.p95), (0.25, 0.25, 0.25));
        assert_eq!(Stats::from_samples(&[]), None);
        assert_eq!(Stats::from_samples(&[f64::NAN]), None);
    }
}
