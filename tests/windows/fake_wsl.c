/* SPDX-License-Identifier: MIT */
/*
 * fake_wsl.c - a wsl.exe double that behaves like the real one, so the WSL2 backend runs
 * end to end under Wine with the real Linux agent (Wine can start Linux programs).
 *
 * What it emulates (docs/windows.md lists what it does not):
 *   --list --quiet          the registered distros, one per line, CRLF, UTF-16LE without
 *                           BOM; none registered: the "has no installed distributions"
 *                           text and exit status -1, as wsl.exe
 *   --import N DIR TAR [--version V]   registers N (version 2 unless V is 1), creates
 *                           DIR\ext4.vhdx and unpacks TAR as the distro's file system
 *                           (fails like wsl.exe if N exists, DIR\ext4.vhdx exists or TAR
 *                           is missing)
 *   --unregister N          kills what runs in N, deletes its file system and ext4.vhdx
 *   --terminate|-t N        kills what runs in N
 *   [-d|--distribution N] [-u|--user U] --exec|-e PROG ARG...
 *                           runs PROG in the distro directly
 *   [-d N] [-u U] [-- ] CMDLINE...
 *                           runs the rest of the command line through U's login shell
 *                           from the distro's /etc/passwd, as wsl.exe does: a missing
 *                           shell fails ("execvpe /bin/sh failed 2", status 1)
 *   wsl.exe's own messages are UTF-16LE; a failed command exits with -1 (0xffffffff) and
 *   prints "Error code: Wsl/...", as wsl.exe does; the program's status otherwise.
 *   A program runs chrooted in the distro's file system, in network and mount namespaces
 *   of its own, with WSL's localhost forwarding: only its listeners on 127.0.0.1, 0.0.0.0,
 *   ::1 and :: are reachable on the Windows loopback (wsl_distro.py).
 *
 * FAKE_WSL_MODE makes it a machine that cannot run the appliance, with wsl.exe's texts:
 *   absent    WSL is not installed: every command says so
 *   disabled  the Virtual Machine Platform is off: a WSL2 import or run fails
 *   wsl1      WSL 2's kernel is missing: `--version 2` fails
 *   hang      the WSL service hangs: a program never starts, wsl.exe waits (until killed)
 *
 * FAKE_WSL_NETNS=PATH runs the distro's programs in that Linux network namespace instead of
 * one of their own (wsl_distro.py): the WSL VM's network, with a route out that the test made.
 *
 * State lives in %FAKE_WSL_DIR%: "distros" (NAME|VERSION|DIR lines), fs\NAME\ (the
 * distro's file system), run\NAME\ (pids of its processes), "log" (one line per command,
 * for the tests).  Linux work (tar, chroot, kill) is done by wsl_distro.py next to this
 * program, whose stdio comes over a loopback connection (see there why).
 */
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>
#include <shellapi.h>

#include "runtime/compat.h"
#include "wsl/wsl_cmd.h"

#define WSL_FAIL 0xffffffffu	/* wsl.exe's exit status when it fails itself */

#define FW_PATH	(MAX_PATH * 3 + 16)	/* a UTF-8 path: up to 3 bytes per UTF-16 unit */
#define FW_PATH_W	795		/* FW_PATH - 1: scanf's width for a field of it */
#define FW_STR2(x)	#x
#define FW_STR(x)	FW_STR2(x)
_Static_assert(FW_PATH_W == FW_PATH - 1, "FW_PATH_W");

static char state[MAX_PATH * 3];
static const char *mode = "";

/* path() - @name in the state directory (one of four rotating static buffers) */
static const char *path(const char *name)
{
	static char p[4][FW_PATH];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s\\%s", state, name);
	return p[i];
}

/* say() - wsl.exe's own output: UTF-16LE, lines end in CRLF (@text has LF only) */
static void say(const char *text)
{
	for (; *text; text++) {
		if (*text == '\n')
			fwrite("\r\0", 1, 2, stdout);
		fputc(*text, stdout);
		fputc(0, stdout);
	}
	fflush(stdout);
}

