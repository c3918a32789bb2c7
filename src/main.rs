//! The `tally` binary: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use tally::cmd::Cli;
use tally::settings::ExitStatus;

fn main() {
    let cli = Cli::parse();
    tally::logging::init(cli.global.verbosity());
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "tally: 内部错误：{info}\n\
             tally: 没有写入一半的数据（每次改动都是一个完整的数据库事务）；\
             请把这条信息报告给维护人员"
        );
    }));
    let status = match tally::cmd::run(cli) {
        Ok(status) => status,
        Err(err) => {
            // Configuration, usage and I/O errors: every message names its file, key or cell.
            eprintln!("tally: 错误：{err:#}");
            if let Some(hint) = tally::settings::storage_hint(&err) {
                eprintln!("tally: {hint}");
            }
            ExitStatus::Error
        }
    };
    std::process::exit(status.code());
}
