//! Command-line durations the way Kubernetes controllers take them: `10s`, `500ms`, `5m`,
//! `1h30m` (Go's `time.ParseDuration` units, parsed by `humantime`), and a bare number,
//! which keeps meaning seconds (`60`, `0.5`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration flag value. Displays as humantime does (`1m 30s`), so defaults read well in
/// `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlagDuration(pub Duration);

impl FromStr for FlagDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return Duration::try_from_secs_f64(seconds)
                .map(FlagDuration)
                .map_err(|_| {
                    format!("{text:?} is not a duration: seconds must be finite and >= 0")
                });
        }
        humantime::parse_duration(text).map(FlagDuration).map_err(|e| {
            format!("{text:?} is not a duration ({e}): write e.g. 30s, 500ms, 5m, 1h30m, or a number of seconds")
        })
    }
}

impl fmt::Display for FlagDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_numbers_are_seconds() {
        // (flag value, milliseconds or None for refused): each row one accepted form.
        let rows: [(&str, Option<u64>); 10] = [
            ("10s", Some(10_000)),
            ("500ms", Some(500)),
            ("5m", Some(300_000)),
            ("1h", Some(3_600_000)),
            ("1h30m", Some(5_400_000)),
            ("90", Some(90_000)),
            ("0.5", Some(500)),
            ("10x", None),
            ("-5", None),
            ("", None),
        ];
        for (text, want) in rows {
            let got = text
                .parse::<FlagDuration>()
                .ok()
                .map(|d| d.0.as_millis() as u64);
            assert_eq!(got, want, "{text:?}");
        }
        let refused = "10x".parse::<FlagDuration>().unwrap_err();
        assert!(refused.contains("30s, 500ms, 5m"), "{refused}");
    }

    #[test]
    fn defaults_display_in_units_and_parse_back() {
        for seconds in [5, 60, 300, 5400] {
            let d = FlagDuration(Duration::from_secs(seconds));
            assert_eq!(d.to_string().parse::<FlagDuration>().unwrap(), d);
        }
        assert_eq!(FlagDuration(Duration::from_secs(300)).to_string(), "5m");
    }
}
