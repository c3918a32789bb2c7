//! The reader child's confinement, per platform: on Unix an address-space rlimit set by the
//! child itself and a process group of its own; on Windows a Job Object made by the parent
//! (per-process memory limit, kill on job close, the whole job ended at the time limit). Only
//! process plumbing lives here: what is read, and what a failure means, is `read`'s.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};

/// The flag the Windows parent appends to the child's command line: "wait until your stdin
/// closes: by then you are in my job". Without it (run by hand) the child makes its own job.
pub const CONFINED_FLAG: &str = "--confined";

/// A spawned reader child inside its confinement.
pub struct Confined {
    child: Child,
    #[cfg(windows)]
    job: windows::Job,
}

impl Confined {
    /// Spawn `cmd` confined to `memory_mb` MiB. Its stdin is the parent's "go" signal on
    /// Windows (closed once the child is in its job); stdout and stderr are piped.
    pub fn spawn(cmd: &mut Command, memory_mb: u64) -> io::Result<Confined> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        {
            // Its own process group: a Ctrl-C meant for the daemon must not kill the reader
            // and turn the file being read into a false rejection; the daemon finishes the
            // file, then stops. The child caps its own address space (`child_start`).
            let _ = memory_mb;
            std::os::unix::process::CommandExt::process_group(cmd, 0);
            cmd.stdin(Stdio::null());
            Ok(Confined {
                child: cmd.spawn()?,
            })
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
            // The child waits for its stdin to close before it reads anything, so nothing of
            // the file is parsed outside the job.
            drop(child.stdin.take());
            Ok(Confined { child, job })
        }
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// End the child and everything it started (the time limit was reached).
    pub fn kill(&mut self) {
        #[cfg(windows)]
        self.job.terminate();
        let _ = self.child.kill();
        let _ = self.child.wait();
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
