//! The mail outbox in the ledger: messages stored with their cause, claimed under a lease,
//! marked sent or failed. The only SQL about mail.
