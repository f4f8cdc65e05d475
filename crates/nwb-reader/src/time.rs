//! Time arithmetic of the spec ("Time base"): ISO 8601 reference times, rate inference, gaps.

/// The file's reference time: `timestamps_reference_time`, else `session_start_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReferenceTime {
    /// The stored text, trimmed.
    pub text: String,
    /// Whole microseconds since the Unix epoch (finer digits truncated).
    pub epoch_micros: i64,
}

impl ReferenceTime {
    /// Seconds since the epoch as the spec computes them: the microseconds divided by 1e6.
    pub fn seconds(&self) -> f64 {
        self.epoch_micros as f64 / 1e6
    }
}

/// Parses every ISO 8601 form NWB writers produce (nwb-layout.md §7): extended or basic format,
/// `T` or space separator, fractions of any length (truncated to µs), offsets `Z`, `±HH`, `±HHMM`,
/// `±HH:MM`, `±HH:MM:SS`; no offset means UTC and a date alone means midnight UTC.
/// Returns whole microseconds since the Unix epoch, or a description of what is wrong.
pub fn parse_iso8601_micros(text: &str) -> Result<i64, String> {
    let s = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let mut p = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let year = p.digits(4).ok_or("expected a 4-digit year")? as i64;
    let extended = p.eat(b'-');
    let month = p.digits(2).ok_or("expected a 2-digit month")?;
    if extended && !p.eat(b'-') {
        return Err("expected '-' between month and day".into());
    }
    let day = p.digits(2).ok_or("expected a 2-digit day")?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("no such date {year:04}-{month:02}-{day:02}"));
    }
    let mut micros_of_day: i64 = 0;
    let mut offset_seconds: i64 = 0;
    if !p.done() {
        if !(p.eat(b'T') || p.eat(b't') || p.eat(b' ')) {
            return Err("expected 'T' or ' ' after the date".into());
        }
        let hour = p.digits(2).ok_or("expected a 2-digit hour")?;
        let colon = p.eat(b':');
        let minute = p.digits(2).ok_or("expected 2-digit minutes")?;
        let mut second = 0;
        if (colon && p.eat(b':')) || (!colon && p.peek_digit()) {
            second = p.digits(2).ok_or("expected 2-digit seconds")?;
        }
        if hour > 24 || minute > 59 || second > 60 {
            return Err(format!("no such time {hour:02}:{minute:02}:{second:02}"));
        }
        let mut frac_micros = 0i64;
        if p.eat(b'.') || p.eat(b',') {
            let mut digits = 0;
            while p.peek_digit() {
                let d = (p.s[p.i] - b'0') as i64;
                if digits < 6 {
                    frac_micros = frac_micros * 10 + d;
                }
                digits += 1;
                p.i += 1;
            }
            if digits == 0 {
                return Err("expected digits after the decimal point".into());
            }
            for _ in digits..6 {
                frac_micros *= 10;
            }
        }
        micros_of_day =
            ((hour as i64 * 60 + minute as i64) * 60 + second as i64) * 1_000_000 + frac_micros;
        if !p.done() {
            if p.eat(b'Z') || p.eat(b'z') {
            } else if let Some(sign) = p.sign() {
                let oh = p.digits(2).ok_or("expected 2-digit offset hours")? as i64;
                let colon = p.eat(b':');
                let om = if p.peek_digit() {
                    p.digits(2).ok_or("bad offset minutes")? as i64
                } else {
                    0
                };
                let os = if (colon && p.eat(b':')) || (!colon && p.peek_digit()) {
                    p.digits(2).ok_or("bad offset seconds")? as i64
                } else {
                    0
                };
                if oh > 23 || om > 59 || os > 59 {
                    return Err("offset out of range".into());
                }
                offset_seconds = sign * (oh * 3600 + om * 60 + os);
            } else {
                return Err("expected 'Z' or an offset like +02:00 after the time".into());
            }
        }
    }
    if !p.done() {
        return Err(format!("unexpected text {:?} at the end", &s[p.i..]));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400_000_000 + micros_of_day - offset_seconds * 1_000_000)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek_digit(&self) -> bool {
        self.s.get(self.i).is_some_and(u8::is_ascii_digit)
    }
    fn sign(&mut self) -> Option<i64> {
        if self.eat(b'+') {
            Some(1)
        } else if self.eat(b'-') {
            Some(-1)
        } else {
            None
        }
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.s.get(self.i..self.i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(part.iter().fold(0, |acc, d| acc * 10 + (d - b'0') as u32))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The rate the spec infers from explicit times: `1 / median` of the successive differences of
/// the first `min(10, n)` absolute times (mean of the middle two for an even count), not rounded.
/// `None` when fewer than two times are given.
pub(crate) fn infer_rate(first_times: &[f64]) -> Option<f64> {
    let times = &first_times[..first_times.len().min(10)];
    if times.len() < 2 {
        return None;
    }
    let mut diffs: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    diffs.sort_by(f64::total_cmp);
    let mid = diffs.len() / 2;
    // `is_multiple_of` needs Rust 1.87; the MSRV is 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    let median = if diffs.len() % 2 == 0 {
        (diffs[mid - 1] + diffs[mid]) / 2.0
    } else {
        diffs[mid]
    };
    Some(1.0 / median)
}

/// The rate used when only timestamps are given: [`infer_rate`] rounded half to even.
pub(crate) fn rounded_rate(inferred: f64) -> f64 {
    inferred.round_ties_even()
}

/// The spec's 2 % check: the inferred rate lies within 2 % of the given one.
pub(crate) fn rates_agree(given: f64, inferred: f64) -> bool {
    (inferred - given).abs() <= 0.02 * given
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-03-15T07:30:00Z, worked out independently: 19797 days after 1970-01-01.
    const BASE: i64 = 19_797 * 86_400_000_000 + (7 * 3600 + 30 * 60) * 1_000_000;

    #[test]
    fn every_form_of_nwb_layout_section_7() {
        let cases = [
            ("2024-03-15T09:30:00.123456+02:00", BASE + 123_456),
            ("2024-03-15T07:30:00Z", BASE),
            ("2024-03-15T09:30:00.123+02:00", BASE + 123_000),
            ("2024-03-15T09:30:00.123456789+02:00", BASE + 123_456),
            ("2024-03-15T09:30:00+0200", BASE),
            ("2024-03-15T01:39:24-05:50:36", BASE),
            ("2024-03-15 09:30:00+00:00", BASE + 2 * 3_600_000_000),
            ("20240315T073000Z", BASE),
            ("2024-03-15T07:30:00", BASE),
            ("2024-03-15", BASE - (7 * 3600 + 30 * 60) * 1_000_000),
            ("2024-03-15T07:30:00Z\0\0\0\0", BASE),
            ("  2024-03-15T07:30:00Z  ", BASE),
            ("2024-03-15T09:30:00+02", BASE),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_iso8601_micros(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn dates_before_the_epoch_and_leap_days() {
        assert_eq!(parse_iso8601_micros("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_iso8601_micros("1969-12-31T23:59:59.5Z"), Ok(-500_000));
        assert_eq!(
            parse_iso8601_micros("2000-03-01"),
            Ok(11_017 * 86_400_000_000)
        );
        assert!(parse_iso8601_micros("2023-02-29").is_err());
    }

    #[test]
    fn malformed_times_say_why() {
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2024-03-15T25:00",
            "2024-03-15T09:30:00 UTC",
            "yesterday",
        ] {
            assert!(parse_iso8601_micros(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rate_is_one_over_the_median_difference() {
        // Odd number of differences: the middle one.
        assert_eq!(infer_rate(&[0.0, 0.001, 0.002, 0.0035]), Some(1.0 / 0.001));
        // Even number: mean of the middle two (0.001 and 0.003 -> 0.002).
        assert_eq!(
            infer_rate(&[0.0, 0.001, 0.002, 0.005, 0.009]),
            Some(1.0 / ((0.001 + 0.003) / 2.0))
        );
        // Only the first ten times count.
        let mut t: Vec<f64> = (0..10).map(|i| i as f64 * 0.5).collect();
        t.push(1000.0);
        assert_eq!(infer_rate(&t), Some(2.0));
        assert_eq!(infer_rate(&[1.0]), None);
    }

    #[test]
    fn inferred_rates_round_half_to_even() {
        // Period 0.4 s: 1 / 0.4 is exactly 2.5 in float64, which rounds to 2 (not 3).
        let r = infer_rate(&[0.0, 0.4, 0.8]).unwrap();
        assert_eq!(r, 2.5);
        assert_eq!(rounded_rate(r), 2.0);
        assert_eq!(rounded_rate(3.5), 4.0);
        assert_eq!(rounded_rate(29_999.7), 30_000.0);
        // Jittered 1 kHz clock: the median ignores one outlier difference.
        let t = [0.0, 0.001, 0.002, 0.0031, 0.004, 0.005];
        assert_eq!(rounded_rate(infer_rate(&t).unwrap()), 1000.0);
    }

    #[test]
    fn the_two_percent_check() {
        assert!(rates_agree(1000.0, 1019.9));
        assert!(rates_agree(1000.0, 980.5));
        assert!(!rates_agree(1000.0, 1020.1));
        assert!(!rates_agree(1000.0, 979.0));
    }

    proptest::proptest! {
        #[test]
        fn any_utc_timestamp_round_trips(secs in -2_000_000_000i64..4_000_000_000, micros in 0i64..1_000_000) {
            let days = secs.div_euclid(86_400);
            let sod = secs.rem_euclid(86_400);
            // civil_from_days, the inverse of days_from_civil.
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            let y = yoe + era * 400 + i64::from(m <= 2);
            let text = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", sod / 3600, sod / 60 % 60, sod % 60);
            proptest::prop_assume!((0..=9999).contains(&y));
            proptest::prop_assert_eq!(parse_iso8601_micros(&text), Ok(secs * 1_000_000 + micros));
        }
    }
}
