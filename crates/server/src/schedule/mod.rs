//! Scheduled prompts' time rules (docs/protocol.md §4.4), as real Letta Code applies them: the
//! cron dialect (five numeric fields, matched in the task's time zone), the jitter that spreads
//! a task's fires, and the text a firing task prompts the agent with. The scheduler that uses
//! them is the engine's; the time it goes by is a [`Clock`].

mod clock;

pub use clock::{Clock, ManualClock};

use std::str::FromStr;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The scheduled tasks' shared state: the clock, and a lock that makes each change of a task
/// (a command's, or a fire's bookkeeping) whole.
pub struct Crons {
    /// The time the scheduler goes by.
    pub clock: Clock,
    changing: tokio::sync::Mutex<()>,
}

impl Crons {
    /// The scheduled tasks, going by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Held while a task is read, changed and written.
    pub async fn changing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changing.lock().await
    }
}

/// A task's cron expression, checked as real Letta checks it.
#[derive(Debug, Clone)]
pub struct Expression {
    cron: Cron,
}

impl Expression {
    /// Parses `text`: exactly five fields (minute, hour, day of month, month, day of week) of
    /// digits, `*`, `,`, `-` and `/` (no names, `?`, `L`, `#` nor macros; a step only after `*`
    /// or a range). A day-of-month or month step `*/S` means the values divisible by `S`, as in
    /// real Letta (`*/3` days: 3, 6, …, 30). `None` when it is not such an expression.
    pub fn parse(text: &str) -> Option<Self> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 || !text.chars().all(|c| c.is_ascii_digit() || " \t*,-/".contains(c)) {
            return None;
        }
        let mut rewritten = Vec::with_capacity(5);
        for (index, field) in fields.iter().enumerate() {
            let mut parts = Vec::new();
            for part in field.split(',') {
                if let Some((base, _)) = part.split_once('/')
                    && !base.is_empty()
                    && base != "*"
                    && !base.contains('-')
                {
                    return None;
                }
                let range = match index {
                    2 => Some(1..=31u32),
                    3 => Some(1..=12),
                    _ => None,
                };
                match (part.strip_prefix("*/"), range) {
                    (Some(step), Some(range)) => {
                        let step: u32 = step.parse().ok().filter(|&step| step > 0)?;
                        let values: Vec<String> = range.filter(|v| v % step == 0).map(|v| v.to_string()).collect();
                        if values.is_empty() {
                            return None;
                        }
                        parts.push(values.join(","));
                    }
                    _ => parts.push(part.to_owned()),
                }
            }
            rewritten.push(parts.join(","));
        }
        let cron = Cron::from_str(&rewritten.join(" ")).ok()?;
        Some(Self { cron })
    }

    /// Whether the minute of `at`, read on the clocks of `zone`, matches.
    pub fn matches(&self, at: Timestamp, zone: &TimeZone) -> bool {
        let minute = at.to_zoned(zone.clone()).datetime();
        let minute = minute.with().second(0).subsec_nanosecond(0).build().unwrap_or(minute);
        self.cron.is_time_matching(&minute).unwrap_or(false)
    }
}

/// The time zone a task names: `None` for an empty or unknown name (its fires then go by the
/// server's own zone, as on real Letta).
pub fn zone(name: &str) -> Option<TimeZone> {
    (!name.is_empty()).then(|| TimeZone::get(name).ok()).flatten()
}

/// The name of the server's own time zone (`UTC` when it has none): a task's default.
pub fn local_zone_name() -> String {
    TimeZone::system().iana_name().unwrap_or("UTC").to_owned()
}

/// How far a task's fires are moved, in milliseconds, as real Letta computes it from the task
/// id: a recurring task up to a tenth of its period later (at most 59,999 ms; none when the
/// period is not a simple one); a one-off task set for minute 0 or 30 of an hour up to 90 s
/// earlier, never before it was created.
pub fn jitter_ms(id: &str, recurring: bool, cron: &str, scheduled_for: Option<Timestamp>, created: Timestamp) -> i64 {
    let hash = i64::from(java_hash(id).unsigned_abs());
    if recurring {
        let window = (period_ms(cron) as f64 * 0.1).min(59_999.0).floor() as i64;
        return if window <= 0 { 0 } else { hash % window.max(1) };
    }
    let Some(at) = scheduled_for else { return 0 };
    let minute = at.to_zoned(TimeZone::system()).minute();
    if minute != 0 && minute != 30 {
        return 0;
    }
    let offset = -(hash % 90_000);
    if at.as_millisecond() + offset < created.as_millisecond() {
        0
    } else {
        offset
    }
}

/// Java's `String.hashCode` over UTF-16 units (real Letta's jitter seed).
fn java_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_shl(5).wrapping_sub(hash).wrapping_add(i32::from(unit))
    })
}

/// The period of the simple schedules real Letta recognises, in milliseconds: `*/N * * * *`
/// (N minutes), `M */H * * *` (H hours), `M H * * *` (a day); 0 for any other.
fn period_ms(cron: &str) -> u64 {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [minute, hour, "*", "*", "*"] = fields.as_slice() else {
        return 0;
    };
    const MINUTE: u64 = 60_000;
    if *hour == "*" {
        return minute
            .strip_prefix("*/")
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |n| n * MINUTE);
    }
    if minute.starts_with('*') {
        return 0;
    }
    if let Some(hours) = hour.strip_prefix("*/") {
        return hours.parse::<u64>().map_or(0, |h| h * 60 * MINUTE);
    }
    if hour.contains('*') { 0 } else { 24 * 60 * MINUTE }
}

