//! One module per subcommand: its arguments come from `cli`, its work is here.

pub mod check;
pub mod ingest;
pub mod init;
pub mod status;
pub mod template;
