//! The daemon's mail sender: a thread with its own ledger connection that stores the scheduled
//! mail and sends what is due whenever the loop asks, so that a slow or silent SMTP server
//! never holds up the files (a server that accepts and never answers costs this thread up to
//! `[mail] timeout_secs` per step, and the loop nothing). It never takes a file nor writes the
//! master; what it sends and how is `crate::mail`'s.

use crate::config::Config;
use crate::ledger::{Ledger, NewMessage};
use crate::mail::Transport;
use crate::watch::burst::mail_work;
use chrono::DateTime;
use chrono_tz::Tz;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

/// What the mail thread is asked to do.
enum Job {
    /// A round of the mail work at this time.
    Round(DateTime<Tz>),
    /// Send this alert at once, around the outbox (the ledger cannot be written).
    Unrecorded(Box<NewMessage>, DateTime<Tz>),
}

/// The mail thread; asked for a round with [`Mailer::kick`], stopped (after the round under
/// way) when dropped.
pub(super) struct Mailer {
    tx: Option<Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

impl Mailer {
    /// Start the thread; it opens its own connection to the ledger at its first round.
    pub(super) fn start(config: Config, transport: Transport) -> std::io::Result<Mailer> {
        let (tx, rx) = channel::<Job>();
        // The daemon's log (`--log-format`, `--log-file`) is set for its own thread only.
        let log = tracing::dispatcher::get_default(|d| d.clone());
        let handle = std::thread::Builder::new()
            .name("mail".into())
            .spawn(move || {
                let _log = tracing::dispatcher::set_default(&log);
                let mut ledger: Option<Ledger> = None;
                while let Ok(first) = rx.recv() {
                    // Asks that came while the last round ran: one round does for them all.
                    let mut round = None;
                    for job in std::iter::once(first).chain(rx.try_iter()) {
                        match job {
                            Job::Round(now) => round = Some(now),
                            Job::Unrecorded(m, now) => {
                                match crate::mail::send_unrecorded(&config, &transport, &m, now) {
                                    Ok(()) => tracing::info!(kind = %m.kind, "mail sent around the outbox"),
                                    Err(e) => tracing::error!(kind = %m.kind, error = %e, "mail not sent (the ledger cannot be written, so it is not kept for later)"),
                                }
                            }
                        }
                    }
                    let Some(now) = round else { continue };
                    if ledger.is_none() {
                        match Ledger::open_at(&config.ledger_location()) {
                            Ok(l) => ledger = Some(l),
                            Err(e) => {
                                tracing::warn!(error = %e, "mail not sent; it stays in the outbox");
                                continue;
                            }
                        }
                    }
                    let Some(l) = ledger.as_mut() else { continue };
                    let ran =
                        catch_unwind(AssertUnwindSafe(|| mail_work(&config, l, now, &transport)));
                    if ran.is_err() {
                        tracing::error!("panic while sending mail; it stays in the outbox");
                        ledger = None;
                    }
                    tracing::debug!("mail round finished");
                }
            })?;
        Ok(Mailer {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Ask for a round of the mail work at `now` (returns at once).
    pub(super) fn kick(&self, now: DateTime<Tz>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::Round(now));
        }
    }

    /// Send `message` around the outbox as soon as the thread is free (returns at once).
    pub(super) fn send_unrecorded(&self, message: NewMessage, now: DateTime<Tz>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::Unrecorded(Box::new(message), now));
        }
    }

    /// Let the thread finish the rounds asked for (each bounded by the SMTP timeout), then
    /// wait for it.
    pub(super) fn stop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        self.stop();
    }
}
