//! The watcher's file states in the ledger: files seen in the drop folders, being taken,
//! failed, or lying outside a unit's folder.
