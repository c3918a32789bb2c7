@echo off
rem tally: stop and remove the Windows service installed by 安装服务.cmd. The plan, the
rem ledger, the archive, the master and the units' folders in this folder are left as they are.
rem Run as administrator. Stored in UTF-8; scripts/release.sh writes it in GBK with CRLF.
setlocal
cd /d "%~dp0"

net session >nul 2>&1
if errorlevel 1 goto not_admin

echo [1/2] 停止服务……
tally.exe --config "%~dp0tally.toml" service stop
rem A service already stopped is no reason to stop here.

echo [2/2] 卸载服务……
tally.exe --config "%~dp0tally.toml" service uninstall
if errorlevel 1 goto failed

echo.
echo 服务已卸载。本文件夹中的计划 tally.toml、台账 state、存档 archive、总表 output 和各单位的报送文件夹都保留未动。
pause
exit /b 0

:not_admin
echo 需要管理员权限：请右键单击“卸载服务.cmd”，选择“以管理员身份运行”。
pause
exit /b 1

:failed
echo.
echo 卸载未完成，原因见上面的提示；需要帮助时请把本窗口的内容发给信息科。
pause
exit /b 1
