//! Start-up cleanup of what a killed tally left behind: its temporary files
//! (`.tally-XXXXXX.tmp`, see `durable::temp_file_in`) in every folder it writes, and the staging
//! copies under the archive. Run only while holding the state lock; it never touches a return,
//! a feedback workbook or anything a clerk made.

use crate::config::Config;
use crate::durable;
use crate::private::STAGING_DIR;
use std::path::{Path, PathBuf};

/// Remove the staging copies a crash left: the drop each came from is still in its folder (it
/// is moved only after its record), so they hold nothing that is not kept elsewhere.
pub fn clear_staging(config: &Config) -> Vec<PathBuf> {
    let staging = config.archive_dir().join(STAGING_DIR);
    let mut removed = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&staging) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

/// Remove every temporary file a killed tally left: beside the plan (`targets import`), in the
/// master's folder, the outbox, the state folder, the archive (its unit and month folders and
/// its `master/`), each unit's folder with its 已接收/, 退回/ and form folder; and the staging
/// copies. Returns what was removed (each is logged).
pub fn remove_stale_temps(config: &Config) -> Vec<PathBuf> {
    let parent = |p: PathBuf| -> PathBuf {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let mut removed = Vec::new();
    let mut flat = vec![
        config.base_dir.clone(),
        parent(config.master_path()),
        config.outbox_dir(),
        parent(config.state_path()),
    ];
    flat.sort();
    flat.dedup();
    for dir in &flat {
        removed.extend(durable::remove_stale_temps(dir));
    }
    // <archive>/<unit folder>/<month>/ and <archive>/master/.
    removed.extend(durable::remove_stale_temps_under(&config.archive_dir(), 2));
    removed.extend(clear_staging(config));
    for unit in &config.plan.units {
        removed.extend(durable::remove_stale_temps_under(&config.unit_dir(unit), 1));
    }
    for path in &removed {
        tracing::info!(path = %path.display(), "removed a temporary file left by an interrupted run");
    }
    removed
}
