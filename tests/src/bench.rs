//! What the bench binaries share: percentiles and the one-line report they print.

/// The `p`-quantile (0..=1) of `samples`, which it sorts; nearest rank.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

/// Prints `label`, the median and the p99 of `samples` (milliseconds), and how many.
pub fn report(label: &str, samples: &mut [f64]) {
    let median = percentile(samples, 0.5);
    let p99 = percentile(samples, 0.99);
    println!(
        "{label:<58} median {median:>7.2} ms   p99 {p99:>7.2} ms   (n={})",
        samples.len()
    );
}

/// The value of `--name N` on the bench's command line, if it is at least `min`; else `default`.
pub fn arg(name: &str, default: usize, min: usize) -> usize {
    let flag = format!("--{name}");
    let argv: Vec<String> = std::env::args().collect();
    argv.windows(2)
        .find(|pair| pair[0] == flag)
        .and_then(|pair| pair[1].parse().ok())
        .filter(|n| *n >= min)
        .unwrap_or(default)
}
