//! A second connection to a ledger, for a reader on a thread of its own.

use super::{Ledger, LedgerError};

impl Ledger {
    /// Another connection to this ledger, for reading on another thread while this one goes
    /// on (`tally rebuild` renders the master beside the units' workbooks). SQLite: read-only,
    /// WAL lets it read while this one writes.
    pub fn reader(&self) -> Result<Ledger, LedgerError> {
        Ledger::open_reader(&self.location)
    }
}
