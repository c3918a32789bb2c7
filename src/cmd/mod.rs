//! One module per subcommand: its arguments come from `cli`, its work is here.

pub mod check;
pub mod ingest;
pub mod init;
pub mod outbox;
pub mod rebuild;
pub mod remind;
pub mod status;
pub mod template;
pub mod watch;
