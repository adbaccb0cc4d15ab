//! Durations as users write them, in Go's format (`10s`, `1.5s`, `100ms`, `1h30m`): what
//! Istio's CRDs accept, and what meshd's own duration flags take.

use std::time::Duration;

/// Parses a duration; the error says what is wrong with it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        Err(format!(
            "{text:?} is not a duration ({why}; e.g. 10s, 1.5s, 100ms, 1h30m)"
        ))
    };
    if text.is_empty() {
        return bad("empty");
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return bad("expected a number");
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return bad("missing unit"),
            _ => return bad("unknown unit"),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("{text:?} is too large"))?
        };
        let mut nanos = whole
            .checked_mul(nanos_per_unit)
            .ok_or_else(|| format!("{text:?} is too large"))?;
        let mut scale = nanos_per_unit;
        for digit in fraction.chars().take(18) {
            scale /= 10;
            nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| format!("{text:?} is too large"))?;
        rest = next;
    }
    let secs =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| format!("{text:?} is too large"))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// A duration field that, when set, must be at least 1 ms (Istio's rule for timeouts and
/// intervals).
pub fn at_least_1ms(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(1) {
        return Err(format!("{text:?} is shorter than 1ms"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("10s", ms(10_000)),
            ("1.5s", ms(1_500)),
            ("100ms", ms(100)),
            ("1h30m", ms(5_400_000)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("250us", Duration::from_micros(250)),
            (".5s", ms(500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_what_istio_rejects() {
        for text in ["", "10", "s", "1.2.3s", "5 s", "-1s", "1d", "1e3s"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(&format!("{text:?}")), "{err}");
        }
        assert!(at_least_1ms("0s").unwrap_err().contains("shorter than 1ms"));
        assert_eq!(at_least_1ms("1ms"), Ok(Duration::from_millis(1)));
    }
}
