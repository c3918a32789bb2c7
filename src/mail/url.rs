//! SMTP server URLs (`smtps://user@host:465`, `smtp+starttls://host:587`, `smtp://host:25`):
//! parsed with the `url` crate, checked against `allow_plain`, shown without a password.
//! Never holds, echoes or logs a password: a URL that carries one is refused, and every
//! message about a URL shows it through [`redact`].

use percent_encoding::percent_decode_str;
use url::{Host, ParseError, Url};

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
        let not_smtp = "not an SMTP URL; write smtps://host:465, smtp+starttls://host:587 or smtp://localhost:25";
        if !url.contains("://") {
            return Err(bad(not_smtp));
        }
        // The URL parser would silently drop these (a pasted line break, a tab): refuse them.
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "an SMTP URL has no spaces or control characters; write %20 for a space in the user name",
            ));
        }
        let parsed = Url::parse(url).map_err(|e| {
            bad(match e {
                ParseError::RelativeUrlWithoutBase => not_smtp,
                ParseError::EmptyHost => "no host",
                ParseError::InvalidPort => "the port is not a number 1..=65535",
                ParseError::InvalidIpv6Address => "the host in [ ] is not an IPv6 address",
                _ => "the host is not a valid host name",
            })
        })?;
        if !matches!(parsed.path(), "" | "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(bad(
                "an SMTP URL has no path or query; write scheme://[user@]host[:port]",
            ));
        }
        // `redact` also catches an empty password (`user:@host`), which `url` drops.
        if parsed.password().is_some() || shown != url {
            return Err(bad(&format!(
                "the password must not be written in the URL; put it in env {} or mail.smtp_password_file",
                crate::settings::env::SMTP_PASSWORD
            )));
        }
        let user = decoded(parsed.username())
            .ok_or_else(|| bad("the user name is not valid percent-encoding"))?;
        let host = match parsed.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Domain(name)) => {
                decoded(name).ok_or_else(|| bad("the host is not valid percent-encoding"))?
            }
            None => String::new(),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = parsed.port();
        let (security, default_port) = match parsed.scheme() {
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
            user: Some(user).filter(|u| !u.is_empty()),
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

/// The percent-decoded text, when every `%` starts a `%XX` escape and the bytes are UTF-8.
fn decoded(s: &str) -> Option<String> {
    let escapes_ok = s.split('%').skip(1).all(|after| {
        after
            .get(..2)
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !escapes_ok {
        return None;
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn smtp_urls_parse_with_their_security() {
        let u = SmtpUrl::parse("smtps://tally%40example.org@mail.example.org").unwrap();
        assert_eq!(
            (u.security, u.port, u.user.as_deref()),
            (Security::Tls, 465, Some("tally@example.org"))
        );
        let u = SmtpUrl::parse("smtp+starttls://mail.example.org").unwrap();
        assert_eq!((u.security, u.port), (Security::StartTls, 587));
        let u = SmtpUrl::parse("smtp://mail.example.org:587").unwrap();
        assert_eq!(u.security, Security::StartTls);
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((u.security, u.port), (Security::Plain, 2525));
        assert!(u.check_plain(false).is_ok());
        let u = SmtpUrl::parse("smtp://[::1]:2525").unwrap();
        assert_eq!(u.host, "::1");
        assert!(u.is_local());
        assert_eq!(u.display(), "smtp://[::1]:2525");
    }

    #[test]
    fn plain_smtp_to_another_host_needs_allow_plain() {
        let u = SmtpUrl::parse("smtp://mail.example.org").unwrap();
        let e = u.check_plain(false).unwrap_err();
        assert!(e.contains("allow_plain"), "{e}");
        assert!(u.check_plain(true).is_ok());
    }

    #[test]
    fn a_password_in_the_url_is_refused() {
        let e = SmtpUrl::parse("smtps://tally:secret@mail.example.org").unwrap_err();
        assert!(e.contains("TALLY_SMTP_PASSWORD"), "{e}");
        assert!(SmtpUrl::parse("http://x").is_err());
        assert!(SmtpUrl::parse("smtp://x:99999").is_err());
        assert!(SmtpUrl::parse("smtp://x/path").is_err());
    }

    #[test]
    fn only_loopback_addresses_and_localhost_are_this_machine() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://127.1.2.3",
            "smtp://localhost:25",
            "smtp://LocalHost.",
            "smtp://[::1]:2525",
            "smtp://[::ffff:127.0.0.1]:25",
        ] {
            let u = SmtpUrl::parse(url).unwrap();
            assert!(u.is_local(), "{url}");
            assert!(u.check_plain(false).is_ok(), "{url}");
        }
        for url in [
            "smtp://127.attacker.example",
            "smtp://127.0.0.1.attacker.example:25",
            "smtp://localhost.attacker.example",
            "smtp://mail.localhost.example",
            "smtp://10.0.0.1",
            "smtp://[::2]",
            "smtp://0x7f.example",
        ] {
            let u = SmtpUrl::parse(url).unwrap();
            assert!(!u.is_local(), "{url}");
            let e = u.check_plain(false).unwrap_err();
            assert!(e.contains("allow_plain"), "{url}: {e}");
        }
    }

    #[test]
    fn what_the_url_parser_would_quietly_change_is_refused() {
        for (url, why) in [
            ("smtps://tally:@mail.example.org", "TALLY_SMTP_PASSWORD"),
            ("smtps://a%zz@mail.example.org", "percent-encoding"),
            ("smtps://a%e9@mail.example.org", "percent-encoding"),
            (" smtps://mail.example.org", "spaces"),
            ("smtps://mail.example.org\n", "spaces"),
            ("smtps://mail.\texample.org", "spaces"),
            ("smtp://", "no host"),
            ("smtp://u@", "no host"),
            ("smtp://[::1", "IPv6"),
            ("smtp://x//", "no path"),
            ("smtp://x?", "no path"),
            ("smtp://x#", "no path"),
            ("smtp://x:+25", "port"),
            ("smtp:/x", "not an SMTP URL"),
            ("1smtp://x", "not an SMTP URL"),
        ] {
            let e = SmtpUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url:?}: {e}");
        }
    }

    #[test]
    fn hosts_and_users_come_back_as_written() {
        let u = SmtpUrl::parse("SMTP+StartTLS://%E7%94%A8%E6%88%B7@邮件.example.org/").unwrap();
        assert_eq!(u.security, Security::StartTls);
        assert_eq!(u.user.as_deref(), Some("用户"));
        assert_eq!(u.host, "邮件.example.org");
        assert_eq!(u.display(), "smtp+starttls://用户@邮件.example.org:587");
        let u = SmtpUrl::parse("smtp://[::ffff:127.0.0.1]:25").unwrap();
        assert_eq!(u.host, "::ffff:127.0.0.1");
        let u = SmtpUrl::parse("smtp://@Mail.Example.org:2525").unwrap();
        assert_eq!((u.user, u.host.as_str()), (None, "Mail.Example.org"));
    }
}
