//! Collected figures, their medians over rounds, and the tables printed (as
//! text and, optionally, markdown) with every figure as a ratio to direct.

use std::fmt::Write as _;

/// One measured value.
#[derive(Debug, Clone)]
struct Sample {
    group: String,
    leg: &'static str,
    metric: &'static str,
    value: f64,
}

/// Every value of a run.
#[derive(Debug, Default)]
pub struct Results {
    samples: Vec<Sample>,
}

/// The median of some values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// How a column compares a leg with direct.
#[derive(Debug, Clone, Copy)]
pub enum Compare {
    /// No comparison.
    None,
    /// `value / direct`.
    Ratio,
    /// `value - direct`.
    Difference,
}

/// A column of a table: a metric, its header, decimals, and comparison.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The metric name the samples were recorded under.
    pub metric: &'static str,
    /// The header.
    pub header: &'static str,
    /// Decimals printed.
    pub decimals: usize,
    /// The comparison column printed after it.
    pub compare: Compare,
}

impl Results {
    /// Records one value.
    pub fn add(&mut self, group: &str, leg: &'static str, metric: &'static str, value: f64) {
        self.samples.push(Sample {
            group: group.to_owned(),
            leg,
            metric,
            value,
        });
    }

    fn values(&self, group: &str, leg: &str, metric: &str) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|s| s.group == group && s.leg == leg && s.metric == metric)
            .map(|s| s.value)
            .collect()
    }

    /// The median of a metric over the rounds.
    pub fn median(&self, group: &str, leg: &str, metric: &str) -> Option<f64> {
        median(&self.values(group, leg, metric))
    }

    /// Groups in the order they were first recorded.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for s in &self.samples {
            if !groups.contains(&s.group) {
                groups.push(s.group.clone());
            }
        }
        groups
    }

    /// A markdown table: one row per (group, leg), medians, comparisons with
    /// the group's `direct` row, and the per-round values of the first column.
    pub fn table(&self, groups: &[String], legs: &[&'static str], columns: &[Column]) -> String {
        let mut out = String::from("| workload | leg |");
        let mut rule = String::from("|---|---|");
        for c in columns {
            let _ = write!(out, " {} |", c.header);
            rule.push_str("---:|");
            match c.compare {
                Compare::Ratio => {
                    out.push_str(" x direct |");
                    rule.push_str("---:|");
                }
                Compare::Difference => {
                    out.push_str(" - direct |");
                    rule.push_str("---:|");
                }
                Compare::None => {}
            }
        }
        out.push_str(" rounds |\n");
        rule.push_str("---|\n");
        out.push_str(&rule);
        for group in groups {
            for &leg in legs {
                let Some(first) = columns.first() else {
                    continue;
                };
                let rounds = self.values(group, leg, first.metric);
                if rounds.is_empty() {
                    continue;
                }
                let _ = write!(out, "| {group} | {leg} |");
                for c in columns {
                    let value = self.median(group, leg, c.metric);
                    let direct = self.median(group, "direct", c.metric);
                    let _ = write!(out, " {} |", fmt(value, c.decimals));
                    match c.compare {
                        Compare::Ratio => {
                            let r = value.zip(direct).map(|(v, d)| v / d);
                            let _ =
                                write!(out, " {} |", r.map_or("-".into(), |r| format!("{r:.2}x")));
                        }
                        Compare::Difference => {
                            let d = value.zip(direct).map(|(v, d)| v - d);
                            let _ =
                                write!(out, " {} |", d.map_or("-".into(), |d| format!("{d:+.0}")));
                        }
                        Compare::None => {}
                    }
                }
                let list: Vec<String> = rounds
                    .iter()
                    .map(|v| fmt(Some(*v), first.decimals))
                    .collect();
                let _ = writeln!(out, " {} |", list.join(", "));
            }
        }
        out
    }
}

fn fmt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios_to_direct() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let mut r = Results::default();
        for v in [100.0, 110.0, 90.0] {
            r.add("w", "direct", "tps", v);
        }
        for v in [80.0, 90.0, 85.0] {
            r.add("w", "periscope", "tps", v);
        }
        let table = r.table(
            &r.groups(),
            &["direct", "periscope"],
            &[Column {
                metric: "tps",
                header: "TPS",
                decimals: 0,
                compare: Compare::Ratio,
            }],
        );
        assert!(
            table.contains("| w | periscope | 85 | 0.85x | 80, 90, 85 |"),
            "{table}"
        );
        assert!(table.contains("| w | direct | 100 | 1.00x |"), "{table}");
    }
}
