//! A real SMTP server for the mail tests: Debian's aiosmtpd (python3-aiosmtpd, which belongs
//! to /usr/bin/python3) on 127.0.0.1 and a free port, writing what it receives into a Maildir;
//! and the received (or .eml) messages parsed with mail-parser. In the Windows run the same
//! server is the Rust one of `loopback.rs` (a Windows program cannot start /usr/bin/python3).

#![allow(dead_code)]

#[cfg(windows)]
mod loopback;

use mail_parser::{MessageParser, MimeHeaders};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

/// In a handler's arguments: the server's control folder (see [`Server::start_holding`]).
const CONTROL: &str = "{control}";

/// Whether aiosmtpd can run here. Without it the tests are skipped with a notice — except
/// under CI (env `CI` set), where its absence is a failure.
pub fn available(test: &str) -> bool {
    if cfg!(windows) {
        // The loopback server in this process.
        return true;
    }
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: aiosmtpd is missing ({PYTHON} -m aiosmtpd); install python3-aiosmtpd");
        }
        eprintln!(
            "SKIPPED {test}: aiosmtpd is not installed ({PYTHON} -m aiosmtpd); apt-get install python3-aiosmtpd"
        );
    }
    ok
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// The SMTP server, stopped when dropped.
pub struct Server {
    pub port: u16,
    pub maildir: PathBuf,
    /// The aiosmtpd handler class and its arguments after the Maildir.
    handler: (String, Vec<String>),
    /// Where a holding server says which messages it holds, and the test releases them.
    control: PathBuf,
    child: Option<Child>,
    #[cfg(windows)]
    loopback: Option<loopback::Loopback>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server on a new free port.
    pub fn start() -> Server {
        Server::start_on(free_port())
    }

    /// A server on `port` (e.g. one a test used while the server was down).
    pub fn start_on(port: u16) -> Server {
        Server::start_handler(port, "aiosmtpd.handlers.Mailbox", &[])
    }

    /// A server that holds each message at the end of DATA — received, not yet answered —
    /// until [`Server::release`] (tests/smtp/handlers.py): while it holds one, the sender is
    /// known to be in the middle of sending it.
    pub fn start_holding(port: u16) -> Server {
        Server::start_handler(port, "handlers.HoldingMailbox", &[CONTROL])
    }

    /// A server that refuses (550) every recipient whose address begins with `prefix`.
    pub fn start_refusing(prefix: &str) -> Server {
        Server::start_handler(free_port(), "handlers.PickyMailbox", &[prefix])
    }

    /// A server that answers every message with a failure — `mode` "4xx" (451) or "5xx"
    /// (554) — until [`Server::accept`] (tests/smtp/handlers.py).
    pub fn start_faulty(mode: &str) -> Server {
        Server::start_handler(free_port(), "handlers.FaultyMailbox", &[CONTROL, mode])
    }

    /// Let a faulty server take every message from now on.
    pub fn accept(&self) {
        std::fs::write(self.control.join("accept"), b"").unwrap();
    }

    /// How many messages a faulty server has refused.
    pub fn refused(&self) -> usize {
        self.count_control("refused-")
    }

    /// `args` may name [`CONTROL`], which stands for the server's control folder.
    fn start_handler(port: u16, class: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        let control = dir.path().join("control");
        std::fs::create_dir(&control).unwrap();
        let mut server = Server {
            port,
            maildir,
            handler: (
                class.to_string(),
                args.iter()
                    .map(|&a| {
                        if a == CONTROL {
                            control.to_string_lossy().to_string()
                        } else {
                            a.to_string()
                        }
                    })
                    .collect(),
            ),
            control,
            child: None,
            #[cfg(windows)]
            loopback: None,
            _dir: dir,
        };
        server.spawn();
        server
    }

    #[cfg(windows)]
    fn spawn(&mut self) {
        self.loopback = Some(loopback::Loopback::start(
            self.port,
            &self.maildir,
            &self.handler.0,
            &self.handler.1,
        ));
    }

    #[cfg(not(windows))]
    fn spawn(&mut self) {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("smtp");
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("-c")
            .arg(&self.handler.0)
            .arg(&self.maildir)
            .args(&self.handler.1)
            .env("PYTHONPATH", here)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Wait until a holding server holds its `n`-th message: `sender`, the process sending
    /// it, is then in the middle of sending it. Fails if `sender` ends first.
    pub fn wait_until_held(&self, n: usize, sender: &mut Child) {
        let start = Instant::now();
        while self.held() < n {
            if let Some(status) = sender.try_wait().unwrap() {
                panic!("the sender ended ({status}) before message {n} reached the server");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "message {n} never reached the server"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many messages a holding server has received (held, or released since).
    pub fn held(&self) -> usize {
        self.count_control("held-")
    }

    fn count_control(&self, prefix: &str) -> usize {
        std::fs::read_dir(&self.control)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
            .count()
    }

    /// Let a holding server answer every message it holds, and every later one at once.
    pub fn release(&self) {
        std::fs::write(self.control.join("release"), b"").unwrap();
    }

    /// Every message received so far, in the order of arrival.
    pub fn received(&self) -> Vec<Mail> {
        read_dir_mails(&self.maildir.join("new"), "")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The messages (files ending in `suffix`) in a folder, oldest first.
pub fn read_dir_mails(dir: &Path, suffix: &str) -> Vec<Mail> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
                .map(|p| (p.metadata().and_then(|m| m.modified()).unwrap(), p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| {
            let mut m = Mail::parse(&std::fs::read(&p).unwrap());
            m.file = p;
            m
        })
        .collect()
}

/// A parsed message.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub file: PathBuf,
    pub subject: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub message_id: String,
    pub body: String,
    /// (file name, bytes).
    pub attachments: Vec<(String, Vec<u8>)>,
    /// Names of the top-level headers, as written.
    pub header_names: Vec<String>,
    /// Envelope recipients as the server saw them (aiosmtpd's X-RcptTo).
    pub rcpt_to: String,
    pub raw: Vec<u8>,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        let msg = MessageParser::default()
            .parse(raw)
            .expect("a parsable message");
        let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        };
        Mail {
            file: PathBuf::new(),
            subject: msg.subject().unwrap_or_default().to_string(),
            from: addrs(msg.from()).join(","),
            to: addrs(msg.to()),
            cc: addrs(msg.cc()),
            bcc: addrs(msg.bcc()),
            message_id: msg.message_id().unwrap_or_default().to_string(),
            body: msg.body_text(0).map(|b| b.to_string()).unwrap_or_default(),
            attachments: msg
                .attachments()
                .map(|a| {
                    (
                        a.attachment_name().unwrap_or_default().to_string(),
                        a.contents().to_vec(),
                    )
                })
                .collect(),
            header_names: msg.headers_raw().map(|(n, _)| n.to_string()).collect(),
            rcpt_to: msg
                .header_raw("X-RcptTo")
                .unwrap_or_default()
                .trim()
                .to_string(),
            raw: raw.to_vec(),
        }
    }
}
