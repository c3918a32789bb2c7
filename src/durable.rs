//! Durable file steps shared by the edges that write files (intake, master, watch): making a
//! rename or a new file survive power loss. Only file-system calls; no domain rules.

use std::path::Path;

/// Flush a folder's entries (a rename or a new file in it) to disk. On systems where a folder
/// cannot be opened or synced (Windows) this does nothing: there the rename itself is durable
/// once the file's own data was synced.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Temporary files tally writes beside a file it replaces start with this: hidden on Unix,
/// and a name the watcher never takes as a return.
pub const TEMP_PREFIX: &str = ".tally-";
/// …and end with this (the watcher ignores `*.tmp`).
pub const TEMP_SUFFIX: &str = ".tmp";

/// Temporary files are private (0600); a file published for others on the share (the master,
/// a unit's progress workbook) gets 0644 before it is renamed into place.
pub fn shared_mode(file: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = file;
}