/* note() - one line into the log the tests read: @what and up to three words */
static void note(const char *what, const char *a, const char *b, const char *c)
{
	FILE *f = mvm_fs_fopen(path("log"), "a");

	if (!f)
		return;
	fprintf(f, "%s %s%s%s%s%s\n", what, a, b ? " " : "", b ? b : "", c ? " " : "",
		c ? c : "");
	fclose(f);
}

/* exists() - is there a file or folder at UTF-8 @p? */
static int exists(const char *p)
{
	wchar_t *w = mvm_fs_widen(p);
	DWORD attr = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;

	free(w);
	return attr != INVALID_FILE_ATTRIBUTES;
}

/* unix_path() - Wine's Unix name of a Windows path (static buffer) */
static const char *unix_path(const char *win)
{
	typedef char *(CDECL *fn)(const WCHAR *);
	static char out[MAX_PATH * 3];
	WCHAR w[MAX_PATH];
	fn get = (fn)(void *)GetProcAddress(GetModuleHandleA("kernel32.dll"),
					    "wine_get_unix_file_name");
	char *u;

	if (!get || !MultiByteToWideChar(CP_UTF8, 0, win, -1, w, MAX_PATH))
		return NULL;
	u = get(w);
	if (!u)
		return NULL;
	snprintf(out, sizeof(out), "%s", u);
	HeapFree(GetProcessHeap(), 0, u);
	return out;
}

/* registry: NAME|VERSION|DIR per line */
struct distro {
	char name[64];
	int version;
	char dir[FW_PATH];
};

/* find() - the registration of @name (case-insensitive, as WSL); Return: 1 if found */
static int find(const char *name, struct distro *d)
{
	char line[FW_PATH + 80];
	FILE *f = mvm_fs_fopen(path("distros"), "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (sscanf(line, "%63[^|]|%d|%" FW_STR(FW_PATH_W) "[^\n]", d->name, &d->version, d->dir) == 3 &&
		    !_stricmp(d->name, name))
			found = 1;
	}
	fclose(f);
	return found;
}

/* forget() - drop @name from the registry */
static void forget(const char *name)
{
	char line[FW_PATH + 80], n[64];
	FILE *f = mvm_fs_fopen(path("distros"), "r"), *o;

	if (!f)
		return;
	o = mvm_fs_fopen(path("distros.new"), "w");
	while (o && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^|]", n) != 1 || _stricmp(n, name))
			fputs(line, o);
	fclose(f);
	if (o) {
		fclose(o);
		wchar_t *from = mvm_fs_widen(path("distros.new")), *to = mvm_fs_widen(path("distros"));

		if (from && to)
			MoveFileExW(from, to, MOVEFILE_REPLACE_EXISTING);
		free(from);
		free(to);
	}
}

/* helper() - run wsl_distro.py MODE ARGS with its stdio bridged; Return: its exit status */
static DWORD helper(const char *const *args, int bridge_stdin);

/* not_installed() - what the inbox wsl.exe stub says when WSL is not installed */
static DWORD not_installed(void)
{
	say("The Windows Subsystem for Linux is not installed. You can install by running "
	    "'wsl.exe --install'.\nFor more information please visit https://aka.ms/wslinstall\n");
	return WSL_FAIL;
}

/* vm_platform_off() - WSL 2 cannot create its VM (@where: the failing service step) */
static DWORD vm_platform_off(const char *where)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "Please enable the Virtual Machine Platform Windows feature "
		 "and ensure virtualization is enabled in the BIOS.\nFor information please "
		 "visit https://aka.ms/enablevirtualization\nError code: Wsl/Service/%s/"
		 "CreateVm/HCS/HCS_E_HYPERV_NOT_INSTALLED\n", where);
	say(msg);
	return WSL_FAIL;
}

/* no_such_distro() - wsl.exe's answer for an unknown distribution name */
static DWORD no_such_distro(void)
{
	say("There is no distribution with the supplied name.\nError code: "
	    "Wsl/Service/WSL_E_DISTRO_NOT_FOUND\n");
	return WSL_FAIL;
}

