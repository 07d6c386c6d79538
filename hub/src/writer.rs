//! The writer: one thread that stores agents' messages in batches (one transaction per
//! batch: group commit), then acknowledges each to its agent and hands it to the screens.
//! Acknowledging only after the commit is what lets an agent forget a message: whatever it
//! was told is stored survives a crash of the hub; whatever it was not told, it resends.

use std::sync::Arc;

use callcoach_proto::wire::{AgentMsg, HubMsg};
use tokio::sync::mpsc;

use crate::state::{Counters, Hub, Outbound};
use crate::store::{Store, Stored};

/// Messages stored per transaction at most.
pub const MAX_BATCH: usize = 512;

/// One message to store (a resend of a stored one is acknowledged again, in order).
#[derive(Debug)]
pub struct WriteJob {
    pub agent: String,
    pub team: Option<i64>,
    pub msg: AgentMsg,
    pub reply: mpsc::UnboundedSender<Outbound>,
}

/// Runs until every sender is gone (the hub shut down and its agents' tasks ended), then
/// returns after storing what it was given.
pub fn run(mut store: Store, mut rx: mpsc::Receiver<WriteJob>, hub: std::sync::Weak<Hub>) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    let mut rows = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        rows.clear();
        rows.extend(
            batch
                .iter()
                .map(|j| (j.agent.clone(), j.team, j.msg.clone())),
        );
        let stored = store.store_batch(&rows);
        let hub: Option<Arc<Hub>> = hub.upgrade();
        for (i, j) in batch.drain(..).enumerate() {
            match &stored {
                Ok(outcomes) => match outcomes.get(i).copied().unwrap_or(Stored::Already) {
                    Stored::New => {
                        let _ = j.reply.send(Outbound::Msg(HubMsg::Ack { seq: j.msg.seq }));
                        if let Some(h) = &hub {
                            Counters::bump(&h.counters.messages_stored);
                            h.fanout.stored(&j.agent, &j.msg);
                        }
                    }
                    Stored::Already => {
                        let _ = j.reply.send(Outbound::Msg(HubMsg::Ack { seq: j.msg.seq }));
                        if let Some(h) = &hub {
                            Counters::bump(&h.counters.duplicates);
                        }
                    }
                    Stored::Gap { expected } => {
                        let _ = j.reply.send(Outbound::Close(format!(
                            "message {} came before {expected}: reconnect and resend from {expected}",
                            j.msg.seq
                        )));
                    }
                },
                Err(e) => {
                    // Not acknowledged: the agent keeps it in its spool and resends it.
                    let _ = j.reply.send(Outbound::Close(format!(
                        "the hub could not store your messages ({e}); they stay in your spool and are resent"
                    )));
                }
            }
        }
        if let Err(e) = &stored {
            eprintln!("hub: storing a batch failed: {e}");
        }
    }
}
