//! The Windows side of `tally service`: the Service Control Manager calls (install, uninstall,
//! start, stop, status) and the service itself (`service run`): the daemon of `tally watch`,
//! its stop request wired to the daemon's stopper, its log in the plan folder.

use super::{InstallArgs, ServiceCommand};
use crate::cmd::watch::{WatchArgs, serve};
use crate::logging::{LogFormat, Verbosity};
use crate::settings::{Environment, ExitStatus, Settings, UsageError};
use crate::watch::Stopper;
use anyhow::Context as _;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

const SERVICE_TYPE: ServiceType = ServiceType::OWN_PROCESS;
/// Win32 errors the SCM answers with.
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_EXISTS: i32 = 1073;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
const ERROR_ACCESS_DENIED: i32 = 5;

pub fn run(
    config: &Path,
    verbosity: Verbosity,
    command: &ServiceCommand,
) -> anyhow::Result<ExitStatus> {
    match command {
        ServiceCommand::Install(args) => install(config, args),
        ServiceCommand::Uninstall(n) => uninstall(&n.name),
        ServiceCommand::Start(n) => start(&n.name),
        ServiceCommand::Stop(n) => stop(&n.name),
        ServiceCommand::Status(n) => status(&n.name),
        ServiceCommand::Run(n) => dispatch(config, verbosity, &n.name),
    }
}

/// The plan folder's log file: `<plan folder>\logs\tally.log` (one file a day).
pub fn log_file(config: &Path) -> PathBuf {
    config
        .parent()
        .unwrap_or(Path::new("."))
        .join("logs")
        .join("tally.log")
}

/// The Win32 error code inside a windows-service error, if any.
fn win32_code(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

/// A windows-service error with the Win32 error inside it, if any.
fn describe(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) => io.to_string(),
        e => e.to_string(),
    }
}

/// A message for an SCM failure, in Chinese, with what to do.
fn scm_error(name: &str, what: &str, e: windows_service::Error) -> anyhow::Error {
    let hint = match win32_code(&e) {
        Some(ERROR_ACCESS_DENIED) => {
            "：权限不足，请在“以管理员身份运行”的命令提示符中执行".to_string()
        }
        Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            format!("：服务 {name} 未安装（tally service install）")
        }
        _ => format!("：{}", describe(&e)),
    };
    let whose = if name.is_empty() {
        String::new()
    } else {
        format!("服务 {name}：")
    };
    UsageError(format!("{whose}{what}失败{hint}")).into()
}

fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| scm_error("", "连接 Windows 服务管理器", e))
}

fn install(config: &Path, args: &InstallArgs) -> anyhow::Result<ExitStatus> {
    let name = &args.name.name;
    let config = std::path::absolute(config)
        .with_context(|| format!("{}: cannot make the path absolute", config.display()))?;
    // A plan that does not load would only fail at every start: refuse it now.
    Settings::load(&config, None)?;
    let exe = std::env::current_exe().context("cannot find tally.exe's own path")?;
    let password = Environment::read().service_password;
    if args.account.is_some() && password.is_none() {
        return Err(UsageError(format!(
            "--account {}：请先在环境变量 {} 中给出该账户的密码",
            args.account.as_deref().unwrap_or_default(),
            crate::settings::env::SERVICE_PASSWORD
        ))
        .into());
    }
    let info = ServiceInfo {
        name: OsString::from(name),
        display_name: OsString::from(format!("tally 安全培训报表 ({name})")),
        service_type: SERVICE_TYPE,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: vec![
            "--config".into(),
            config.clone().into_os_string(),
            "service".into(),
            "run".into(),
            "--name".into(),
            name.into(),
        ],
        dependencies: vec![],
        account_name: args.account.as_ref().map(OsString::from),
        account_password: args.account.as_ref().and(password.map(OsString::from)),
    };
    let scm = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = scm
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
        )
        .map_err(|e| match win32_code(&e) {
            Some(ERROR_SERVICE_EXISTS) => UsageError(format!(
                "服务 {name} 已经安装；要改设置，请先 tally service uninstall --name {name}"
            ))
            .into(),
            _ => scm_error(name, "安装", e),
        })?;
    let _ = service.set_description(
        "安全生产培训报表：接收各单位报送的台账，校验、记账、更新汇总表并发送回执与提醒（tally watch）",
    );
    // Restarted after a failure: 10 s, then 1 min, then every 5 min; the count resets after a
    // day without failure. A daemon that exits with an error (not only a crash) counts too.
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    // Without them the service still runs: say so, and what to set by hand.
    let recovery = service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(10), restart(60), restart(300)]),
        })
        .and_then(|()| service.set_failure_actions_on_non_crash_failures(true));
    if let Err(e) = recovery {
        eprintln!(
            "tally: 警告：服务 {name} 已安装，但未能设置“失败后自动重启”（{}）；请在“服务”管理工具中该服务的“恢复”页手动设置",
            describe(&e)
        );
    }
    println!(
        "已安装服务 {name}：开机自动启动；方案 {}；账户 {}；日志 {}",
        config.display(),
        args.account.as_deref().unwrap_or("LocalSystem"),
        log_file(&config).display()
    );
    if args.start {
        return start(name);
    }
    println!("启动服务：tally service start --name {name}");
    Ok(ExitStatus::Success)
}