/* list_quiet() - `wsl --list --quiet`: one registered name per line, UTF-16LE */
static DWORD list_quiet(void)
{
	char line[FW_PATH + 80], n[64];
	FILE *f = mvm_fs_fopen(path("distros"), "r");
	int any = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^|]", n) == 1) {
			say(n);
			say("\n");
			any = 1;
		}
	if (f)
		fclose(f);
	if (any)
		return 0;
	say("Windows Subsystem for Linux has no installed distributions.\nDistributions can "
	    "be installed by visiting the Microsoft Store:\nhttps://aka.ms/wslstore\n");
	return WSL_FAIL;
}

/* import() - `wsl --import @name @dir @tar --version @version`, wsl.exe's checks first */
static DWORD import(const char *name, const char *dir, const char *tar, int version)
{
	char vhdx[FW_PATH], root[MAX_PATH * 3], tar_u[MAX_PATH * 3];
	struct distro d;
	const char *u;
	FILE *f;
	DWORD st;

	if (version == 2 && !strcmp(mode, "wsl1")) {
		say("WSL 2 requires an update to its kernel component. For information please "
		    "visit https://aka.ms/wsl2kernel\n");
		return WSL_FAIL;
	}
	if (version == 2 && !strcmp(mode, "disabled"))
		return vm_platform_off("RegisterDistro");
	if (find(name, &d)) {
		say("A distribution with the supplied name already exists. Use --name to choose "
		    "a different name.\nError code: Wsl/Service/RegisterDistro/"
		    "ERROR_ALREADY_EXISTS\n");
		return WSL_FAIL;
	}
	if (!exists(tar)) {
		say("The system cannot find the file specified.\nError code: Wsl/Service/"
		    "RegisterDistro/ERROR_FILE_NOT_FOUND\n");
		return WSL_FAIL;
	}
	mvm_fs_mkdir(dir);
	snprintf(vhdx, sizeof(vhdx), "%s\\ext4.vhdx", dir);
	if (exists(vhdx)) {
		say("The file exists.\nError code: Wsl/Service/RegisterDistro/ERROR_FILE_EXISTS\n");
		return WSL_FAIL;
	}
	u = unix_path(tar);
	if (!u)
		return WSL_FAIL;
	snprintf(tar_u, sizeof(tar_u), "%s", u);
	u = unix_path(path("fs"));
	if (!u)
		return WSL_FAIL;
	snprintf(root, sizeof(root), "%s/%s", u, name);
	{
		const char *args[] = { "import", tar_u, root, NULL };

		st = helper(args, 0);
	}
	if (st) {
		say("The imported file is not a valid tar archive.\nError code: Wsl/Service/"
		    "RegisterDistro/0x8000000d\n");
		return WSL_FAIL;
	}
	f = mvm_fs_fopen(vhdx, "w");
	if (f)
		fclose(f);
	f = mvm_fs_fopen(path("distros"), "a");
	if (!f)
		return WSL_FAIL;
	fprintf(f, "%s|%d|%s\n", name, version, dir);
	fclose(f);
	say("Import in progress, this may take a few minutes.\nThe operation completed "
	    "successfully.\n");
	return 0;
}

/* kill_distro() - what runs in @name dies (wsl --terminate) */
static void kill_distro(const char *name)
{
	char run[MAX_PATH * 3];
	const char *u = unix_path(path("run"));
	const char *args[] = { "terminate", run, NULL };

	if (!u)
		return;
	snprintf(run, sizeof(run), "%s/%s", u, name);
	helper(args, 0);
}

/* unregister() - `wsl --unregister @name`: stop it, delete its file system and disk */
static DWORD unregister(const char *name)
{
	char vhdx[FW_PATH], root[MAX_PATH * 3];
	const char *args[] = { "remove", root, NULL };
	struct distro d;
	const char *u;

	if (!find(name, &d))
		return no_such_distro();
	say("Unregistering.\n");
	kill_distro(d.name);
	u = unix_path(path("fs"));
	if (!u)
		return WSL_FAIL;
	snprintf(root, sizeof(root), "%s/%s", u, d.name);
	helper(args, 0);
	snprintf(vhdx, sizeof(vhdx), "%s\\ext4.vhdx", d.dir);
	mvm_fs_unlink(vhdx);
	forget(d.name);
	say("The operation completed successfully.\n");
	return 0;
}

