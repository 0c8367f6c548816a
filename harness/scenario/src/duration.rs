//! Durations as scenario files write them: `500ms`, `90s`, `2m`, `1m30s`, `1h`.

use std::time::Duration;

/// The grammar, for the JSON Schema: one or more `<digits><unit>` parts with
/// units in decreasing order (h, m, s, ms), each at most once.
pub const DURATION_PATTERN: &str = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$";

const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parse a duration; the error says what is wrong and what to write instead.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str =
        "write a number with a unit and no spaces, like `500ms`, `90s`, `2m` or `1m30s`";
    if text.is_empty() {
        return Err(format!("empty duration: {HINT}"));
    }
    if text.contains(char::is_whitespace) {
        let joined: String = text.split_whitespace().collect();
        return Err(format!(
            "duration `{text}` contains spaces: write it without them, like `{joined}`"
        ));
    }
    let bytes = text.as_bytes();
    let mut position = 0;
    let mut next_unit = 0; // index into UNITS: units must come in decreasing order
    let mut total_ms: u64 = 0;
    while position < bytes.len() {
        let digits_start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        if position == digits_start {
            return Err(format!("invalid duration `{text}`: {HINT}"));
        }
        let digits = &text[digits_start..position];
        let unit_start = position;
        while position < bytes.len() && !bytes[position].is_ascii_digit() {
            position += 1;
        }
        let unit = &text[unit_start..position];
        if unit.is_empty() {
            return Err(format!("duration `{text}` has no unit: {HINT}"));
        }
        if unit == "." {
            return Err(format!(
                "invalid duration `{text}`: fractions are not supported, use a smaller unit (`1500ms`, not `1.5s`)"
            ));
        }
        let Some(offset) = UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)
        else {
            return Err(if UNITS.iter().any(|(name, _)| *name == unit) {
                format!(
                    "invalid duration `{text}`: units must go from largest to smallest, each once (h, m, s, ms)"
                )
            } else {
                format!("unknown unit `{unit}` in duration `{text}`: use h, m, s or ms")
            });
        };
        let index = next_unit + offset;
        next_unit = index + 1;
        let too_large = || format!("duration `{text}` is too large");
        let amount: u64 = digits.parse().map_err(|_| too_large())?;
        let part = amount.checked_mul(UNITS[index].1).ok_or_else(too_large)?;
        total_ms = total_ms.checked_add(part).ok_or_else(too_large)?;
    }
    if total_ms == 0 {
        return Err(format!(
            "duration `{text}` is zero: give it a length, like `30s`"
        ));
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_contract_forms() {
        let table: &[(&str, u64)] = &[
            ("500ms", 500),
            ("90s", 90_000),
            ("2m", 120_000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1h2m3s4ms", 3_723_004),
            ("0m5s", 5_000),
            ("007s", 7_000),
        ];
        for (text, millis) in table {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(*millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let table: &[(&str, &str)] = &[
            ("5", "has no unit"),
            ("5 m", "contains spaces: write it without them, like `5m`"),
            ("-1s", "invalid duration"),
            ("1x", "unknown unit `x`"),
            ("", "empty duration"),
            ("m", "invalid duration"),
            ("1.5s", "fractions are not supported"),
            ("30s1m", "largest to smallest"),
            ("1s1s", "largest to smallest"),
            ("1S", "unknown unit `S`"),
            ("0s", "is zero"),
            ("99999999999999999999s", "too large"),
            ("9999999999999999h", "too large"),
            (" 5s", "contains spaces"),
            ("5s ", "contains spaces"),
            ("5s\t", "contains spaces"),
            ("1_000ms", "unknown unit `_`"),
        ];
        for (text, reason) in table {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn pattern_agrees_with_the_parser_on_shape() {
        // The schema pattern is a simplified copy; keep both in step by
        // checking the unit order they describe is the same.
        let units_in_pattern: Vec<&str> = DURATION_PATTERN
            .split("([0-9]+")
            .skip(1)
            .map(|part| part.split(')').next().unwrap_or(""))
            .collect();
        let units: Vec<&str> = UNITS.iter().map(|(name, _)| *name).collect();
        assert_eq!(units_in_pattern, units);
    }
}