fn uninstall(name: &str) -> anyhow::Result<ExitStatus> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = scm
        .open_service(
            name,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| scm_error(name, "打开", e))?;
    let state = service
        .query_status()
        .map_err(|e| scm_error(name, "查询状态", e))?
        .current_state;
    if state != ServiceState::Stopped {
        request_stop(name, &service)?;
    }
    service.delete().map_err(|e| scm_error(name, "卸载", e))?;
    println!("已卸载服务 {name}（方案、台账和日志都保留在原处）");
    Ok(ExitStatus::Success)
}

fn start(name: &str) -> anyhow::Result<ExitStatus> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = scm
        .open_service(name, ServiceAccess::START | ServiceAccess::QUERY_STATUS)
        .map_err(|e| scm_error(name, "打开", e))?;
    if service
        .query_status()
        .map_err(|e| scm_error(name, "查询状态", e))?
        .current_state
        == ServiceState::Running
    {
        println!("服务 {name} 已在运行");
        return Ok(ExitStatus::Success);
    }
    service
        .start::<&OsStr>(&[])
        .map_err(|e| scm_error(name, "启动", e))?;
    let state = wait_while(
        &service,
        ServiceState::StartPending,
        Duration::from_secs(120),
    )?;
    if state == ServiceState::Running {
        println!("服务 {name} 已启动");
        Ok(ExitStatus::Success)
    } else {
        Err(UsageError(format!(
            "服务 {name} 未能启动（{}）；原因见方案文件夹下 logs\\ 中的日志",
            state_text(state)
        ))
        .into())
    }
}

fn stop(name: &str) -> anyhow::Result<ExitStatus> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = scm
        .open_service(name, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)
        .map_err(|e| scm_error(name, "打开", e))?;
    request_stop(name, &service)?;
    println!("服务 {name} 已停止");
    Ok(ExitStatus::Success)
}

/// Ask the service to stop and wait until it has (it may finish a file and the master first).
fn request_stop(name: &str, service: &windows_service::service::Service) -> anyhow::Result<()> {
    match service.stop() {
        Ok(_) => {}
        Err(e) if win32_code(&e) == Some(ERROR_SERVICE_NOT_ACTIVE) => return Ok(()),
        Err(e) => return Err(scm_error(name, "停止", e)),
    }
    let state = wait_while(service, ServiceState::StopPending, Duration::from_secs(300))?;
    if state != ServiceState::Stopped {
        return Err(UsageError(format!(
            "服务 {name} 在 5 分钟内没有停止（{}）",
            state_text(state)
        ))
        .into());
    }
    Ok(())
}

