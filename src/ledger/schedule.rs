//! Reminder windows in the ledger: which scheduled mail (reminders, deadline reminders,
//! digests) was already decided for which window.
