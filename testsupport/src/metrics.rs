//! Reading the Prometheus / OpenMetrics text format the operator exposes.

/// Samples as (series with labels, exactly as exposed; value), comments and blank lines skipped.
pub fn samples(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of a series (`name{labels}` exactly as exposed), 0 when absent.
pub fn value(metrics: &str, series: &str) -> f64 {
    samples(metrics)
        .into_iter()
        .find(|(name, _)| name == series)
        .map(|(_, value)| value)
        .unwrap_or(0.0)
}

/// The sum of every sample of the metric `name` (all label sets).
pub fn sum(metrics: &str, name: &str) -> f64 {
    let labelled = format!("{name}{{");
    samples(metrics)
        .into_iter()
        .filter(|(series, _)| series == name || series.starts_with(&labelled))
        .map(|(_, value)| value)
        .sum()
}

/// A label's value in a series such as `name{a="x",b="y"}`.
pub fn label<'a>(series: &'a str, key: &str) -> Option<&'a str> {
    let labels = series.split_once('{')?.1.trim_end_matches('}');
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.trim_matches('"'))
    })
}
