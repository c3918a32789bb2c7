//! A reader child that stays up for the next files: a burst of small returns pays for one
//! process start, not one per file. Each file is still read in a child, under the same
//! memory cap and time limit, and judged as a child of its own would be. A reader that
//! failed, refused a file, read a large one or has read many is ended; the next file gets a
//! new one. Only small files are sent to one: a large file's read dwarfs the start.
//!
//! The exchange, one file at a time: the parent writes a request on the child's stdin (a
//! length, u32 little-endian, and the file's path in UTF-8); the child answers on its stdout
//! as a child of its own does (the SHA-256, then frames up to `Done` or `Refused`). The end
//! of its stdin ends it.

use super::{Checked, Limits, Prechecking, Received};
use crate::sandbox::Confined;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Instant;

/// Files up to this size are sent to a reader that stays up.
const SERVED_MAX_BYTES: u64 = 1 << 20;

/// A reader whose answer took more than this many bytes of frames is ended after it: the
/// memory it took goes with it, and the next file starts with the whole cap.
const SERVED_MAX_ANSWER: u64 = 16 << 20;

/// A reader is ended after this many files, however they went.
const SERVED_MAX_FILES: u32 = 1000;

/// Readers kept waiting for a file at most.
const IDLE_MAX: usize = 4;

/// The flag of `tally __read` for a reader that stays up.
pub const SERVE_FLAG: &str = "--serve";

/// Readers waiting for their next file, each with the arguments it was started with.
static IDLE: Mutex<Vec<Server>> = Mutex::new(Vec::new());

/// Longest request path the child takes.
const MAX_REQUEST: u32 = 64 * 1024;

struct Request {
    path: PathBuf,
    cap: u64,
    precheck: Option<Prechecking>,
}

/// A reader that stays up, between two files or reading one.
pub(super) struct Server {
    /// `tally`, the plan file and the limits it was started with.
    key: String,
    confined: Confined,
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Box<(Received, Option<Checked>)>>,
    /// What it said on stderr (its last 64 KiB), once it has ended.
    err_thread: Option<std::thread::JoinHandle<Vec<u8>>>,
    files: u32,
}

/// How a served read went.
pub(super) enum Served {
    /// Answered (what it sent, and the check of it): the reader (its process id) waits for
    /// its next file, or has been ended.
    Answered {
        reply: Box<(Received, Option<Checked>)>,
        reader: u32,
    },
    /// The reader ended before its answer, or was ended at the time limit (status None):
    /// judged as a child of its own is.
    Ended {
        status: Option<ExitStatus>,
        received: Received,
        err: Vec<u8>,
        confined: Box<Confined>,
    },
}

impl Server {
    /// Send `path` to a reader started with these arguments: an idle one, else a new one;
    /// the `precheck` goes with it. None when the file is not for a reader that stays up (too
    /// large, a path not in UTF-8) or no reader could be started: a child of its own reads it
    /// then, and the precheck is left in place.
    pub(super) fn send(
        exe: &Path,
        config_path: Option<&Path>,
        path: &Path,
        size: u64,
        limits: &Limits,
        cap: u64,
        precheck: &mut Option<Prechecking>,
    ) -> Option<Server> {
        if size > SERVED_MAX_BYTES || path.to_str().is_none() {
            return None;
        }
        let key = format!(
            "{}\n{}\n{}",
            exe.display(),
            config_path
                .map(|c| c.display().to_string())
                .unwrap_or_default(),
            limits.to_arg()
        );
        let idle = {
            let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
            idle.iter()
                .position(|s| s.key == key)
                .map(|i| idle.swap_remove(i))
        };
        let mut server = match idle {
            Some(s) => s,
            None => match Server::start(key, exe, config_path, limits) {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot start a reader that stays up");
                    return None;
                }
            },
        };
        let request = Request {
            path: path.to_path_buf(),
            cap,
            precheck: precheck.take(),
        };
        match server.requests.send(request) {
            Ok(()) => {
                server.files += 1;
                Some(server)
            }
            // Its thread has ended (it cannot, while idle): a child of its own instead.
            Err(mpsc::SendError(request)) => {
                *precheck = request.precheck;
                server.end();
                None
            }
        }
    }

    fn start(
        key: String,
        exe: &Path,
        config_path: Option<&Path>,
        limits: &Limits,
    ) -> std::io::Result<Server> {
        let mut cmd = std::process::Command::new(exe);
        if let Some(c) = config_path {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("-q")
            .arg(super::CHILD_COMMAND)
            .arg("--limits")
            .arg(limits.to_arg())
            .arg(SERVE_FLAG);
        let (confined, pipes) = Confined::spawn_serving(&mut cmd, limits.reader_memory_mb)?;
        let (Some(mut stdin), stdout, stderr) = (pipes.stdin, pipes.stdout, pipes.stderr) else {
            return Err(std::io::Error::other("the reader's stdin is not piped"));
        };
        tracing::debug!(pid = confined.id(), "reader started, to stay up");
        let (requests, take) = mpsc::channel::<Request>();
        let (answer, replies) = mpsc::channel();
        // Takes each file's answer as it comes (and checks it), one file at a time; ends
        // with the first answer that did not come whole, closing the child's stdin.
        std::thread::spawn(move || {
            let mut out = std::io::BufReader::with_capacity(1 << 16, stdout);
            for request in take {
                let (received, checked) = match write_request(&mut stdin, &request.path) {
                    Ok(()) => super::receive_answer(&mut out, request.cap, request.precheck),
                    Err(_) => (Received::default(), None),
                };
                let whole = received.answer.is_some() && !received.over_cap;
                if answer.send(Box::new((received, checked))).is_err() || !whole {
                    break;
                }
            }
        });
        // Drained to its end, so the child never blocks on a full pipe; its tail is kept.
        let err_thread = std::thread::spawn(move || crate::sandbox::said_by(stderr));
        Ok(Server {
            key,
            confined,
            requests,
            replies,
            err_thread: Some(err_thread),
            files: 0,
        })
    }

    /// Wait for the answer to the file sent, until `deadline`. A reader that answered whole
    /// and may read more waits for its next file; any other is ended.
    pub(super) fn finish(self, deadline: Instant) -> Served {
        let reply = self
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let reader = self.confined.id();
        let reply = match reply {
            Ok(reply) => reply,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return self.ended(Received::default(), deadline, true);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return self.ended(Received::default(), deadline, false);
            }
        };
        let received = &reply.0;
        if received.answer.is_none() && !received.over_cap {
            return self.ended(reply.0, deadline, false);
        }
        // More than the parent takes, a refusal, a large answer, many files: ended.
        let keep = !received.over_cap
            && matches!(received.answer, Some(Ok(_)))
            && received.taken <= SERVED_MAX_ANSWER
            && self.files < SERVED_MAX_FILES;
        if keep {
            self.idle();
        } else {
            self.end();
        }
        Served::Answered { reply, reader }
    }

    /// It ended before its answer, or is ended now (`timed_out`): how, and what it said.
    fn ended(mut self, received: Received, deadline: Instant, timed_out: bool) -> Served {
        let status = if timed_out {
            self.confined.kill();
            None
        } else {
            super::wait_exit(&mut self.confined, deadline)
        };
        let err = self
            .err_thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        Served::Ended {
            status,
            received,
            err,
            confined: Box::new(self.confined),
        }
    }

    /// Back among the idle readers (the oldest idle one ended when there are too many).
    fn idle(self) {
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(self);
        if idle.len() > IDLE_MAX {
            idle.remove(0).end();
        }
    }

    /// End it now (reading or idle).
    pub(super) fn end(mut self) {
        self.confined.kill();
    }
}

