//! One module per subcommand: its arguments come from `cli`, its work is here.

pub mod check;
pub mod init;
pub mod template;
