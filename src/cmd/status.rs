//! `tally status [--json]`: progress per unit and category at `--now` (DESIGN.md §6).

use crate::core::count::{self, Status, UnitStatus};
use crate::core::lateness::{self, MonthEntry, MonthState};
use crate::ledger::Ledger;
use crate::settings::{ExitStatus, Settings};
use clap::Args;
use serde::Serialize;
use std::io::IsTerminal;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object (DESIGN.md §6) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The status of the plan from the ledger at the settings' clock.
pub fn load(settings: &Settings, ledger: &Ledger) -> anyhow::Result<Status> {
    let accepted = ledger.accepted_months()?;
    Ok(count::status_from(
        &settings.config.plan,
        settings.now,
        &ledger.completed(&settings.config.plan)?,
        &accepted,
    ))
}

/// One unit in `status --json`: its figures, then its months (报送日历) and on-time rate.
#[derive(Debug, Serialize)]
pub struct UnitReport<'a> {
    #[serde(flatten)]
    pub status: &'a UnitStatus,
    pub months: Vec<MonthEntry>,
    pub on_time_rate: Option<f64>,
}

/// `status --json` (DESIGN.md §6).
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub as_of: &'a str,
    pub plan: &'a str,
    pub year: i32,
    pub units: Vec<UnitReport<'a>>,
}

/// The status with each unit's months, from the ledger's arrivals.
pub fn report<'a>(
    settings: &Settings,
    ledger: &Ledger,
    status: &'a Status,
) -> anyhow::Result<Report<'a>> {
    let plan = &settings.config.plan;
    let arrivals = ledger.arrivals(plan.tz)?;
    let units = status
        .units
        .iter()
        .map(|u| {
            let months = lateness::unit_months(
                plan,
                settings.now,
                arrivals.get(&u.unit).unwrap_or(&Default::default()),
            );
            UnitReport {
                status: u,
                on_time_rate: lateness::on_time_rate(&months),
                months,
            }
        })
        .collect();
    Ok(Report {
        as_of: &status.as_of,
        plan: &status.plan,
        year: status.year,
        units,
    })
}

pub fn run(settings: &Settings, args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let ledger = Ledger::open_at(&settings.config.ledger_location())?;
    let status = load(settings, &ledger)?;
    let report = report(settings, &ledger, &status)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let colour = std::io::stdout().is_terminal();
        print!("{}", render_text(&status, colour));
        print!("{}", render_calendar(&report));
    }
    Ok(ExitStatus::Success)
}

/// The 报送日历 as a compact grid: one line per unit, one column per month, and the on-time
/// rate.
pub fn render_calendar(report: &Report<'_>) -> String {
    let mut header: Vec<String> = vec!["单位".into()];
    header.extend((1..=12).map(|m| format!("{m}月")));
    header.push("按时率".into());
    let rows: Vec<Vec<String>> = report
        .units
        .iter()
        .map(|u| {
            let mut row = vec![u.status.unit.clone()];
            row.extend(u.months.iter().map(|m| match m.state {
                MonthState::OnTime => "按时".to_string(),
                MonthState::Late => format!("逾{}", m.days_late),
                MonthState::Missing => "未报".to_string(),
                MonthState::Rejected => "退回".to_string(),
                MonthState::NotDue => "·".to_string(),
            }));
            row.push(
                u.on_time_rate
                    .map_or_else(|| "—".to_string(), |r| format!("{:.0}%", r * 100.0)),
            );
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    format!(
        "\n报送日历（按时 / 逾N = 逾期N天 / 未报 / 退回 = 退回待改 / · = 未到期）：\n{}",
        crate::cmd::table::render(&header, &rows)
    )
}

/// The status as a table; lagging lines in red when `colour`.
pub fn render_text(status: &Status, colour: bool) -> String {
    let mut out = format!(
        "{}（{} 年度）— 统计时点 {}\n\n",
        status.plan, status.year, status.as_of
    );
    let mut rows = Vec::new();
    let mut lagging_rows = Vec::new();
    for u in &status.units {
        for (i, c) in u.categories.iter().enumerate() {
            let rate = if c.target == 0 {
                0.0
            } else {
                c.completed as f64 * 100.0 / f64::from(c.target)
            };
            if c.lagging {
                lagging_rows.push(rows.len());
            }
            rows.push(vec![
                if i == 0 {
                    u.unit.clone()
                } else {
                    String::new()
                },
                c.category.clone(),
                c.target.to_string(),
                c.completed.to_string(),
                format!("{rate:.1}%"),
                format!("{:.1}", c.expected),
                if c.lagging {
                    "滞后".into()
                } else {
                    "正常".into()
                },
            ]);
        }
    }
    let mut header = vec!["单位"];
    header.extend(count::CATEGORY_COLUMNS);
    let table = crate::cmd::table::render(&header, &rows);
    for (i, line) in table.lines().enumerate() {
        let red = colour && i > 0 && lagging_rows.contains(&(i - 1));
        if red {
            out.push_str(&format!("\x1b[31m{line}\x1b[0m\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let missing: Vec<&crate::core::count::UnitStatus> = status
        .units
        .iter()
        .filter(|u| !u.missing_months.is_empty())
        .collect();
    if !missing.is_empty() {
        out.push_str("\n未报送（截止日后仍无被接收的月报）：\n");
        for u in missing {
            let line = format!("  {}：{}", u.unit, u.missing_months.join("、"));
            if colour {
                out.push_str(&format!("\x1b[31m{line}\x1b[0m\n"));
            } else {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::count::{CategoryStatus, UnitStatus};

    #[test]
    fn the_table_lists_categories_and_missing_months_follow_it() {
        let status = Status {
            as_of: "2020-07-01T00:00:00+08:00".into(),
            plan: "计划".into(),
            year: 2020,
            units: vec![UnitStatus {
                unit: "西兴街道".into(),
                lagging: true,
                missing_months: vec!["2020-05".into()],
                categories: vec![CategoryStatus {
                    category: "企业主要负责人".into(),
                    target: 70,
                    completed: 12,
                    expected: 34.8,
                    lagging: true,
                }],
            }],
        };
        let plain = render_text(&status, false);
        assert!(
            plain.contains("西兴街道  企业主要负责人  70        12      17.1%   34.8      滞后"),
            "{plain}"
        );
        assert!(
            plain.ends_with("未报送（截止日后仍无被接收的月报）：\n  西兴街道：2020-05\n"),
            "{plain}"
        );
        assert!(!plain.contains('\x1b'));
        assert!(render_text(&status, true).contains("\x1b[31m"));
    }
}
