//! Medians, and a bench's measurement of one arm.

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// A distribution-free 95% confidence interval for the median of `values`: the k-th smallest
/// and k-th largest value, k the largest rank with P(Binomial(n, 1/2) < k) <= 2.5%, so the
/// interval misses the true median at most 5% of the time whatever the distribution (the
/// pairs are independent draws). `None` below 6 values, where no such k exists.
pub(crate) fn median_ci95(values: &[f64]) -> Option<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // P(X <= i) for X ~ Binomial(n, 1/2), summed term by term in f64 (n is at most a few hundred).
    let mut term = 0.5f64.powi(i32::try_from(n).ok()?);
    let mut below = 0.0;
    let mut k = 0;
    for i in 0..n {
        // `below` is P(X < i); rank i + 1 qualifies while P(X < i + 1) <= 2.5%.
        below += term;
        if below > 0.025 {
            break;
        }
        k = i + 1;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    (k >= 1).then(|| (sorted[k - 1], sorted[n - k]))
}

/// `", median 95% CI lo-hi"` for the median of `ratios`, or nothing when there are too few.
pub(crate) fn ci_text(ratios: &[f64]) -> String {
    median_ci95(ratios).map_or_else(String::new, |(lo, hi)| {
        format!(", median 95% CI {lo:.3}-{hi:.3}")
    })
}

/// `value` with SI thousands (k, M), three significant digits.
pub(crate) fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::{median, median_ci95};

    #[test]
    fn median_of_odd_even_and_empty() {
        let cases: [(&[f64], f64); 4] = [
            (&[3.0, 1.0, 2.0], 2.0),
            (&[4.0, 1.0, 3.0, 2.0], 2.5),
            (&[], 0.0),
            (&[f64::NAN, 1.0], 1.0),
        ];
        for (values, expected) in cases {
            assert!((median(values) - expected).abs() < 1e-12, "{values:?}");
        }
    }

    #[test]
    fn median_ci95_uses_binomial_ranks() {
        // Ranks from the binomial table: n = 6 -> 1st and 6th, n = 10 -> 2nd and 9th,
        // n = 40 -> 14th and 27th.
        let ranks = |n: usize| {
            let values: Vec<f64> = (1..=n).map(|v| v as f64).collect();
            median_ci95(&values)
        };
        assert_eq!(ranks(5), None);
        assert_eq!(ranks(6), Some((1.0, 6.0)));
        assert_eq!(ranks(10), Some((2.0, 9.0)));
        assert_eq!(ranks(40), Some((14.0, 27.0)));
        assert_eq!(median_ci95(&[]), None);
        // Unsorted input and a NaN dropped before ranking.
        let shuffled = [6.0, f64::NAN, 1.0, 5.0, 2.0, 4.0, 3.0];
        assert_eq!(median_ci95(&shuffled), Some((1.0, 6.0)));
    }
}
