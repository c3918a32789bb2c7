//! The reader child's confinement, per platform: on Unix an address-space rlimit set by the
//! child itself and a process group of its own (the child a new `tally __read`, or a copy of a
//! caller that runs no other thread); on Windows a Job Object made by the parent
//! (per-process memory limit, kill on job close, the whole job ended at the time limit). Only
//! process plumbing lives here: what is read, and what a failure means, is `read`'s.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};

/// The flag the Windows parent appends to the child's command line: "wait until your stdin
/// closes: by then you are in my job". Without it (run by hand) the child makes its own job.
pub const CONFINED_FLAG: &str = "--confined";

/// A reader child inside its confinement.
pub struct Confined {
    process: Process,
    #[cfg(windows)]
    job: windows::Job,
}

/// How the child came to be.
enum Process {
    /// `tally __read` started anew (every platform; a caller with threads on Unix).
    Spawned(Child),
    /// A copy of the calling process (Unix, a caller with no other thread): no program to load,
    /// no settings to parse again. Its exit status once collected.
    #[cfg(unix)]
    Forked {
        pid: libc::pid_t,
        status: Option<ExitStatus>,
    },
}

/// The child's stdout (its answer) and stderr (what it said when it failed), and its stdin
/// when it takes requests there (a reader that stays up, `crate::read`).
pub struct Pipes {
    pub stdout: Box<dyn io::Read + Send>,
    pub stderr: Box<dyn io::Read + Send>,
    pub stdin: Option<Box<dyn io::Write + Send>>,
}

/// How much of a reader's answer its stdout pipe holds on Linux (its most for a process
/// without privileges; the default is 64 KiB): the child parses on while the parent is busy with
/// the cells before, rather than waiting on a full pipe.
#[cfg(target_os = "linux")]
const ANSWER_PIPE_BYTES: libc::c_int = 1024 * 1024;

/// Widen the pipe at `fd` to [`ANSWER_PIPE_BYTES`] where the system allows (else it stays as
/// it is: only slower).
#[cfg(target_os = "linux")]
fn widen(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ only resizes the pipe's buffer; a refusal changes nothing.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, ANSWER_PIPE_BYTES);
    }
}

impl Pipes {
    fn of(child: &mut Child) -> Pipes {
        #[cfg(target_os = "linux")]
        if let Some(out) = &child.stdout {
            widen(out);
        }
        Pipes {
            stdout: Box::new(child.stdout.take().expect("piped")),
            stderr: Box::new(child.stderr.take().expect("piped")),
            stdin: child
                .stdin
                .take()
                .map(|s| Box::new(s) as Box<dyn io::Write + Send>),
        }
    }
}

impl Confined {
    /// Spawn `cmd` confined to `memory_mb` MiB. Its stdin is the parent's "go" signal on
    /// Windows (closed once the child is in its job); stdout and stderr are piped.
    pub fn spawn(cmd: &mut Command, memory_mb: u64) -> io::Result<(Confined, Pipes)> {
        Self::spawn_with(cmd, memory_mb, false)
    }

    /// [`Confined::spawn`] a child that takes requests on its stdin, piped too. On Windows it
    /// reads nothing before its first request, which comes once it is in its job.
    pub fn spawn_serving(cmd: &mut Command, memory_mb: u64) -> io::Result<(Confined, Pipes)> {
        Self::spawn_with(cmd, memory_mb, true)
    }

