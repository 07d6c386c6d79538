//! `dead_air`: neither party speaks mid-call (not on hold, not during the silent-caller
//! protocol). Decided on the fast path as soon as it is final (see [`crate::ahead`]).

use super::{Cx, Rule, SilentStep};
use crate::ahead::Ahead;
use crate::board::Notice;
use crate::event::{Event, Party};
use crate::rule_id::RuleId;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct DeadAir {
    /// Start of the current mutual silence (confirmed frames).
    since: Option<u64>,
}

/// Is dead air watched for now (both parties have spoken, no hold, no silent-call protocol
/// running, the call not over)?
fn watched(cx: &Cx<'_>) -> bool {
    let f = &*cx.facts;
    f.ever_voiced[0]
        && f.ever_voiced[1]
        && !f.ended
        && f.hold_since.is_none()
        && !matches!(f.silent, SilentStep::Step(_))
}

/// Raises (or refreshes) dead air silent since `since` when it has lasted long enough at the
/// coach's time.
fn raise_if_long(cx: &mut Cx<'_>, since: u64) {
    let book = cx.book;
    let r = &book.rules.dead_air;
    let dur = (cx.facts.now - since) as f64 / 1000.0;
    if dur >= r.max_silence_s {
        let evidence = Evidence {
            measured: Some(dur.floor()),
            threshold: Some(r.max_silence_s),
            unit: Some("s".into()),
            heard: None,
        };
        cx.raise(Notice {
            rule: RuleId::DeadAir,
            key: 0,
            party: Party::Agent,
            start_ms: since,
            zh: format!("冷场{:.0}秒", dur.floor()),
            en: format!("Dead air for {:.0} s", dur.floor()),
            evidence,
            line: &r.line,
            severity: None,
        });
    }
}

impl Rule for DeadAir {
    fn both(&mut self, cx: &mut Cx<'_>) {
        let silent = !cx.facts.voiced[0] && !cx.facts.voiced[1];
        if silent && watched(cx) {
            let since = *self.since.get_or_insert(cx.facts.now);
            raise_if_long(cx, since);
        } else {
            self.since = None;
            cx.clear(RuleId::DeadAir, 0);
        }
    }

    /// Still silent: final once no raw speech followed the last confirmed frame.
    fn ahead(&mut self, cx: &mut Cx<'_>, _a: &Ahead, confirmed_ms: u64) {
        let Some(since) = self.since else { return };
        let quiet = !(0..2).any(|p| cx.facts.raw.voiced_after(p, confirmed_ms));
        if quiet && watched(cx) && !cx.board.is_active(RuleId::DeadAir, 0) {
            raise_if_long(cx, since);
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, e: &Event) {
        if let Event::HoldStart { t_ms } = e {
            self.since = None;
            cx.clear_at(RuleId::DeadAir, 0, *t_ms);
        }
    }
}
