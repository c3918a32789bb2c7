//! SMTP server URLs (`smtps://user@host:465`, `smtp+starttls://host:587`, `smtp://host:25`):
//! parsed, checked against `allow_plain`, shown without a password.

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No encryption: only to this machine unless `allow_plain`.
    Plain,
    /// STARTTLS, required (`smtp+starttls://`, or `smtp://` on port 587).
    StartTls,
    /// TLS from the first byte (`smtps://`, or `smtp://` on port 465).
    Tls,
}

/// A parsed SMTP URL; it never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub security: Security,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
}

impl SmtpUrl {
    /// Parse `scheme://[user@]host[:port]`; a password in the URL is refused.
    pub fn parse(url: &str) -> Result<SmtpUrl, String> {
        let shown = redact(url);
        let bad = |why: &str| format!("{shown:?}: {why}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not an SMTP URL; write smtps://host:465, smtp+starttls://host:587 or smtp://localhost:25"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad(
                "an SMTP URL has no path or query; write scheme://[user@]host[:port]",
            ));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => {
                if u.contains(':') {
                    return Err(bad(&format!(
                        "the password must not be written in the URL; put it in env {} or mail.smtp_password_file",
                        crate::settings::env::SMTP_PASSWORD
                    )));
                }
                (
                    Some(
                        percent_decode(u)
                            .ok_or_else(|| bad("the user name is not valid percent-encoding"))?,
                    ),
                    h,
                )
            }
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after the host")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number 1..=65535"))?,
            ),
            None => None,
        };
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "smtps" => (Security::Tls, 465),
            "smtp+starttls" | "submission" => (Security::StartTls, 587),
            "smtp" => match port {
                Some(587) => (Security::StartTls, 587),
                Some(465) => (Security::Tls, 465),
                _ => (Security::Plain, 25),
            },
            _ => {
                return Err(bad(
                    "unknown scheme; use smtps:// (TLS, port 465), smtp+starttls:// (port 587) or smtp:// (plain, this machine only)",
                ));
            }
        };
        Ok(SmtpUrl {
            security,
            host,
            port: port.unwrap_or(default_port),
            user: user.filter(|u| !u.is_empty()),
        })
    }

    /// Whether the host is this machine: a loopback IP address (127.0.0.0/8, ::1, or
    /// ::ffff:127.x.y.z), or exactly the name `localhost`. A name that merely begins with
    /// "127." (`127.attacker.example`) is another host.
    pub fn is_local(&self) -> bool {
        let h = self.host.trim_end_matches('.');
        if h.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match h.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
            Ok(std::net::IpAddr::V6(v6)) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Err(_) => false,
        }
    }

    /// Plain SMTP is only for this machine unless the config allows it.
    pub fn check_plain(&self, allow_plain: bool) -> Result<(), String> {
        if self.security == Security::Plain && !self.is_local() && !allow_plain {
            return Err(format!(
                "smtp://{}:{} would send mail (and the password) unencrypted; use smtps:// (port 465) or smtp+starttls:// (port 587), or set mail.allow_plain = true",
                self.host, self.port
            ));
        }
        Ok(())
    }

    /// The URL as shown in logs and messages (it never holds a password).
    pub fn display(&self) -> String {
        let scheme = match self.security {
            Security::Plain => "smtp",
            Security::StartTls => "smtp+starttls",
            Security::Tls => "smtps",
        };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{user}{host}:{}", self.port)
    }
}

/// The text with any password in it replaced by `***`, for messages: whatever follows the
/// first `:` of the user-info (everything before the last `@`, after the scheme's `://` when
/// there is one) is hidden, with or without a scheme (`tally:s3cret@mail.example.org:465`).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
