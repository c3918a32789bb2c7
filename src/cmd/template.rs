//! `tally template`: write the blank return workbook for the plan (optionally for one unit and
//! month).

use crate::core::calendar::YearMonth;
use crate::forms;
use crate::settings::{ExitStatus, Settings};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Pre-fill 填报单位 with this unit.
    #[arg(long, value_name = "U")]
    pub unit: Option<String>,
    /// Pre-fill 报送月份 with this month (YYYY-MM).
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: Option<YearMonth>,
    /// Output file (default: 培训情况月报模板.xlsx, or with the unit's name).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_month(s: &str) -> Result<YearMonth, String> {
    YearMonth::parse(s).ok_or_else(|| format!("{s:?} is not a month YYYY-MM (e.g. 2020-05)"))
}

pub fn run(settings: &Settings, args: &TemplateArgs) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    let unit = match &args.unit {
        Some(u) => Some(settings.unit_arg(u)?.name.clone()),
        None => None,
    };
    // The bureau may edit the wording without recompiling: templates/填报说明.txt beside the plan.
    let instructions = forms::instructions(config);
    let bytes = forms::render(config, &instructions, unit.as_deref(), args.month)
        .context("cannot build the template workbook")?;
    let path = match &args.output {
        Some(p) => p.clone(),
        None => {
            let p = PathBuf::from(match &unit {
                Some(u) => format!("培训情况月报模板-{u}.xlsx"),
                None => "培训情况月报模板.xlsx".to_string(),
            });
            crate::cmd::ensure_absent(&p)?;
            p
        }
    };
    crate::cmd::write_file(&path, &bytes)?;
    println!("已写入 {}", path.display());
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use crate::cmd::{Cli, Command};
    use clap::Parser;

    #[test]
    fn month_is_parsed_or_refused() {
        let cli = Cli::try_parse_from(["tally", "template", "--month", "2020-05"]).unwrap();
        let Command::Template(args) = cli.command else {
            panic!("not template")
        };
        assert_eq!(
            args.month.map(|m| m.to_string()).as_deref(),
            Some("2020-05")
        );
        assert!(Cli::try_parse_from(["tally", "template", "--month", "5月"]).is_err());
    }
}
