//! The mail tests' SMTP server where aiosmtpd cannot run: in the Windows run (tally.exe and
//! the tests under Wine cannot start Debian's /usr/bin/python3), a small SMTP server in the
//! test process on 127.0.0.1 does what tests/smtp/handlers.py does — a Maildir like aiosmtpd's
//! Mailbox (with its X-MailFrom / X-RcptTo headers), holding, picky and faulty — so that
//! tally.exe still speaks SMTP over a real socket.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How a server answers, as the classes of handlers.py.
#[derive(Clone, Debug)]
enum Handler {
    Mailbox,
    Holding { control: PathBuf },
    Picky { prefix: String },
    Faulty { control: PathBuf, mode: String },
}

pub struct Loopback {
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loopback {
    /// Listen on 127.0.0.1:`port`; `class` and `args` as aiosmtpd's `-c` takes them.
    pub fn start(port: u16, maildir: &Path, class: &str, args: &[String]) -> Loopback {
        let handler = match class {
            "aiosmtpd.handlers.Mailbox" => Handler::Mailbox,
            "handlers.HoldingMailbox" => Handler::Holding {
                control: PathBuf::from(&args[0]),
            },
            "handlers.PickyMailbox" => Handler::Picky {
                prefix: args[0].to_lowercase(),
            },
            "handlers.FaultyMailbox" => Handler::Faulty {
                control: PathBuf::from(&args[0]),
                mode: args[1].clone(),
            },
            other => panic!("no loopback handler for {other}"),
        };
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP port");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, maildir) = (stop.clone(), maildir.to_path_buf());
        let counter = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, m, c, s) = (
                    handler.clone(),
                    maildir.clone(),
                    counter.clone(),
                    stop2.clone(),
                );
                std::thread::spawn(move || {
                    let _ = session(conn, &h, &m, &c, &s);
                });
            }
        });
        Loopback {
            stop,
            port,
            thread: Some(thread),
        }
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and closes the port.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn session(
    conn: TcpStream,
    handler: &Handler,
    maildir: &Path,
    counter: &AtomicUsize,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = conn.try_clone()?;
    let mut input = BufReader::new(conn);
    let peer = out.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    out.write_all(b"220 localhost tally test SMTP\r\n")?;
    let (mut from, mut rcpt) = (String::new(), Vec::<String>::new());
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let verb = cmd
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let arg = |prefix: &str| {
            cmd.get(prefix.len()..)
                .unwrap_or("")
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_string()
        };
        let reply: String = match verb.as_str() {
            "EHLO" => "250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 HELP".into(),
            "HELO" => "250 localhost".into(),
            "MAIL" => {
                from = arg("MAIL FROM:");
                rcpt.clear();
                "250 OK".into()
            }
            "RCPT" => {
                let to = arg("RCPT TO:");
                match handler {
                    Handler::Picky { prefix } if to.to_lowercase().starts_with(prefix.as_str()) => {
                        format!("550 5.1.1 <{to}>: no such user here")
                    }
                    _ => {
                        rcpt.push(to);
                        "250 OK".into()
                    }
                }
            }
            "DATA" => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut body = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if input.read_until(b'\n', &mut l)? == 0 {
                        return Ok(());
                    }
                    if l == b".\r\n" || l == b".\n" {
                        break;
                    }
                    if l.starts_with(b"..") {
                        l.remove(0);
                    }
                    body.extend_from_slice(&l);
                }
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                match handler {
                    Handler::Holding { control } => {
                        std::fs::write(control.join(format!("held-{n}")), b"")?;
                        while !control.join("release").exists() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        deliver(maildir, n, &peer, &from, &rcpt, &body)?
                    }
                    Handler::Faulty { control, mode } if !control.join("accept").exists() => {
                        let refused = std::fs::read_dir(control)?
                            .filter(|e| {
                                e.as_ref().is_ok_and(|e| {
                                    e.file_name().to_string_lossy().starts_with("refused-")
                                })
                            })
                            .count();
                        std::fs::write(control.join(format!("refused-{}", refused + 1)), b"")?;
                        if mode == "4xx" {
                            "451 4.3.0 mailbox busy, try again later".into()
                        } else {
                            "554 5.7.1 message refused by policy".into()
                        }
                    }
                    _ => deliver(maildir, n, &peer, &from, &rcpt, &body)?,
                }
            }
            "RSET" => {
                from.clear();
                rcpt.clear();
                "250 OK".into()
            }
            "NOOP" => "250 OK".into(),
            "QUIT" => {
                out.write_all(b"221 Bye\r\n")?;
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => "502 Command not implemented".into(),
        };
        out.write_all(reply.as_bytes())?;
        out.write_all(b"\r\n")?;
    }
}

/// Store a message in Maildir/new as aiosmtpd's Mailbox does: its envelope as X- headers
/// first, then the message.
fn deliver(
    maildir: &Path,
    n: usize,
    peer: &str,
    from: &str,
    rcpt: &[String],
    body: &[u8],
) -> std::io::Result<String> {
    let mut msg = format!(
        "X-Peer: {peer}\r\nX-MailFrom: {from}\r\nX-RcptTo: {}\r\n",
        rcpt.join(", ")
    )
    .into_bytes();
    msg.extend_from_slice(body);
    let name = format!("{:020}.{n}.loopback", std::process::id());
    let tmp = maildir.join("tmp").join(&name);
    std::fs::write(&tmp, &msg)?;
    std::fs::rename(&tmp, maildir.join("new").join(&name))?;
    Ok("250 OK".into())
}