/// What a firing task tells the agent.
pub struct Firing<'a> {
    /// The task's name.
    pub name: &'a str,
    /// Its description (left out when empty).
    pub description: &'a str,
    /// Its time zone's name, as stored.
    pub timezone: &'a str,
    /// Its cron expression.
    pub cron: &'a str,
    /// Its prompt.
    pub prompt: &'a str,
    /// Which fire this is (from 1), for a recurring task; `None` for a one-off one.
    pub fire_number: Option<u64>,
    /// The time it was meant to fire.
    pub scheduled: Timestamp,
    /// The time it fires.
    pub now: Timestamp,
}

impl Firing<'_> {
    /// The prompt text of the `cron_prompt` queue item, as real Letta words it.
    pub fn text(&self) -> String {
        let zone = zone(self.timezone);
        let shown = zone.clone().unwrap_or_else(TimeZone::system);
        let mut lines = vec![format!("Scheduled task \"{}\" is firing.", self.name)];
        if !self.description.is_empty() {
            lines.push(format!("Description: {}", self.description));
        }
        lines.push(match (self.timezone, &zone) {
            ("", _) => "Timezone: local time".to_owned(),
            (name, Some(_)) => format!("Timezone: {name}"),
            (name, None) => format!("Timezone: {name} (invalid; using local time)"),
        });
        lines.push(format!(
            "Scheduled for: {}",
            zoned_iso(self.scheduled.to_zoned(shown.clone()))
        ));
        lines.push(format!("Current time: {}", zoned_iso(self.now.to_zoned(shown))));
        lines.push(match self.fire_number {
            Some(n) => format!("This is fire #{n} (cron: {}).", self.cron),
            None => "This is a one-off scheduled task.".to_owned(),
        });
        lines.push(String::new());
        lines.push(
            "You are running autonomously: no user is watching this turn and questions will not be \
             answered. Deliver results through your available channels or record them in memory, and \
             work until the task is done or genuinely blocked."
                .to_owned(),
        );
        lines.push(String::new());
        lines.push(format!("Prompt: {}", self.prompt));
        lines.join("\n")
    }
}

/// `2026-12-04T09:00:00.000+01:00[Europe/Paris]`.
fn zoned_iso(at: Zoned) -> String {
    let name = at.time_zone().iana_name().unwrap_or("local").to_owned();
    format!("{}[{name}]", at.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_dialect_is_five_numeric_fields() {
        for good in [
            "* * * * *",
            "*/5 * * * *",
            "0 9 * * 1-5",
            "30 8 1,15 * *",
            "0 0 */3 */2 7",
            "0-30/10 * * * *",
        ] {
            assert!(Expression::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "0 9 * * MON",
            "@daily",
            "0 9 ? * *",
            "5/10 * * * *",
            "61 * * * *",
            "0 0 */40 * *",
            "0 0 */0 * *",
        ] {
            assert!(Expression::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn expressions_match_on_the_tasks_clock() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let nine_weekdays = Expression::parse("0 9 * * 1-5").unwrap();
        // Friday 2026-12-04, 08:00 UTC is 09:00 in Paris.
        assert!(nine_weekdays.matches(at("2026-12-04T08:00:42Z"), &paris));
        assert!(!nine_weekdays.matches(at("2026-12-04T09:00:00Z"), &paris));
        assert!(!nine_weekdays.matches(at("2026-12-05T08:00:00Z"), &paris), "a Saturday");
        let every_third_day = Expression::parse("0 0 */3 * *").unwrap();
        assert!(every_third_day.matches(at("2026-12-03T00:00:00Z"), &TimeZone::UTC));
        assert!(!every_third_day.matches(at("2026-12-01T00:00:00Z"), &TimeZone::UTC));
    }

    #[test]
    fn jitter_follows_the_period_and_the_id() {
        let created = at("2026-12-04T00:00:00Z");
        assert_eq!(java_hash("abc"), 96354);
        assert_eq!(jitter_ms("abc", true, "*/5 * * * *", None, created), 96354 % 30_000);
        assert_eq!(jitter_ms("abc", true, "0 9 * * *", None, created), 96354 % 59_999);
        assert_eq!(
            jitter_ms("abc", true, "0 9 * * 1-5", None, created),
            0,
            "not a simple period"
        );
        assert_eq!(jitter_ms("abc", true, "* * * * *", None, created), 0);
        assert_eq!(jitter_ms("abc", false, "* * * * *", None, created), 0);
    }

    #[test]
    fn a_firing_prompt_says_what_when_and_why() {
        let firing = Firing {
            name: "Standup",
            description: "Daily notes",
            timezone: "Europe/Paris",
            cron: "0 9 * * *",
            prompt: "Summarise yesterday.",
            fire_number: Some(3),
            scheduled: at("2026-12-04T08:00:00Z"),
            now: at("2026-12-04T08:00:12.5Z"),
        };
        assert_eq!(
            firing.text(),
            "Scheduled task \"Standup\" is firing.\nDescription: Daily notes\nTimezone: Europe/Paris\n\
             Scheduled for: 2026-12-04T09:00:00.000+01:00[Europe/Paris]\n\
             Current time: 2026-12-04T09:00:12.500+01:00[Europe/Paris]\nThis is fire #3 (cron: 0 9 * * *).\n\n\
             You are running autonomously: no user is watching this turn and questions will not be answered. \
             Deliver results through your available channels or record them in memory, and work until the task \
             is done or genuinely blocked.\n\nPrompt: Summarise yesterday."
        );
    }
}
