//! When a hunt may start: its asset's `Schedule`, parsed and checked (the pack checks it as it
//! loads; the lifecycle asks it whether a start is due).

use crate::model::assets::Schedule;

/// When a hunt may start, parsed from its asset's `Schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Manual,
    /// Once, at this moment (ms since the epoch).
    At(i64),
    /// Daily, from this minute of the (UTC) day, for this many minutes.
    Daily {
        minute: u32,
        minutes: u32,
    },
}

impl Start {
    /// Parses a hunt's `Schedule`; the error says what is expected.
    pub fn parse(schedule: &Schedule) -> Result<Start, String> {
        match schedule {
            Schedule::Manual => Ok(Start::Manual),
            Schedule::At(text) => text.parse::<jiff::Timestamp>().map(|t| Start::At(t.as_millisecond())).map_err(|e| {
                format!(
                    "{text:?} is not a date and time: expected RFC 3339 in UTC, like \"2026-12-24T20:00:00Z\" ({e})"
                )
            }),
            Schedule::Daily(window) => {
                let minute = window
                    .at
                    .split_once(':')
                    .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
                    .filter(|(h, m)| *h < 24 && *m < 60 && window.at.len() == 5)
                    .map(|(h, m)| h * 60 + m)
                    .ok_or_else(|| {
                        format!("{:?} is not a time of day: expected HH:MM (UTC), like \"20:00\"", window.at)
                    })?;
                if window.minutes == 0 || window.minutes > 24 * 60 {
                    return Err(format!("Minutes is {}: expected 1 to 1440 (a window within a day)", window.minutes));
                }
                Ok(Start::Daily { minute, minutes: window.minutes })
            }
        }
    }

    /// The window containing `now` in which a scheduled start is due: (opens, closes), in ms.
    /// `duration_ms` bounds a one-off start's window; without it the window stays open.
    pub fn window_at(self, now: i64, duration_ms: Option<i64>) -> Option<(i64, Option<i64>)> {
        const DAY: i64 = 86_400_000;
        match self {
            Start::Manual => None,
            Start::At(at) => {
                let closes = duration_ms.map(|d| at + d);
                (now >= at && closes.is_none_or(|c| now < c)).then_some((at, closes))
            }
            Start::Daily { minute, minutes } => {
                let opens_today = now.div_euclid(DAY) * DAY + i64::from(minute) * 60_000;
                // A window that began yesterday may still be open just after midnight.
                [opens_today, opens_today - DAY].into_iter().find_map(|opens| {
                    let closes = opens + i64::from(minutes) * 60_000;
                    (now >= opens && now < closes).then_some((opens, Some(closes)))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::assets::DailyWindow;

    const DAY: i64 = 86_400_000;

    #[test]
    fn schedules_parse_with_clear_errors() {
        assert_eq!(Start::parse(&Schedule::At("1970-01-02T00:00:00Z".into())), Ok(Start::At(DAY)));
        let daily = |at: &str, minutes| Start::parse(&Schedule::Daily(DailyWindow { at: at.into(), minutes }));
        assert_eq!(daily("20:30", 30), Ok(Start::Daily { minute: 20 * 60 + 30, minutes: 30 }));
        assert!(daily("8pm", 30).unwrap_err().contains("expected HH:MM"));
        assert!(daily("24:00", 30).unwrap_err().contains("expected HH:MM"));
        assert!(daily("20:00", 0).unwrap_err().contains("expected 1 to 1440"));
        assert!(Start::parse(&Schedule::At("tomorrow".into())).unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn windows_open_and_close() {
        let daily = Start::Daily { minute: 23 * 60 + 50, minutes: 20 };
        let opens = 5 * DAY + (23 * 60 + 50) * 60_000;
        assert_eq!(daily.window_at(opens - 1, None), None);
        assert_eq!(daily.window_at(opens, None), Some((opens, Some(opens + 20 * 60_000))));
        assert_eq!(
            daily.window_at(6 * DAY + 5 * 60_000, None),
            Some((opens, Some(opens + 20 * 60_000))),
            "past midnight"
        );
        assert_eq!(daily.window_at(opens + 20 * 60_000, None), None);
        assert_eq!(Start::At(DAY).window_at(DAY + 1, Some(1000)), Some((DAY, Some(DAY + 1000))));
        assert_eq!(Start::At(DAY).window_at(DAY + 1000, Some(1000)), None);
        assert_eq!(Start::At(DAY).window_at(10 * DAY, None), Some((DAY, None)), "no duration: open until started");
        assert_eq!(Start::Manual.window_at(DAY, None), None);
    }
}
