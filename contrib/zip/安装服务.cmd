@echo off
rem tally: make the units' folders, install tally.exe (beside this file) as a Windows service
rem with the plan tally.toml of this folder, and start it. Run as administrator.
rem Stored in UTF-8 in the repository; scripts/release.sh writes it in GBK with CRLF.
setlocal
cd /d "%~dp0"

net session >nul 2>&1
if errorlevel 1 goto not_admin
if not exist "%~dp0tally.toml" goto no_plan

echo [1/3] 按 tally.toml 建立各单位的报送文件夹……
tally.exe --config "%~dp0tally.toml" init
if errorlevel 1 goto failed

echo [2/3] 安装 Windows 服务……
tally.exe --config "%~dp0tally.toml" service install
if errorlevel 1 goto failed

echo [3/3] 启动服务……
tally.exe --config "%~dp0tally.toml" service start
if errorlevel 1 goto failed

tally.exe --config "%~dp0tally.toml" service status
echo.
echo 安装完成：tally 已作为 Windows 服务运行，开机自动启动。
echo 各单位把月报放入本文件夹的 watch-dirs 下本单位的文件夹；总表是 output\master.xlsx。
echo 卸载：以管理员身份运行“卸载服务.cmd”。
pause
exit /b 0

:not_admin
echo 需要管理员权限：请右键单击“安装服务.cmd”，选择“以管理员身份运行”。
pause
exit /b 1

:no_plan
echo 本文件夹中没有 tally.toml：请把压缩包完整解压后，在解压出的文件夹中运行本文件。
pause
exit /b 1

:failed
echo.
echo 安装未完成，原因见上面的提示；需要帮助时请把本窗口的内容发给信息科。
pause
exit /b 1
