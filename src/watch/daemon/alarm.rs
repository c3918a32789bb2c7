//! Storage faults met by the daemon: the disk under the ledger, the archive, the master or
//! the drop folders full or read-only. Such a fault is no fault of the file at hand — every
//! file would meet it until someone frees space — so the file stays where it is (`take`
//! retries it), the fault is logged as an error, and the bureau is mailed once per folder and
//! episode (noted in the ledger, so a restart does not mail again). When the ledger itself
//! cannot be written, the alert goes around the outbox. An episode ends when tally writes to
//! that folder again.

use super::{Daemon, Mail};
use crate::durable::StorageFault;
use crate::intake::IntakeError;
use crate::ledger::LedgerError;
use crate::mail::messages::{StorageAlarm, storage_alert};
use crate::master::MasterError;
use std::path::{Path, PathBuf};

/// The storage fault an error comes from, and the path it hit when the error names one.
fn classify(err: &(dyn std::error::Error + 'static)) -> Option<(StorageFault, Option<PathBuf>)> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(l) = e.downcast_ref::<LedgerError>() {
            return l.storage_fault().map(|f| (f, Some(ledger_path(l))));
        }
        match e.downcast_ref::<IntakeError>() {
            Some(IntakeError::Io { path, source, .. }) => {
                return StorageFault::of_io(source).map(|f| (f, Some(path.clone())));
            }
            Some(IntakeError::Ledger(l)) => {
                return l.storage_fault().map(|f| (f, Some(ledger_path(l))));
            }
            None => {}
        }
        if let Some(MasterError::Io { path, source, .. }) = e.downcast_ref::<MasterError>() {
            return StorageFault::of_io(source).map(|f| (f, Some(path.clone())));
        }
        if let Some(f) = e
            .downcast_ref::<std::io::Error>()
            .and_then(StorageFault::of_io)
        {
            return Some((f, None));
        }
        next = e.source();
    }
    None
}

fn ledger_path(e: &LedgerError) -> PathBuf {
    match e {
        LedgerError::Sql { path, .. }
        | LedgerError::Io { path, .. }
        | LedgerError::TooNew { path, .. }
        | LedgerError::NotEmpty { path, .. }
        | LedgerError::ClaimLost { path, .. } => path.clone(),
    }
}

impl Daemon<'_> {
    /// The folders tally writes, with the bureau's name for each: the one holding `path`.
    fn folder_of(&self, path: &Path) -> (PathBuf, &'static str) {
        let c = self.config;
        let state = c.state_path();
        let output = c.master_path();
        let candidates = [
            (state.parent().map(Path::to_path_buf), "数据库"),
            (Some(c.archive_dir()), "存档"),
            (output.parent().map(Path::to_path_buf), "总表输出文件夹"),
            (Some(c.watch_root()), "报送文件夹"),
        ];
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        candidates
            .into_iter()
            .filter_map(|(dir, label)| {
                let dir = dir?;
                let dir = std::path::absolute(&dir).unwrap_or(dir);
                path.starts_with(&dir).then_some((dir, label))
            })
            .max_by_key(|(dir, _)| dir.components().count())
            .unwrap_or_else(|| {
                let dir = path
                    .parent()
                    .map_or_else(|| path.clone(), Path::to_path_buf);
                (dir, "文件夹")
            })
    }

    /// The master's folder (where a fault without a path met while writing it lies).
    fn output_folder(&self) -> PathBuf {
        let m = self.config.master_path();
        let dir = m.parent().map_or_else(|| m.clone(), Path::to_path_buf);
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// `err` came from taking a file in (`files_wait`) or from writing the master: when it is
    /// a storage fault, raise the alarm for the folder it hit (once per episode).
    pub(super) fn storage_alarm(
        &mut self,
        err: &(dyn std::error::Error + 'static),
        doing: &str,
        files_wait: bool,
    ) {
        let Some((fault, path)) = classify(err) else {
            return;
        };
        let (folder, label) = match path {
            Some(p) => self.folder_of(&p),
            None if files_wait => self.folder_of(&self.config.archive_dir()),
            None => (self.output_folder(), "总表输出文件夹"),
        };
        if !self.alarms.insert(folder.clone()) {
            tracing::debug!(folder = %folder.display(), fault = fault.as_str(), "storage fault persists");
            return;
        }
        tracing::error!(
            folder = %folder.display(),
            fault = fault.as_str(),
            error = %err,
            "storage fault: files stay where they are and are tried again; the bureau is told once"
        );
        let at = self.stamp();
        let error = format!("{err}");
        let alarm = StorageAlarm {
            folder_label: label,
            folder: &folder,
            fault,
            doing,
            error: &error,
            at: &at,
            files_wait,
        };
        let Some(message) = storage_alert(self.config, &alarm) else {
            tracing::warn!("no bureau address in [mail]: the storage fault is only logged");
            return;
        };
        match self.ledger.note_storage_alarm(&folder, &at) {
            Ok(false) => {} // mailed before a restart
            Ok(true) => match self.ledger.queue(std::slice::from_ref(&message), &at) {
                Ok(_) => self.mail_work(),
                Err(_) => self.send_unrecorded(message),
            },
            Err(_) => self.send_unrecorded(message),
        }
    }

    fn send_unrecorded(&mut self, message: crate::ledger::NewMessage) {
        let now = self.opts.clock.now();
        match &self.mail {
            Mail::Inline(transport) => {
                match crate::mail::send_unrecorded(self.config, transport, &message, now) {
                    Ok(()) => tracing::info!(kind = %message.kind, "mail sent around the outbox"),
                    Err(e) => {
                        tracing::error!(kind = %message.kind, error = %e, "mail not sent (the ledger cannot be written, so it is not kept for later)")
                    }
                }
            }
            Mail::Thread(mailer) => mailer.send_unrecorded(message, now),
        }
    }

    /// Tally wrote to these folders again: their episodes are over.
    pub(super) fn storage_ok(&mut self, master: bool, archive: bool) {
        if self.alarms.is_empty() {
            return;
        }
        let output = self.output_folder();
        let (archive_dir, _) = self.folder_of(&self.config.archive_dir());
        let over: Vec<PathBuf> = self
            .alarms
            .iter()
            .filter(|f| {
                if master {
                    **f == output
                } else {
                    **f != output && (archive || **f != archive_dir)
                }
            })
            .cloned()
            .collect();
        for folder in over {
            self.alarms.remove(&folder);
            tracing::info!(folder = %folder.display(), "the storage fault is over");
            if let Err(e) = self.ledger.clear_storage_alarm(&folder) {
                tracing::warn!(error = %e, "cannot record the listing");
            }
        }
    }
}