/* login() - @user's uid and login shell from the distro's /etc/passwd; Return: 1 if found */
static int login(const char *name, const char *user, int *uid, char *shell, size_t size)
{
	char p[FW_PATH + 80], line[512], u[64], sh[256];
	int gid;
	FILE *f;

	snprintf(p, sizeof(p), "%s\\fs\\%s\\etc\\passwd", state, name);
	f = mvm_fs_fopen(p, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (sscanf(line, "%63[^:]:%*[^:]:%d:%d:%*[^:]:%*[^:]:%255s", u, uid, &gid, sh) == 4 &&
		    !strcmp(u, user)) {
			snprintf(shell, size, "%s", sh);
			fclose(f);
			return 1;
		}
	}
	fclose(f);
	return 0;
}

/*
 * run() - a program in distro @name as @user: @exec_argv directly (--exec), else the
 * command line @shell_cmd through the user's login shell.
 */
static DWORD run(const char *name, const char *user, char **exec_argv, const char *shell_cmd)
{
	char root[MAX_PATH * 3], drive[MAX_PATH * 3], run_dir[MAX_PATH * 3], shell[256], uid_s[16];
	const char *args[64];
	struct distro d;
	const char *u;
	int uid, n = 0;

	if (!find(name, &d))
		return no_such_distro();
	if (d.version == 2 && !strcmp(mode, "disabled"))
		return vm_platform_off("CreateInstance");
	if (!strcmp(mode, "hang"))
		for (;;)
			Sleep(1000);
	if (!login(d.name, user, &uid, shell, sizeof(shell))) {
		say("User not found.\nError code: Wsl/Service/CreateInstance/WSL_E_USER_NOT_FOUND\n");
		return WSL_FAIL;
	}
	snprintf(uid_s, sizeof(uid_s), "%d", uid);
	if (!(u = unix_path(path("fs"))))
		return WSL_FAIL;
	snprintf(root, sizeof(root), "%s/%s", u, d.name);
	if (!(u = unix_path("C:\\")))
		return WSL_FAIL;
	snprintf(drive, sizeof(drive), "%s", u);
	if (!(u = unix_path(path("run"))))
		return WSL_FAIL;
	snprintf(run_dir, sizeof(run_dir), "%s/%s", u, d.name);
	args[n++] = "run";
	args[n++] = root;
	args[n++] = drive;
	args[n++] = run_dir;
	args[n++] = uid_s;
	if (exec_argv) {
		for (; *exec_argv && n < 62; exec_argv++)
			args[n++] = *exec_argv;
	} else {
		args[n++] = shell;
		args[n++] = "-c";
		args[n++] = shell_cmd;
	}
	args[n] = NULL;
	return helper(args, 1);
}

/* pump_stdin() - wsl.exe's stdin to the helper's connection, then half-close it */
static DWORD WINAPI pump_stdin(void *arg)
{
	SOCKET c = (SOCKET)(UINT_PTR)arg;
	HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
	char buf[4096];
	DWORD n;

	while (in && in != INVALID_HANDLE_VALUE && ReadFile(in, buf, sizeof(buf), &n, NULL) && n)
		if (send(c, buf, (int)n, 0) != (int)n)
			break;
	shutdown(c, SD_SEND);
	return 0;
}

/*
 * helper() - run wsl_distro.py with @args; its output becomes ours, our stdin its (if
 * @bridge_stdin), over a loopback connection it opens with a one-time token
 */
