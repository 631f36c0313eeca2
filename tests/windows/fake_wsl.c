/* SPDX-License-Identifier: MIT */
/*
 * fake_wsl.c - a stand-in for wsl.exe, so the WSL2 backend runs end to end under Wine.
 *
 * State lives in %FAKE_WSL_DIR%:  "imported" (one line per --import: NAME|DIR|TAR),
 * "terminated" (touched by --terminate).
 *   --list --quiet               UTF-16LE with BOM: "Ubuntu" and, once imported, "microvm"
 *   --import N DIR TAR --version 2   records the import; fails if TAR does not exist
 *   -d microvm -- /usr/bin/microvm-agent --transport tcp --listen 0.0.0.0
 *        the agent stand-in: prints "fake-agent: up", serves JSON lines on 127.0.0.1:
 *        %MICROVM_WSL_CONTROL_PORT%; "shutdown" answers ok and exits 100 like the agent
 *   --terminate microvm          records it
 * Anything else: exit 2 with a message.
 */
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>

static char state[MAX_PATH];

static const char *path(const char *name)
{
	static char p[MAX_PATH * 2];

	snprintf(p, sizeof(p), "%s\\%s", state, name);
	return p;
}

static int list(void)
{
	const char *names = GetFileAttributesA(path("imported")) != INVALID_FILE_ATTRIBUTES
				    ? "Ubuntu\r\nmicrovm\r\n" : "Ubuntu\r\n";
	unsigned char buf[128];
	size_t n = 0;

	buf[n++] = 0xff;
	buf[n++] = 0xfe;
	for (; *names; names++) {
		buf[n++] = (unsigned char)*names;
		buf[n++] = 0;
	}
	_setmode(_fileno(stdout), _O_BINARY);
	fwrite(buf, 1, n, stdout);
	return 0;
}

static int import(char **argv)
{
	FILE *f;

	if (GetFileAttributesA(argv[4]) == INVALID_FILE_ATTRIBUTES) {
		printf("fake-wsl: %s: not found\n", argv[4]);
		return 1;
	}
	f = fopen(path("imported"), "a");
	if (!f)
		return 1;
	fprintf(f, "%s|%s|%s\n", argv[2], argv[3], argv[4]);
	fclose(f);
	return 0;
}

static int agent(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *port = getenv("MICROVM_WSL_CONTROL_PORT");
	WSADATA wsa;
	SOCKET ls, c;
	char line[512], reply[600];
	int len, n, quit = 0;

	WSAStartup(MAKEWORD(2, 2), &wsa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((u_short)atoi(port ? port : "1025"));
	ls = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 4)) {
		printf("fake-agent: cannot listen\n");
		return 1;
	}
	printf("fake-agent: up\n");
	fflush(stdout);
	while (!quit) {
		c = accept(ls, NULL, NULL);
		if (c == INVALID_SOCKET)
			return 1;
		for (len = 0; len < (int)sizeof(line) - 1; len++) {
			n = recv(c, line + len, 1, 0);
			if (n <= 0 || line[len] == '\n')
				break;
		}
		line[len] = '\0';
		printf("fake-agent: got %s\n", line);
		fflush(stdout);
		quit = strstr(line, "\"shutdown\"") != NULL;
		snprintf(reply, sizeof(reply), "{\"status\":\"ok\",\"seen\":%d}\n", len);
		send(c, reply, (int)strlen(reply), 0);
		closesocket(c);
	}
	return 100;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("FAKE_WSL_DIR");

	if (!dir)
		return 2;
	snprintf(state, sizeof(state), "%s", dir);
	if (argc == 3 && !strcmp(argv[1], "--list") && !strcmp(argv[2], "--quiet"))
		return list();
	if (argc == 7 && !strcmp(argv[1], "--import") && !strcmp(argv[5], "--version") &&
	    !strcmp(argv[6], "2"))
		return import(argv);
	if (argc == 3 && !strcmp(argv[1], "--terminate")) {
		fclose(fopen(path("terminated"), "w"));
		return 0;
	}
	if (argc == 9 && !strcmp(argv[1], "-d") && !strcmp(argv[2], "microvm") &&
	    !strcmp(argv[3], "--") && !strcmp(argv[4], "/usr/bin/microvm-agent") &&
	    !strcmp(argv[5], "--transport") && !strcmp(argv[6], "tcp") &&
	    !strcmp(argv[7], "--listen") && !strcmp(argv[8], "0.0.0.0"))
		return agent();
	printf("fake-wsl: unexpected arguments (%d)\n", argc);
	return 2;
}