    fn spawn_with(
        cmd: &mut Command,
        memory_mb: u64,
        requests: bool,
    ) -> io::Result<(Confined, Pipes)> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        {
            // Its own process group: a Ctrl-C meant for the daemon must not kill the reader
            // and turn the file being read into a false rejection; the daemon finishes the
            // file, then stops. The child caps its own address space (`child_start`).
            let _ = memory_mb;
            std::os::unix::process::CommandExt::process_group(cmd, 0);
            cmd.stdin(if requests {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            let mut child = cmd.spawn()?;
            let pipes = Pipes::of(&mut child);
            Ok((
                Confined {
                    process: Process::Spawned(child),
                },
                pipes,
            ))
        }
        #[cfg(windows)]
        {
            use std::os::windows::process::CommandExt;
            // Its own process group (a console Ctrl-C or Ctrl-Break for the daemon does not
            // reach it), and no console window when the daemon runs as a service.
            const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
            const CREATE_NO_WINDOW: u32 = 0x0800_0000;
            cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
            cmd.arg(CONFINED_FLAG).stdin(Stdio::piped());
            let job = windows::Job::new(memory_mb)?;
            let mut child = cmd.spawn()?;
            if let Err(e) = job.assign(&child) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
            // The child waits for its stdin to close (or, taking requests there, for its first
            // request) before it reads anything, so nothing of a file is parsed outside the job.
            if !requests {
                drop(child.stdin.take());
            }
            let pipes = Pipes::of(&mut child);
            Ok((
                Confined {
                    process: Process::Spawned(child),
                    job,
                },
                pipes,
            ))
        }
    }

    /// Unix, when this process runs no other thread (`tally check`, the first return of
    /// `tally ingest`): run `child` in a copy of this process, its stdout and stderr piped,
    /// in a process group of its own, and it ends with the code `child` returns (101 when it
    /// panics). The copy skips loading the program and its settings again, a few milliseconds
    /// a small return. Its pipes are taken on the calling thread ([`Polled`]): no thread to
    /// start either. None: another thread runs (a copy could inherit a lock it holds), or
    /// this is not Linux: spawn instead.
    #[cfg(unix)]
    pub fn fork(
        child: impl FnOnce(std::fs::File) -> i32,
    ) -> Option<io::Result<(Confined, Polled)>> {
        use std::os::fd::FromRawFd;
        if !single_threaded() {
            return None;
        }
        let started = (|| {
            // Both ends close on exec.
            let (out_r, out_w) = io::pipe()?;
            #[cfg(target_os = "linux")]
            widen(&out_r);
            let (err_r, err_w) = io::pipe()?;
            // SAFETY: no other thread runs (checked above), so the copy holds no lock another
            // thread took; it runs `child` and leaves by `_exit`, never returning here.
            match unsafe { libc::fork() } {
                -1 => Err(io::Error::last_os_error()),
                0 => {
                    use std::os::fd::{AsRawFd, IntoRawFd};
                    // SAFETY: the copy's own descriptors and process group; stdin from
                    // /dev/null, stderr into the parent's pipe (the panic message, an
                    // allocation failure).
                    unsafe {
                        libc::setpgid(0, 0);
                        libc::dup2(err_w.as_raw_fd(), 2);
                        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                        if null >= 0 {
                            libc::dup2(null, 0);
                        }
                    }
                    drop((out_r, err_r, err_w));
                    // SAFETY: `out_w` is owned here and moved into the file.
                    let out = unsafe { std::fs::File::from_raw_fd(out_w.into_raw_fd()) };
                    let code =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(out)))
                            .unwrap_or(101);
                    // SAFETY: ends the copy at once: no destructor, no handler and no buffer of
                    // the parent's runs twice.
                    unsafe { libc::_exit(code) }
                }
                pid => {
                    drop((out_w, err_w));
                    Ok((
                        Confined {
                            process: Process::Forked { pid, status: None },
                        },
                        Polled::new(out_r, err_r),
                    ))
                }
            }
        })();
        Some(started)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        match &self.process {
            Process::Spawned(child) => child.id(),
            #[cfg(unix)]
            Process::Forked { pid, .. } => *pid as u32,
        }
    }

    /// The child's exit status, if it has exited (without waiting).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.process {
            Process::Spawned(child) => child.try_wait(),
            #[cfg(unix)]
            Process::Forked { pid, status } => {
                if status.is_none() {
                    let mut raw = 0;
                    // SAFETY: waits (without blocking) for our own child only.
                    match unsafe { libc::waitpid(*pid, &mut raw, libc::WNOHANG) } {
                        0 => {}
                        -1 => return Err(io::Error::last_os_error()),
                        _ => *status = Some(std::os::unix::process::ExitStatusExt::from_raw(raw)),
                    }
                }
                Ok(*status)
            }
        }
    }

    /// End the child and everything it started (the time limit was reached).
    pub fn kill(&mut self) {
        #[cfg(windows)]
        self.job.terminate();
        match &mut self.process {
            Process::Spawned(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            #[cfg(unix)]
            Process::Forked { pid, status } => {
                if status.is_none() {
                    let mut raw = 0;
                    // SAFETY: signals and reaps our own child, which has not been reaped yet
                    // (its status is not taken), so the pid is still ours.
                    unsafe {
                        libc::kill(*pid, libc::SIGKILL);
                        libc::waitpid(*pid, &mut raw, 0);
                    }
                    *status = Some(std::os::unix::process::ExitStatusExt::from_raw(raw));
                }
            }
        }
    }

    /// Whether the child hit its memory cap: the job's own report on Windows; on every
    /// platform, the message Rust's runtime prints when an allocation fails.
    pub fn out_of_memory(&self, _status: &ExitStatus, stderr: &str) -> bool {
        #[cfg(windows)]
        if self.job.memory_limit_hit() {
            return true;
        }
        stderr.contains("memory allocation of ")
    }
}