/// End every reader waiting for a file (the daemon's burst is over; they would hold their
/// memory until the next).
pub fn end_idle() {
    let idle = std::mem::take(&mut *IDLE.lock().unwrap_or_else(|e| e.into_inner()));
    for server in idle {
        server.end();
    }
}

fn write_request(stdin: &mut impl Write, path: &Path) -> std::io::Result<()> {
    let path = path.to_str().unwrap_or_default().as_bytes();
    let len = u32::try_from(path.len()).map_err(std::io::Error::other)?;
    stdin.write_all(&len.to_le_bytes())?;
    stdin.write_all(path)?;
    stdin.flush()
}

/// The next request on the child's stdin: None at its end (or a request it cannot take).
fn read_request(stdin: &mut impl Read) -> Option<PathBuf> {
    let mut len = [0u8; 4];
    stdin.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len);
    if len > MAX_REQUEST {
        return None;
    }
    let mut path = vec![0u8; len as usize];
    stdin.read_exact(&mut path).ok()?;
    String::from_utf8(path).ok().map(PathBuf::from)
}

/// Entry point of a reader that stays up: confine itself, then answer each file asked for,
/// until its stdin ends. The exit code. `confined`: the parent puts it in a Job Object
/// (Windows) before it sends the first request.
pub fn serve_main(limits: &Limits, fault: Option<&str>, confined: bool) -> i32 {
    if !(cfg!(windows) && confined) {
        crate::sandbox::child_start(limits.reader_memory_mb, false);
    }
    crate::memory::keep_for_reuse();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    while let Some(path) = read_request(&mut stdin) {
        let code = super::answer(&path, limits, fault, &mut stdout);
        if code != 0 {
            return code;
        }
        // A large workbook's memory goes back before the next file; a small one's is kept.
        crate::memory::hand_back();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_end_the_reader() {
        let mut buf = Vec::new();
        write_request(&mut buf, Path::new("/tmp/单位0001/a b.xlsx")).unwrap();
        write_request(&mut buf, Path::new("c.xlsx")).unwrap();
        let mut r = buf.as_slice();
        assert_eq!(
            read_request(&mut r),
            Some(PathBuf::from("/tmp/单位0001/a b.xlsx"))
        );
        assert_eq!(read_request(&mut r), Some(PathBuf::from("c.xlsx")));
        assert_eq!(read_request(&mut r), None, "the end of stdin ends it");
        // Cut short, too long, not UTF-8.
        assert_eq!(read_request(&mut &buf[..6]), None);
        let long = (MAX_REQUEST + 1).to_le_bytes();
        assert_eq!(read_request(&mut &long[..]), None);
        let bad = [2u8, 0, 0, 0, 0xff, 0xfe];
        assert_eq!(read_request(&mut &bad[..]), None);
    }
}
