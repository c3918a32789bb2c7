//! 异常 mail to the bureau about the storage tally writes to: the disk under the ledger, the
//! archive, the master or the drop folders full or read-only. The daemon sends one per
//! episode (`watch::daemon::alarm`); this only composes it.

use crate::config::Config;
use crate::durable::StorageFault;
use crate::ledger::NewMessage;
use serde::Serialize;
use std::path::Path;

/// One storage fault as the bureau is told of it.
#[derive(Debug, Clone)]
pub struct StorageAlarm<'a> {
    /// 数据库, 存档, 总表输出文件夹, 报送文件夹.
    pub folder_label: &'a str,
    pub folder: &'a Path,
    pub fault: StorageFault,
    /// What tally was doing: 接收“西兴街道-2020-05.xlsx”, 生成总表.
    pub doing: &'a str,
    /// The system's own error text (English or the OS's language).
    pub error: &'a str,
    /// When it was first met (a ledger time stamp): part of the message's key.
    pub at: &'a str,
    /// Whether the master is held back too (a file cannot be taken in), or only the master.
    pub files_wait: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    plan: &'a str,
    folder_label: &'a str,
    folder: String,
    fault: &'a str,
    doing: &'a str,
    error: String,
    at: String,
    headline: &'a str,
    consequence: &'a str,
    remedy: &'a str,
}

/// The alert, or None when the plan names no bureau address.
pub fn storage_alert(config: &Config, alarm: &StorageAlarm<'_>) -> Option<NewMessage> {
    if config.mail.bureau.is_empty() {
        return None;
    }
    let ctx = Context {
        plan: &config.plan.title,
        folder_label: alarm.folder_label,
        folder: alarm.folder.display().to_string(),
        fault: alarm.fault.label(),
        doing: alarm.doing,
        error: crate::mail::compose::one_line(alarm.error),
        at: crate::core::calendar::show_stamp(alarm.at),
        headline: if alarm.files_wait {
            "报表暂停入账"
        } else {
            "总表暂停更新"
        },
        consequence: if alarm.files_wait {
            "；新报送的报表暂不入账，总表暂不更新"
        } else {
            "；报表照常入账并发送回执，但总表暂不更新"
        },
        remedy: match alarm.fault {
            StorageFault::Full => "清理该磁盘上不需要的文件，或为其扩容",
            StorageFault::ReadOnly => "请信息管理人员检查该磁盘或共享，恢复为可写",
        },
    };
    Some(super::bureau_alert(
        config,
        format!("alert/storage/{}/{}", alarm.folder.display(), alarm.at),
        None,
        "storage",
        &ctx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fixtures::config_in;

    #[test]
    fn the_alert_names_the_folder_the_fault_and_what_to_do() {
        let c = config_in(Path::new("/base"));
        let alarm = StorageAlarm {
            folder_label: "存档",
            folder: Path::new("/base/archive"),
            fault: StorageFault::Full,
            doing: "接收“西兴街道-2020-05.xlsx”",
            error: "No space left on device (os error 28)",
            at: "2020-07-01T09:00:00+08:00",
            files_wait: true,
        };
        let m = storage_alert(&c, &alarm).expect("the plan has a bureau address");
        assert_eq!(m.subject, "【异常】存档磁盘空间已满，报表暂停入账");
        assert!(m.body.contains("/base/archive"), "{}", m.body);
        assert!(m.body.contains("接收“西兴街道-2020-05.xlsx”"), "{}", m.body);
        assert!(m.body.contains("不会丢失"), "{}", m.body);
        assert!(m.body.contains("清理该磁盘"), "{}", m.body);
        assert_eq!(m.to, c.mail.bureau);
        assert!(
            m.idempotency_key
                .starts_with("alert/storage//base/archive/")
        );
    }
}