/// Whether this process runs one thread (Linux: /proc says so; elsewhere: not known, no).
#[cfg(unix)]
fn single_threaded() -> bool {
    use std::io::Read;
    // Taken in one read (the file is ~1.5 KB; `read_to_string` would take it 32 bytes first).
    let mut status = Vec::with_capacity(8 * 1024);
    std::fs::File::open("/proc/self/status")
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut status))
        .is_ok_and(|_| {
            String::from_utf8_lossy(&status)
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .is_some_and(|n| n.trim() == "1")
        })
}

/// A copied child's stdout, read on the calling thread while its stderr is taken aside (its
/// last [`SAID_MAX`] bytes at least) as it comes, both watched with `poll` until a deadline: past it a
/// read fails with `TimedOut`. (A child started anew has a thread for each pipe instead.)
#[cfg(unix)]
pub struct Polled {
    out: io::PipeReader,
    /// None once it has ended.
    err: Option<io::PipeReader>,
    said: Vec<u8>,
    deadline: Option<std::time::Instant>,
}

/// How much of the end of a child's stderr is kept, at least: an allocation failure is said
/// last.
pub const SAID_MAX: usize = 64 * 1024;

/// Add `more` of what a child says on stderr to `said`, keeping its last [`SAID_MAX`] bytes
/// at least.
fn keep_said(said: &mut Vec<u8>, more: &[u8]) {
    said.extend_from_slice(more);
    if said.len() > 2 * SAID_MAX {
        said.drain(..said.len() - SAID_MAX);
    }
}

/// Everything a child says on `stderr`, read to its end so that the child never blocks on a
/// full pipe; its last [`SAID_MAX`] bytes at least are kept (for a thread of its own).
pub fn said_by(mut stderr: impl io::Read) -> Vec<u8> {
    let (mut said, mut buf) = (Vec::new(), [0u8; 4096]);
    while let Ok(n @ 1..) = stderr.read(&mut buf) {
        keep_said(&mut said, &buf[..n]);
    }
    said
}

#[cfg(unix)]
impl Polled {
    fn new(out: io::PipeReader, err: io::PipeReader) -> Polled {
        Polled {
            out,
            err: Some(err),
            said: Vec::new(),
            deadline: None,
        }
    }

    /// Reads fail with `TimedOut` from `deadline` on.
    pub fn until(&mut self, deadline: std::time::Instant) {
        self.deadline = Some(deadline);
    }

    /// Wait until stdout or stderr has something (or has ended); take what stderr has.
    /// False: the deadline passed first.
    fn wait(&mut self, watch_out: bool) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        loop {
            let left = self
                .deadline
                .map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            let pollfd = |fd: Option<i32>| libc::pollfd {
                // A negative descriptor is skipped by poll.
                fd: fd.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            };
            let mut fds = [
                pollfd(watch_out.then(|| self.out.as_raw_fd())),
                pollfd(self.err.as_ref().map(AsRawFd::as_raw_fd)),
            ];
            // Whole milliseconds, rounded up: poll never returns before the deadline.
            let ms = left.map_or(-1, |l| {
                i32::try_from(l.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            });
            // SAFETY: `fds` is two initialised pollfd structs that live across the call.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0
                && let Some(err) = &mut self.err
            {
                let mut buf = [0u8; 4096];
                match io::Read::read(err, &mut buf) {
                    Ok(0) | Err(_) => self.err = None,
                    Ok(n) => keep_said(&mut self.said, &buf[..n]),
                }
            }
            if fds[0].revents != 0 || (!watch_out && self.err.is_none()) {
                return Ok(true);
            }
        }
    }

