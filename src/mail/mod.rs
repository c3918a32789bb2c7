//! Mail (DESIGN.md §8): compose → outbox → transport. What happens at an intake or on the
//! schedule is written (`messages`) and stored in the ledger's outbox in the same
//! transaction as its cause (`schedule` for reminders, deadline reminders and the digest);
//! the sender (`outbox`) claims each due message under a lease, builds it with lettre's typed
//! headers (`compose`) and delivers it (`transport`: SMTP, or one .eml file per message when
//! no server is configured), marking it sent only after the server or the file system took
//! it. `[mail]` is read in `settings`, SMTP URLs in `url`. No module here speaks SQL or reads
//! the environment: the outbox is the ledger's, the environment `crate::settings`'.

mod compose;
#[cfg(test)]
mod fixtures;
pub mod messages;
mod outbox;
mod schedule;
pub mod settings;
mod transport;
pub mod url;

use crate::ledger::LedgerError;

pub use crate::ledger::{OutboxRow, Requeued};
pub use messages::kind_label;
pub use outbox::{SendReport, exists, list, requeue, send_due, send_due_with, send_unrecorded};
pub use schedule::{Passed, Planned, ScheduleReport, Trigger, schedule, schedule_for};
pub use settings::MailSettings;
pub use transport::Transport;

/// Mail failures that stop a command (a single message's failure is recorded, not raised).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP settings cannot be used: bad `TALLY_SMTP_URL`, unreadable password file, a
    /// user without a password.
    #[error("{0}")]
    Config(String),
    /// The ledger refused an outbox or schedule operation.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}
