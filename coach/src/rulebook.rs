//! The TOML rule book: defaults embedded in the binary (from the service standards), a site's
//! own file layered over nothing (it is complete or it is rejected), and a checker that points
//! at the line and field of every mistake.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rule_id::RuleId;

use crate::warning::Severity;

/// The default rule book, embedded (see `coach/src/default_rules.toml`).
pub const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// Warn (shown) or log (trial: report only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Warn,
    Log,
}

/// A rule book problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `rules.rate.max_cpm`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}: {}",
            self.line, self.column, self.field, self.message
        )
    }
}

/// Errors of loading a rule book.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleBookError {
    #[error("{path}: cannot read the rule book: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: {} problem(s) in the rule book (run `callcoach rules --check {path}`):\n{}", .problems.len(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

macro_rules! common {
    ($name:ident { $($(#[$m:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub enabled: bool,
            pub mode: Mode,
            pub severity: Severity,
            pub cooldown_s: f64,
            /// Caller phrases that excuse this rule for the rest of the call.
            #[serde(default)]
            pub excused_by: Vec<String>,
            $($(#[$m])* pub $field: $ty,)*
        }

        impl RuleCommon for $name {
            fn enabled(&self) -> bool {
                self.enabled
            }
            fn mode(&self) -> Mode {
                self.mode
            }
            fn severity(&self) -> Severity {
                self.severity
            }
            fn cooldown_s(&self) -> f64 {
                self.cooldown_s
            }
            fn excused_by(&self) -> &[String] {
                &self.excused_by
            }
        }
    };
}

/// The keys every rule has.
pub trait RuleCommon {
    fn enabled(&self) -> bool;
    fn mode(&self) -> Mode;
    fn severity(&self) -> Severity;
    fn cooldown_s(&self) -> f64;
    fn excused_by(&self) -> &[String];
}

impl Rules {
    /// The common keys of rule `id`.
    pub fn rule(&self, id: RuleId) -> &dyn RuleCommon {
        match id {
            RuleId::Rate => &self.rate,
            RuleId::Volume => &self.volume,
            RuleId::Gradual => &self.gradual,
            RuleId::SilentCaller => &self.silent_caller,
            RuleId::WeakCaller => &self.weak_caller,
            RuleId::NoisyCaller => &self.noisy_caller,
            RuleId::Hold => &self.hold,
            RuleId::DeadAir => &self.dead_air,
            RuleId::Interrupt => &self.interrupt,
            RuleId::Greeting => &self.greeting,
            RuleId::Forbidden => &self.forbidden,
            RuleId::Polite => &self.polite,
            RuleId::Closing => &self.closing,
            RuleId::Abusive => &self.abusive,
        }
    }

    /// The common keys of the rule named `id` (see [`RULE_IDS`]); `None` for an unknown name.
    pub fn common(&self, id: &str) -> Option<&dyn RuleCommon> {
        RuleId::parse(id).map(|r| self.rule(r))
    }
}

/// Per-agent override of the speech-rate band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateBand {
    pub min_cpm: f64,
    pub max_cpm: f64,
}

common!(RateRule { min_cpm: f64, max_cpm: f64, window_s: f64, min_speech_s: f64, sustain_s: f64,
    excuse_too_fast: Vec<String>, excuse_too_slow: Vec<String>, line_too_fast: String, line_too_slow: String,
    #[serde(default)] agents: BTreeMap<String, RateBand> });
common!(VolumeRule {
    min_lufs: f64,
    max_lufs: f64,
    sustain_s: f64,
    line_too_quiet: String,
    line_too_loud: String
});
common!(GradualRule {
    min_rise_db: f64,
    line: String
});
common!(SilentCallerRule {
    caller_silent_s: f64,
    repeat_after_s: f64,
    closing_after_s: f64,
    hangup_after_s: f64,
    opening_line: String,
    closing_line: String
});
common!(WeakCallerRule {
    max_caller_lufs: f64,
    sustain_s: f64,
    line: String
});
common!(NoisyCallerRule {
    min_snr_db: f64,
    max_noise_dbfs: f64,
    sustain_s: f64,
    line: String
});
common!(HoldRule { interact_every_s: f64, alarm_s: Vec<f64>, thank_within_s: f64, thank_phrases: Vec<String>,
    line_interact: String, line_alarm: String, line_thank: String });
common!(DeadAirRule {
    max_silence_s: f64,
    line: String
});
common!(InterruptRule {
    min_overlap_s: f64,
    line: String
});
common!(GreetingRule { within_s: f64, must_include: Vec<String>, holiday_phrases: Vec<String>, line: String });
common!(ForbiddenRule { line: String, categories: BTreeMap<String, Vec<String>> });
common!(PoliteRule { words: Vec<String> });
common!(ClosingRule { last_s: f64, confirm_phrases: Vec<String>, goodbye_phrases: Vec<String>, caller_hangs_up_first: bool, line: String,
    /// Words that confirm the caller's request (the call-flow checklist's second step).
    #[serde(default)] request_phrases: Vec<String> });
common!(AbusiveRule { words: Vec<String>, reminder_phrases: Vec<String>, reminders_before_end: u32, reminder_line: String, end_line: String });

/// All rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub rate: RateRule,
    pub volume: VolumeRule,
    pub gradual: GradualRule,
    pub silent_caller: SilentCallerRule,
    pub weak_caller: WeakCallerRule,
    pub noisy_caller: NoisyCallerRule,
    pub hold: HoldRule,
    pub dead_air: DeadAirRule,
    pub interrupt: InterruptRule,
    pub greeting: GreetingRule,
    pub forbidden: ForbiddenRule,
    pub polite: PoliteRule,
    pub closing: ClosingRule,
    pub abusive: AbusiveRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub company: String,
    pub max_warnings_per_minute: u32,
    pub holidays: Vec<String>,
    pub call_date: String,
    pub phrase_tolerance: usize,
}

/// A complete, validated rule book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBook {
    pub settings: Settings,
    pub rules: Rules,
}

/// Rule names, in rule-book order (see [`RuleId`]).
pub const RULE_IDS: [&str; 14] = {
    let mut names = [""; 14];
    let mut i = 0;
    while i < 14 {
        names[i] = RuleId::ALL[i].as_str();
        i += 1;
    }
    names
};

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Str,
    Num(f64, f64),
    Int(i64, i64),
    StrList,
    NumList(f64, f64),
    Mode,
    Severity,
    /// Table of string lists (forbidden categories).
    Categories,
    /// Table of rate bands (per agent).
    Agents,
}

const COMMON: [(&str, Kind); 5] = [
    ("enabled", Kind::Bool),
    ("mode", Kind::Mode),
    ("severity", Kind::Severity),
    ("cooldown_s", Kind::Num(0.0, 3600.0)),
    ("excused_by", Kind::StrList),
];

/// Fields that may be left out.
const OPTIONAL: [&str; 3] = ["excused_by", "agents", "request_phrases"];

fn schema(rule: &str) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match rule {
        "rate" => &[
            ("min_cpm", Num(30.0, 400.0)),
            ("max_cpm", Num(30.0, 600.0)),
            ("window_s", Num(3.0, 120.0)),
            ("min_speech_s", Num(1.0, 60.0)),
            ("sustain_s", Num(0.0, 120.0)),
            ("excuse_too_fast", StrList),
            ("excuse_too_slow", StrList),
            ("line_too_fast", Str),
            ("line_too_slow", Str),
            ("agents", Agents),
        ],
        "volume" => &[
            ("min_lufs", Num(-70.0, 0.0)),
            ("max_lufs", Num(-70.0, 0.0)),
            ("sustain_s", Num(0.0, 120.0)),
            ("line_too_quiet", Str),
            ("line_too_loud", Str),
        ],
        "gradual" => &[("min_rise_db", Num(1.0, 40.0)), ("line", Str)],
        "silent_caller" => &[
            ("caller_silent_s", Num(0.5, 60.0)),
            ("repeat_after_s", Num(0.5, 60.0)),
            ("closing_after_s", Num(0.5, 60.0)),
            ("hangup_after_s", Num(0.5, 60.0)),
            ("opening_line", Str),
            ("closing_line", Str),
        ],
        "weak_caller" => &[
            ("max_caller_lufs", Num(-80.0, 0.0)),
            ("sustain_s", Num(0.0, 120.0)),
            ("line", Str),
        ],
        "noisy_caller" => &[
            ("min_snr_db", Num(0.0, 60.0)),
            ("max_noise_dbfs", Num(-100.0, 0.0)),
            ("sustain_s", Num(0.0, 120.0)),
            ("line", Str),
        ],
        "hold" => &[
            ("interact_every_s", Num(5.0, 600.0)),
            ("alarm_s", NumList(5.0, 3600.0)),
            ("thank_within_s", Num(1.0, 120.0)),
            ("thank_phrases", StrList),
            ("line_interact", Str),
            ("line_alarm", Str),
            ("line_thank", Str),
        ],
        "dead_air" => &[("max_silence_s", Num(1.0, 600.0)), ("line", Str)],
        "interrupt" => &[("min_overlap_s", Num(0.1, 10.0)), ("line", Str)],
        "greeting" => &[
            ("within_s", Num(1.0, 120.0)),
            ("must_include", StrList),
            ("holiday_phrases", StrList),
            ("line", Str),
        ],
        "forbidden" => &[("line", Str), ("categories", Categories)],
        "polite" => &[("words", StrList)],
        "closing" => &[
            ("last_s", Num(1.0, 600.0)),
            ("confirm_phrases", StrList),
            ("goodbye_phrases", StrList),
            ("request_phrases", StrList),
            ("caller_hangs_up_first", Bool),
            ("line", Str),
        ],
        "abusive" => &[
            ("words", StrList),
            ("reminder_phrases", StrList),
            ("reminders_before_end", Int(0, 20)),
            ("reminder_line", Str),
            ("end_line", Str),
        ],
        _ => &[],
    }
}

const SETTINGS: [(&str, Kind); 5] = [
    ("company", Kind::Str),
    ("max_warnings_per_minute", Kind::Int(1, 120)),
    ("holidays", Kind::StrList),
    ("call_date", Kind::Str),
    ("phrase_tolerance", Kind::Int(0, 4)),
];

struct Checker<'a> {
    source: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&mut self, span: Option<std::ops::Range<usize>>, field: &str, message: String) {
        let offset = span.map(|s| s.start).unwrap_or(0).min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        self.problems.push(Problem {
            line,
            column,
            field: field.to_string(),
            message,
        });
    }

    fn value(&mut self, item: &toml_edit::Item, kind: Kind, field: &str) {
        use toml_edit::Value as V;
        let span = item.span();
        let v = item.as_value();
        let num = |v: Option<&V>| match v {
            Some(V::Float(f)) => Some(*f.value()),
            Some(V::Integer(i)) => Some(*i.value() as f64),
            _ => None,
        };
        match kind {
            Kind::Bool => {
                if !matches!(v, Some(V::Boolean(_))) {
                    self.at(span, field, "expected true or false".into());
                }
            }
            Kind::Str => {
                if !matches!(v, Some(V::String(_))) {
                    self.at(span, field, "expected a string in quotes".into());
                }
            }
            Kind::Mode => match v.and_then(V::as_str) {
                Some("warn" | "log") => {}
                _ => self.at(span, field, "expected \"warn\" or \"log\"".into()),
            },
            Kind::Severity => match v.and_then(V::as_str) {
                Some("info" | "warning" | "critical") => {}
                _ => self.at(
                    span,
                    field,
                    "expected \"info\", \"warning\" or \"critical\"".into(),
                ),
            },
            Kind::Num(lo, hi) => match num(v) {
                Some(x) if (lo..=hi).contains(&x) => {}
                Some(x) => self.at(span, field, format!("{x} is out of range {lo} to {hi}")),
                None => self.at(span, field, "expected a number".into()),
            },
            Kind::Int(lo, hi) => match v.and_then(V::as_integer) {
                Some(x) if (lo..=hi).contains(&x) => {}
                Some(x) => self.at(span, field, format!("{x} is out of range {lo} to {hi}")),
                None => self.at(span, field, "expected a whole number".into()),
            },
            Kind::StrList => match v.and_then(V::as_array) {
                Some(a) => {
                    for x in a.iter() {
                        if x.as_str().is_none() {
                            self.at(x.span(), field, "expected a list of strings".into());
                        }
                    }
                }
                None => self.at(
                    span,
                    field,
                    "expected a list of strings, e.g. [\"您好\"]".into(),
                ),
            },
            Kind::NumList(lo, hi) => match v.and_then(V::as_array) {
                Some(a) => {
                    for x in a.iter() {
                        match num(Some(x)) {
                            Some(n) if (lo..=hi).contains(&n) => {}
                            _ => self.at(
                                x.span(),
                                field,
                                format!("expected numbers from {lo} to {hi}"),
                            ),
                        }
                    }
                }
                None => self.at(span, field, "expected a list of numbers".into()),
            },
            Kind::Categories => match item.as_table_like() {
                Some(t) => {
                    for (name, list) in t.iter() {
                        self.value(list, Kind::StrList, &format!("{field}.{name}"));
                    }
                }
                None => self.at(span, field, "expected a table of phrase lists".into()),
            },
            Kind::Agents => match item.as_table_like() {
                Some(t) => {
                    for (agent, band) in t.iter() {
                        let path = format!("{field}.{agent}");
                        match band.as_table_like() {
                            Some(b) => self.table(
                                b,
                                band.span(),
                                &path,
                                &[
                                    ("min_cpm", Kind::Num(30.0, 400.0)),
                                    ("max_cpm", Kind::Num(30.0, 600.0)),
                                ],
                                true,
                            ),
                            None => self.at(
                                band.span(),
                                &path,
                                "expected a table with min_cpm and max_cpm".into(),
                            ),
                        }
                    }
                }
                None => self.at(span, field, "expected a table of agents".into()),
            },
        }
    }

    fn table(
        &mut self,
        t: &dyn toml_edit::TableLike,
        span: Option<std::ops::Range<usize>>,
        path: &str,
        fields: &[(&str, Kind)],
        all_required: bool,
    ) {
        for (key, item) in t.iter() {
            let field = format!("{path}.{key}");
            match fields.iter().find(|(name, _)| *name == key) {
                Some((_, kind)) => self.value(item, *kind, &field),
                None => {
                    let known: Vec<&str> = fields.iter().map(|f| f.0).collect();
                    let key_span = t.key(key).and_then(|k| k.span()).or_else(|| item.span());
                    self.at(
                        key_span,
                        &field,
                        format!("unknown field; known: {}", known.join(", ")),
                    );
                }
            }
        }
        if all_required {
            for (name, kind) in fields {
                let _ = kind;
                if t.get(name).is_none() && !OPTIONAL.contains(name) {
                    self.at(span.clone(), &format!("{path}.{name}"), "missing".into());
                }
            }
        }
    }
}

/// Checks a rule book's text; returns every problem found (empty when valid).
pub fn check(source: &str) -> Vec<Problem> {
    let mut c = Checker {
        source,
        problems: Vec::new(),
    };
    let doc = match source.parse::<toml_edit::Document<String>>() {
        Ok(d) => d,
        Err(e) => {
            c.at(e.span(), "(syntax)", e.message().trim().to_string());
            return c.problems;
        }
    };
    let root = doc.as_table();
    for (key, item) in root.iter() {
        match key {
            "settings" => match item.as_table_like() {
                Some(t) => c.table(t, item.span(), "settings", &SETTINGS, true),
                None => c.at(item.span(), "settings", "expected a table".into()),
            },
            "rules" => match item.as_table_like() {
                Some(rules) => {
                    for (id, rule) in rules.iter() {
                        let path = format!("rules.{id}");
                        if !RULE_IDS.contains(&id) {
                            let span = rules.key(id).and_then(|k| k.span()).or_else(|| rule.span());
                            c.at(
                                span,
                                &path,
                                format!("unknown rule; known rules: {}", RULE_IDS.join(", ")),
                            );
                            continue;
                        }
                        let mut fields: Vec<(&str, Kind)> = COMMON.to_vec();
                        fields.extend_from_slice(schema(id));
                        match rule.as_table_like() {
                            Some(t) => c.table(t, rule.span(), &path, &fields, true),
                            None => c.at(rule.span(), &path, "expected a table".into()),
                        }
                    }
                    for id in RULE_IDS {
                        if rules.get(id).is_none() {
                            c.at(item.span(), &format!("rules.{id}"), "missing rule (copy it from `callcoach rules --print-default`; set enabled = false to turn it off)".into());
                        }
                    }
                }
                None => c.at(item.span(), "rules", "expected a table".into()),
            },
            other => {
                let span = root.key(other).and_then(|k| k.span());
                c.at(
                    span,
                    other,
                    "unknown section; expected [settings] and [rules.*]".into(),
                );
            }
        }
    }
    for section in ["settings", "rules"] {
        if root.get(section).is_none() {
            c.at(Some(0..0), section, "missing section".into());
        }
    }
    if c.problems.is_empty() {
        // Cross-field checks.
        if let Ok(book) = toml_edit::de::from_str::<RuleBook>(source) {
            let r = &book.rules;
            if r.rate.min_cpm >= r.rate.max_cpm {
                c.problems.push(Problem {
                    line: 0,
                    column: 0,
                    field: "rules.rate".into(),
                    message: "min_cpm must be below max_cpm".into(),
                });
            }
            if r.volume.min_lufs >= r.volume.max_lufs {
                c.problems.push(Problem {
                    line: 0,
                    column: 0,
                    field: "rules.volume".into(),
                    message: "min_lufs must be below max_lufs".into(),
                });
            }
        } else if let Err(e) = toml_edit::de::from_str::<RuleBook>(source) {
            c.at(e.span(), "(rule book)", e.message().to_string());
        }
    }
    c.problems
}

impl RuleBook {
    /// The embedded defaults.
    pub fn default_book() -> Self {
        // The embedded file is checked by a test; an error here is a build defect.
        #[allow(clippy::expect_used)]
        toml_edit::de::from_str(DEFAULT_RULES).expect("embedded default rule book is valid")
    }

    /// Parses and validates rule-book text; `name` is used in messages.
    pub fn parse(name: &str, source: &str) -> Result<Self, RuleBookError> {
        let problems = check(source);
        if !problems.is_empty() {
            return Err(RuleBookError::Invalid {
                path: name.to_string(),
                problems,
            });
        }
        toml_edit::de::from_str(source).map_err(|e| RuleBookError::Invalid {
            path: name.to_string(),
            problems: vec![Problem {
                line: 0,
                column: 0,
                field: "(rule book)".into(),
                message: e.message().to_string(),
            }],
        })
    }

    /// Loads a rule book file.
    pub fn load(path: &Path) -> Result<Self, RuleBookError> {
        let name = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|error| RuleBookError::Io {
            path: name.clone(),
            error,
        })?;
        Self::parse(&name, &source)
    }

    /// `{company}` filled in.
    pub fn fill(&self, text: &str) -> String {
        text.replace("{company}", &self.settings.company)
    }

    /// Is the call on a listed holiday?
    pub fn is_holiday(&self) -> bool {
        !self.settings.call_date.is_empty()
            && self
                .settings
                .holidays
                .iter()
                .any(|d| d == &self.settings.call_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        assert_eq!(check(DEFAULT_RULES), vec![]);
        let book = RuleBook::default_book();
        assert_eq!(book.rules.rate.max_cpm, 150.0);
    }

    #[test]
    fn every_mistake_is_reported_with_line_and_field() {
        let bad = DEFAULT_RULES
            .replace("max_cpm = 150", "max_cpm = \"fast\"")
            .replace("min_lufs = -30.0", "min_lufs = -300.0")
            .replace("[rules.interrupt]", "[rules.interupt]")
            .replace("window_s = 15", "window_s = 15\nwindow_seconds = 15");
        let problems = check(&bad);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert!(fields.contains(&"rules.rate.max_cpm"), "{problems:?}");
        assert!(fields.contains(&"rules.volume.min_lufs"), "{problems:?}");
        assert!(fields.contains(&"rules.interupt"), "{problems:?}");
        assert!(
            fields.contains(&"rules.interrupt"),
            "missing rule reported: {problems:?}"
        );
        assert!(
            fields.contains(&"rules.rate.window_seconds"),
            "{problems:?}"
        );
        let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).map(|i| i + 1);
        let p = problems
            .iter()
            .find(|p| p.field == "rules.rate.max_cpm")
            .map(|p| p.line);
        assert_eq!(p, line_of("max_cpm = \"fast\""));
        let p = problems
            .iter()
            .find(|p| p.field == "rules.rate.window_seconds")
            .map(|p| p.line);
        assert_eq!(p, line_of("window_seconds"));
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let problems = check("[settings]\ncompany = \"x\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
    }
}
