//! `tally template`: write the blank return workbook for the plan (optionally for one unit).

use crate::settings::{ExitStatus, Settings};
use crate::template::{DEFAULT_INSTRUCTIONS, TemplateSpec, render};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Pre-fill 填报单位 with this unit.
    #[arg(long, value_name = "U")]
    pub unit: Option<String>,
    /// Output file (default: 培训情况月报模板.xlsx, or with the unit's name).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: &TemplateArgs) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    let unit = match &args.unit {
        Some(u) => Some(settings.unit_arg(u)?.name.clone()),
        None => None,
    };
    // The bureau may edit the wording without recompiling: templates/填报说明.txt beside the plan.
    let custom = config.base_dir.join("templates").join("填报说明.txt");
    // `{deadline_day}` in the text is the plan's deadline day.
    let instructions = std::fs::read_to_string(&custom)
        .unwrap_or_else(|_| DEFAULT_INSTRUCTIONS.to_string())
        .replace("{deadline_day}", &config.plan.deadline_day.to_string());
    let units = config.plan.unit_names();
    let categories = config.plan.category_names();
    let bytes = render(&TemplateSpec {
        plan_title: &config.plan.title,
        year: config.plan.year,
        unit: unit.as_deref(),
        units: &units,
        categories: &categories,
        instructions: &instructions,
    })
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