    /// What the child said on stderr, to its end (or to the deadline).
    pub fn said(mut self) -> Vec<u8> {
        while self.err.is_some() && self.wait(false).unwrap_or(false) {}
        self.said
    }
}

#[cfg(unix)]
impl io::Read for Polled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.wait(true)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.out.read(buf)
    }
}

/// First thing the child does: confine itself where the parent has not (Unix: the rlimit;
/// Windows: wait until the parent has put it in its job (`confined`, [`CONFINED_FLAG`]), or
/// make one of its own when run by hand).
pub fn child_start(memory_mb: u64, confined: bool) {
    #[cfg(unix)]
    {
        let _ = confined;
        let bytes = memory_mb.saturating_mul(1024 * 1024) as libc::rlim_t;
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit only reads the struct we pass; failure leaves the process uncapped,
        // which the parent's time limit still bounds.
        unsafe {
            libc::setrlimit(libc::RLIMIT_AS, &limit);
        }
    }
    #[cfg(windows)]
    {
        if confined {
            // The parent closes our stdin once we are in its job.
            let _ = io::copy(
                &mut io::Read::take(io::stdin().lock(), 1 << 20),
                &mut io::sink(),
            );
        } else {
            match windows::Job::new(memory_mb).and_then(|job| job.assign_self().map(|_| job)) {
                // Held until exit: closing it would end this process (kill on job close).
                Ok(job) => std::mem::forget(job),
                Err(e) => {
                    tracing::warn!(error = %e, "the reader could not put itself in a job object")
                }
            }
        }
    }
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::os::windows::io::AsRawHandle;
    use std::process::Child;
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::IO::{
        CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
    };
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOB_OBJECT_LIMIT_PROCESS_MEMORY,
        JOBOBJECT_ASSOCIATE_COMPLETION_PORT, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JobObjectAssociateCompletionPortInformation, JobObjectExtendedLimitInformation,
        SetInformationJobObject, TerminateJobObject,
    };
    use windows_sys::Win32::System::SystemServices::{
        JOB_OBJECT_MSG_JOB_MEMORY_LIMIT, JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT,
    };
    use windows_sys::Win32::System::Threading::GetCurrentProcess;

    /// A Job Object with a per-process memory limit that kills its processes when closed,
    /// and a completion port on which it reports a process that hit the limit.
    pub struct Job {
        job: HANDLE,
        port: HANDLE,
    }

    // SAFETY: the two are kernel handles, valid in every thread of the process; `Job` owns
    // them alone (closed once, on drop), and every call on them is thread-safe in Win32.
    unsafe impl Send for Job {}

    impl Job {
        pub fn new(memory_mb: u64) -> io::Result<Job> {
            // SAFETY: plain Win32 calls; every handle is checked and owned by `Job` from here.
            unsafe {
                let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
                if job.is_null() {
                    return Err(io::Error::last_os_error());
                }
                let port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1);
                let this = Job { job, port };
                if port.is_null() {
                    return Err(io::Error::last_os_error());
                }
                let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
                limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_PROCESS_MEMORY
                    | JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
                    | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
                limits.ProcessMemoryLimit =
                    usize::try_from(memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
                if SetInformationJobObject(
                    job,
                    JobObjectExtendedLimitInformation,
                    (&raw const limits).cast(),
                    size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                ) == 0
                {
                    return Err(io::Error::last_os_error());
                }
                let assoc = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
                    CompletionKey: job,
                    CompletionPort: port,
                };
                if SetInformationJobObject(
                    job,
                    JobObjectAssociateCompletionPortInformation,
                    (&raw const assoc).cast(),
                    size_of::<JOBOBJECT_ASSOCIATE_COMPLETION_PORT>() as u32,
                ) == 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(this)
            }
        }

        pub fn assign(&self, child: &Child) -> io::Result<()> {
            // SAFETY: the child's process handle is valid while `child` lives.
            if unsafe { AssignProcessToJobObject(self.job, child.as_raw_handle() as HANDLE) } == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        pub fn assign_self(&self) -> io::Result<()> {
            // SAFETY: the pseudo-handle of the current process is always valid.
            if unsafe { AssignProcessToJobObject(self.job, GetCurrentProcess()) } == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        pub fn terminate(&self) {
            // SAFETY: our own job handle.
            unsafe {
                TerminateJobObject(self.job, 1);
            }
        }

        /// Whether the job reported a process over its memory limit (messages so far).
        pub fn memory_limit_hit(&self) -> bool {
            let mut hit = false;
            loop {
                let (mut msg, mut key, mut ov) = (0u32, 0usize, std::ptr::null_mut::<OVERLAPPED>());
                // SAFETY: out-pointers to locals; a zero timeout never blocks.
                let got =
                    unsafe { GetQueuedCompletionStatus(self.port, &mut msg, &mut key, &mut ov, 0) };
                if got == 0 {
                    return hit;
                }
                hit |= msg == JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT
                    || msg == JOB_OBJECT_MSG_JOB_MEMORY_LIMIT;
            }
        }
    }

    impl Drop for Job {
        fn drop(&mut self) {
            // SAFETY: handles we own; closing the job kills what is left in it.
            unsafe {
                CloseHandle(self.job);
                if !self.port.is_null() {
                    CloseHandle(self.port);
                }
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// Two pipes as a copied child's stdout and stderr: (the parent's side, the child's ends).
    fn pipes() -> (Polled, io::PipeWriter, io::PipeWriter) {
        let ((out, out_w), (err, err_w)) = (io::pipe().unwrap(), io::pipe().unwrap());
        (Polled::new(out, err), out_w, err_w)
    }

    /// The answer is read to its end while far more than a pipe holds is said on stderr
    /// meanwhile (the child never blocks on it), and the end of what was said is kept.
    #[test]
    fn stdout_is_read_while_stderr_is_drained_and_its_tail_kept() {
        let (mut polled, mut out_w, mut err_w) = pipes();
        polled.until(Instant::now() + Duration::from_secs(30));
        let child = std::thread::spawn(move || {
            err_w.write_all(&vec![b'x'; 5 * SAID_MAX]).unwrap();
            err_w
                .write_all(b"memory allocation of 8 bytes failed")
                .unwrap();
            drop(err_w);
            out_w.write_all(&vec![7u8; 3 * SAID_MAX]).unwrap();
        });
        let mut answer = Vec::new();
        polled.read_to_end(&mut answer).unwrap();
        child.join().unwrap();
        assert_eq!(answer, vec![7u8; 3 * SAID_MAX]);
        let said = polled.said();
        assert!(
            said.len() >= SAID_MAX && said.len() <= 2 * SAID_MAX,
            "{}",
            said.len()
        );
        assert!(said.ends_with(b"memory allocation of 8 bytes failed"));
    }

    /// A child that says nothing and never closes its stdout: the read fails at the deadline,
    /// not before, and what it said is taken without waiting past it.
    #[test]
    fn a_read_past_the_deadline_fails_as_timed_out() {
        let (mut polled, _out_w, mut err_w) = pipes();
        err_w.write_all(b"still here").unwrap();
        let started = Instant::now();
        polled.until(started + Duration::from_millis(200));
        let mut buf = [0u8; 16];
        let e = polled.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(polled.said(), b"still here");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    /// A copy of a process made while another thread runs could hold a lock that thread
    /// took, forever: such a process starts a new program instead.
    #[test]
    fn a_process_running_another_thread_is_not_copied() {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _ = stopped.recv();
        });
        assert!(!single_threaded());
        assert!(Confined::fork(|_| 0).is_none());
        drop(stop);
        other.join().unwrap();
    }
}
