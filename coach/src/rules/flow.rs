//! The call-flow checklist the agent sees (greeting ✓, request confirmed ✓, anything else? ☐,
//! goodbye ☐), ticked from the agent's transcript with the rule book's own phrases: the
//! greeting's `must_include`, and the closing's `request_phrases`, `confirm_phrases` and
//! `goodbye_phrases`. It raises nothing; the closing and greeting rules judge.

use super::{Cx, Rule};
use crate::event::{Party, TranscriptSegment};
use crate::text::Matcher;

/// One step of the call flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStep {
    /// 问候: every phrase of the greeting rule heard.
    Greeting,
    /// 确认需求: the caller's request confirmed.
    RequestConfirmed,
    /// 询问其他问题: asked whether there is anything else.
    AnythingElse,
    /// 道别: said goodbye.
    Goodbye,
}

impl FlowStep {
    pub const ALL: [FlowStep; 4] = [
        FlowStep::Greeting,
        FlowStep::RequestConfirmed,
        FlowStep::AnythingElse,
        FlowStep::Goodbye,
    ];

    /// The checklist's label (Chinese, as the agent sees it).
    pub const fn label(self) -> &'static str {
        match self {
            FlowStep::Greeting => "问候",
            FlowStep::RequestConfirmed => "确认需求",
            FlowStep::AnythingElse => "询问其他",
            FlowStep::Goodbye => "道别",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    pub done: [bool; 4],
    /// Greeting phrases heard so far (the greeting may come in two segments).
    greeting_heard: Vec<bool>,
}

impl Rule for Flow {
    fn transcript(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        if seg.party != Party::Agent {
            return;
        }
        let book = cx.book;
        let tol = cx.tolerance();
        // The closing's short phrases are matched exactly: within the phrase tolerance "还有什么"
        // (anything else?) also matches the greeting's "有什么可以帮您".
        let any = |phrases: &[String]| phrases.iter().any(|p| m.find(&book.fill(p), 0).is_some());
        let g = &book.rules.greeting.must_include;
        self.greeting_heard.resize(g.len(), false);
        for (heard, p) in self.greeting_heard.iter_mut().zip(g) {
            *heard |= m.find(&book.fill(p), tol).is_some();
        }
        let c = &book.rules.closing;
        let now = [
            !g.is_empty() && self.greeting_heard.iter().all(|&h| h),
            any(&c.request_phrases),
            any(&c.confirm_phrases),
            any(&c.goodbye_phrases),
        ];
        for (d, n) in self.done.iter_mut().zip(now) {
            *d |= n;
        }
    }
}