static DWORD helper(const char *const *args, int bridge_stdin)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char self[MAX_PATH * 3], cmd[8192], token[40], status_w[FW_PATH + 32], status_u[MAX_PATH * 3];
	STARTUPINFOW si = { .cb = sizeof(si) };
	PROCESS_INFORMATION pi;
	wchar_t *wcmd = NULL;
	unsigned char rnd[16];
	int len = sizeof(sa), i, n;
	SOCKET ls, c = INVALID_SOCKET;
	const char *u;
	char *slash;
	DWORD st = WSL_FAIL;
	HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
	FILE *f;

	/* a one-time token, so that only our helper's connection is taken */
	srand(GetTickCount() ^ GetCurrentProcessId());
	for (i = 0; i < 16; i++)
		rnd[i] = (unsigned char)rand();
	for (i = 0; i < 16; i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(status_w, sizeof(status_w), "%s\\status-%lu", state, GetCurrentProcessId());
	mvm_fs_unlink(status_w);
	u = unix_path(state);
	if (!u)
		return WSL_FAIL;
	snprintf(status_u, sizeof(status_u), "%s/status-%lu", u, GetCurrentProcessId());

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&sa, &len))
		return WSL_FAIL;

	{
		wchar_t wself[MAX_PATH];
		DWORD got = GetModuleFileNameW(NULL, wself, MAX_PATH);

		if (!got || got >= MAX_PATH ||
		    !WideCharToMultiByte(CP_UTF8, 0, wself, -1, self, sizeof(self), NULL, NULL))
			return WSL_FAIL;
	}
	slash = strrchr(self, '\\');
	if (!slash)
		return WSL_FAIL;
	*slash = '\0';
	{
		const char *argv[64];
		char prog[MAX_PATH * 3 + 16], script[MAX_PATH * 3], port[8];

		/* python3 by its Unix path; Wine starts a Linux program like a Windows one */
		snprintf(prog, sizeof(prog), "%s\\wsl_distro.py", self);
		if (!(u = unix_path(prog)))
			return WSL_FAIL;
		snprintf(script, sizeof(script), "%s", u);
		snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
		argv[0] = "Z:\\usr\\bin\\python3";
		argv[1] = script;
		argv[2] = port;
		argv[3] = token;
		argv[4] = status_u;
		for (n = 5; *args && n < 63; args++)
			argv[n++] = *args;
		argv[n] = NULL;
		n = wsl_cmdline(cmd, sizeof(cmd), argv);
	}
	wcmd = n < 0 ? NULL : mvm_fs_widen(cmd);
	if (!wcmd || !CreateProcessW(NULL, wcmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
		free(wcmd);
		printf("fake-wsl: cannot start wsl_distro.py\n");
		return WSL_FAIL;
	}
	free(wcmd);
	/* the helper connects within seconds, or something is wrong */
	{
		fd_set rd;
		struct timeval tv = { 20, 0 };
		char got[40];
		int k = 0;

		FD_ZERO(&rd);
		FD_SET(ls, &rd);
		if (select(0, &rd, NULL, NULL, &tv) == 1)
			c = accept(ls, NULL, NULL);
		closesocket(ls);
		if (c == INVALID_SOCKET)
			return WSL_FAIL;
		while (k < 33 && recv(c, got + k, 1, 0) == 1 && got[k] != '\n')
			k++;
		if (k != 32 || memcmp(got, token, 32)) {
			closesocket(c);
			return WSL_FAIL;
		}
	}
	if (bridge_stdin)
		CloseHandle(CreateThread(NULL, 0, pump_stdin, (void *)(UINT_PTR)c, 0, NULL));
	else
		shutdown(c, SD_SEND);
	for (;;) {
		char buf[4096];
		DWORD w;

		n = recv(c, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		WriteFile(out, buf, (DWORD)n, &w, NULL);
	}
	closesocket(c);
	/* the status file is written before the connection closes */
	for (i = 0; i < 100; i++) {
		f = mvm_fs_fopen(status_w, "r");
		if (f) {
			if (fscanf(f, "%lu", &st) != 1)
				st = WSL_FAIL;
			fclose(f);
			mvm_fs_unlink(status_w);
			break;
		}
		Sleep(50);
	}
	return st;
}

/* wsl() - the command: @argv in UTF-8 */
static int wsl(int argc, char **argv)
{
	const char *distro = "microvm", *user = "root";
	char cmdline[8192] = "";
	WSADATA wsa;
	int i, n = 0;

	/* wide, as UTF-8: the state folder may be under a non-ANSI user folder too */
	if (mvm_fs_getenv("FAKE_WSL_DIR", state, sizeof(state)))
		return 2;
	mode = getenv("FAKE_WSL_MODE") ? getenv("FAKE_WSL_MODE") : "";
	_setmode(_fileno(stdout), _O_BINARY);
	WSAStartup(MAKEWORD(2, 2), &wsa);
	mvm_fs_mkdir(path("fs"));
	mvm_fs_mkdir(path("run"));
	if (!strcmp(mode, "absent"))
		return (int)not_installed();

	if (argc == 3 && (!strcmp(argv[1], "--list") || !strcmp(argv[1], "-l")) &&
	    !strcmp(argv[2], "--quiet"))
		return (int)list_quiet();
	if ((argc == 5 || argc == 7) && !strcmp(argv[1], "--import")) {
		int version = 2;

		if (argc == 7) {
			if (strcmp(argv[5], "--version") ||
			    (strcmp(argv[6], "1") && strcmp(argv[6], "2"))) {
				say("Invalid command line argument: --version\n");
				return (int)WSL_FAIL;
			}
			version = atoi(argv[6]);
		}
		note("import", argv[2], argv[3], argv[4]);
		return (int)import(argv[2], argv[3], argv[4], version);
	}
	if (argc == 3 && !strcmp(argv[1], "--unregister")) {
		note("unregister", argv[2], NULL, NULL);
		return (int)unregister(argv[2]);
	}
	if (argc == 3 && (!strcmp(argv[1], "--terminate") || !strcmp(argv[1], "-t"))) {
		struct distro d;

		note("terminate", argv[2], NULL, NULL);
		if (!find(argv[2], &d))
			return (int)no_such_distro();
		kill_distro(d.name);
		say("The operation completed successfully.\n");
		return 0;
	}
	/* running a program: [-d N] [-u U] (--exec PROG ARGS | [--] CMDLINE) */
	for (i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-d") || !strcmp(argv[i], "--distribution")) && i + 1 < argc) {
			distro = argv[++i];
		} else if ((!strcmp(argv[i], "-u") || !strcmp(argv[i], "--user")) && i + 1 < argc) {
			user = argv[++i];
		} else if (!strcmp(argv[i], "-e") || !strcmp(argv[i], "--exec")) {
			if (i + 1 >= argc) {
				say("Invalid command line argument: --exec\n");
				return (int)WSL_FAIL;
			}
			note("exec", distro, user, argv[i + 1]);
			return (int)run(distro, user, argv + i + 1, NULL);
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (argv[i][0] == '-') {
			char msg[300];

			snprintf(msg, sizeof(msg), "Invalid command line argument: %.200s\n", argv[i]);
			say(msg);
			return (int)WSL_FAIL;
		} else {
			break;
		}
	}
	/* the rest, joined with blanks, goes to the shell as it is */
	for (; i < argc && n < (int)sizeof(cmdline); i++)
		n += snprintf(cmdline + n, sizeof(cmdline) - (size_t)n, "%s%s", n ? " " : "",
			      argv[i]);
	note("shell", distro, user, cmdline);
	return (int)run(distro, user, NULL, cmdline);
}

/*
 * main() - wsl.exe takes its command line as UTF-16 (a path under C:\Users\Пётр arrives
 * whole): the arguments from GetCommandLineW(), in UTF-8, not the ANSI argv
 */
int main(void)
{
	wchar_t **wargv;
	char **argv;
	int argc, i, len;

	wargv = CommandLineToArgvW(GetCommandLineW(), &argc);
	argv = wargv ? calloc((size_t)argc + 1, sizeof(*argv)) : NULL;
	if (!argv)
		return 2;
	for (i = 0; i < argc; i++) {
		len = WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, NULL, 0, NULL, NULL);
		argv[i] = len > 0 ? malloc((size_t)len) : NULL;
		if (!argv[i])
			return 2;
		WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, argv[i], len, NULL, NULL);
	}
	LocalFree(wargv);
	return wsl(argc, argv);
}