fn status(name: &str) -> anyhow::Result<ExitStatus> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let service = match scm.open_service(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
    ) {
        Ok(s) => s,
        Err(e) if win32_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            println!("服务 {name}：未安装");
            return Ok(ExitStatus::Failure);
        }
        Err(e) => return Err(scm_error(name, "打开", e)),
    };
    let st = service
        .query_status()
        .map_err(|e| scm_error(name, "查询状态", e))?;
    let pid = st
        .process_id
        .map(|p| format!("，进程 {p}"))
        .unwrap_or_default();
    println!("服务 {name}：{}{pid}", state_text(st.current_state));
    if let Ok(config) = service.query_config() {
        println!("  程序：{}", config.executable_path.display());
        if let Some(account) = config.account_name {
            println!("  账户：{}", account.to_string_lossy());
        }
    }
    Ok(if st.current_state == ServiceState::Running {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn state_text(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Stopped => "已停止",
        ServiceState::StartPending => "正在启动",
        ServiceState::StopPending => "正在停止",
        ServiceState::Running => "正在运行",
        ServiceState::ContinuePending => "正在继续",
        ServiceState::PausePending => "正在暂停",
        ServiceState::Paused => "已暂停",
    }
}

/// Poll the service's state while it is `pending`, at most `limit`; the state it ended in.
fn wait_while(
    service: &windows_service::service::Service,
    pending: ServiceState,
    limit: Duration,
) -> anyhow::Result<ServiceState> {
    let start = Instant::now();
    loop {
        let state = service
            .query_status()
            .map_err(|e| scm_error("", "查询状态", e))?
            .current_state;
        if state != pending || start.elapsed() > limit {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What `service run` hands to the service's main function (the SCM calls it on a thread of
/// its own, with no arguments of ours).
struct Context {
    config: PathBuf,
    verbosity: Verbosity,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// `service run`: connect to the SCM and run the service until it stops.
fn dispatch(config: &Path, verbosity: Verbosity, name: &str) -> anyhow::Result<ExitStatus> {
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let _ = CONTEXT.set(Context { config, verbosity });
    match service_dispatcher::start(name, ffi_service_main) {
        Ok(()) => Ok(ExitStatus::Success),
        Err(e) if win32_code(&e) == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) => {
            Err(UsageError(format!(
                "tally service run 只能由 Windows 服务管理器启动；请用 tally service start --name {name}"
            ))
            .into())
        }
        Err(e) => Err(scm_error(name, "运行", e)),
    }
}

fn service_main(arguments: Vec<OsString>) {
    let name = arguments
        .first()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| super::DEFAULT_NAME.to_string());
    let Some(ctx) = CONTEXT.get() else { return };
    // Until the daemon runs, errors go to the plan folder's log through a logger of their own.
    let log = log_file(&ctx.config);
    let fallback = crate::logging::daemon(ctx.verbosity, LogFormat::Text, Some(&log)).ok();
    let _guard = fallback.as_ref().map(tracing::dispatcher::set_default);
    if let Err(e) = serve_as_service(&name, ctx, &log, fallback.clone()) {
        tracing::error!(service = %name, error = format!("{e:#}"), "the service stopped on an error");
    }
}

/// `log`: the service's logger, for the SCM's thread that delivers stop requests (a tracing
/// default is per thread).
fn serve_as_service(
    name: &str,
    ctx: &Context,
    log: &Path,
    logger: Option<tracing::Dispatch>,
) -> anyhow::Result<()> {
    let stopper: std::sync::Arc<Mutex<(bool, Option<Stopper>)>> = Default::default();
    let status_handle: std::sync::Arc<OnceLock<service_control_handler::ServiceStatusHandle>> =
        Default::default();
    let wait_hint = Duration::from_secs(300);
    let (stopper_h, status_h) = (stopper.clone(), status_handle.clone());
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Some(d) = &logger {
                tracing::dispatcher::with_default(d, || {
                    tracing::info!("stop requested by the service manager")
                });
            }
            if let Some(h) = status_h.get() {
                let _ = h.set_service_status(svc_status(ServiceState::StopPending, 1, wait_hint));
            }
            let mut s = stopper_h.lock().unwrap_or_else(|p| p.into_inner());
            s.0 = true;
            if let Some(stop) = &s.1 {
                stop.stop();
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(name, handler)?;
    let _ = status_handle.set(handle);
    handle.set_service_status(svc_status(
        ServiceState::StartPending,
        1,
        Duration::from_secs(60),
    ))?;

    let outcome = Settings::load(&ctx.config, None).and_then(|settings| {
        let args = WatchArgs {
            once: false,
            mode: None,
            poll_interval: None,
            settle: None,
            log_format: LogFormat::Text,
            log_file: Some(log.to_path_buf()),
            failed_retry: None,
        };
        serve(&settings, ctx.verbosity, &args, |stop| {
            let mut s = stopper.lock().unwrap_or_else(|p| p.into_inner());
            if s.0 {
                stop.stop();
            }
            s.1 = Some(stop);
            let _ = handle.set_service_status(svc_status(ServiceState::Running, 0, Duration::ZERO));
            tracing::info!(service = %name, "running as a Windows service");
        })
    });
    let exit_code = match &outcome {
        Ok(_) => {
            tracing::info!(service = %name, "the service stopped");
            ServiceExitCode::NO_ERROR
        }
        // A service-specific code: the SCM's recovery actions restart it.
        Err(_) => ServiceExitCode::ServiceSpecific(1),
    };
    handle.set_service_status(ServiceStatus {
        exit_code,
        ..svc_status(ServiceState::Stopped, 0, Duration::ZERO)
    })?;
    outcome.map(|_| ())
}

fn svc_status(state: ServiceState, checkpoint: u32, wait_hint: Duration) -> ServiceStatus {
    let controls_accepted = if state == ServiceState::Running {
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
    } else {
        ServiceControlAccept::empty()
    };
    ServiceStatus {
        service_type: SERVICE_TYPE,
        current_state: state,
        controls_accepted,
        exit_code: ServiceExitCode::NO_ERROR,
        checkpoint,
        wait_hint,
        process_id: None,
    }
}
