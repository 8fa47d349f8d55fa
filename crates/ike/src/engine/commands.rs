//! The operator commands on the engine (`reset ike sa`, `reset ipsec sa`) and the error
//! history behind `display ike error-info` (types in module `commands`).

use std::time::Instant;

use crate::commands::{Command, ErrorRecord};
use crate::engine::endpoint::Engine;
use crate::event::{Event, IkeSaEnd};
use crate::lifetime::end_ike_sa;

impl Engine {
    /// Runs an operator command. Drain `poll_transmit` and `poll_event` afterwards, as after
    /// any other input.
    pub fn handle_command(&mut self, now: Instant, command: Command) {
        let mark = self.out.events.len();
        match command {
            Command::ResetIkeSa { connection } => {
                for slot in 0..self.slots.len() {
                    let matches = self.slots[slot]
                        .as_ref()
                        .is_some_and(|sa| connection.is_none_or(|c| c == sa.connection));
                    if matches {
                        self.with_sa(slot, now, |sa, ctx| end_ike_sa(sa, IkeSaEnd::Reset, ctx));
                        self.reap(slot, now);
                    }
                }
            }
            Command::ResetIpsecSa { remote, policy } => self.reset_pairs(now, remote, policy.as_ref()),
        }
        self.after_input(now, mark);
    }

    /// The last failures, oldest first, for `display ike error-info`.
    pub fn error_history(&self) -> impl Iterator<Item = &ErrorRecord> + '_ {
        self.errors.records.iter()
    }

    /// Remembers the failures among the events from `mark` on.
    pub(crate) fn record_failures(&mut self, now: Instant, mark: usize) {
        for event in self.out.events.iter().skip(mark) {
            if let Event::Failed(failure) = event {
                self.errors.record(now, failure);
            }
        }
    }
}
