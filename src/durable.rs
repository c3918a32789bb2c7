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
