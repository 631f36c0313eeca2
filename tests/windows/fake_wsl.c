/* SPDX-License-Identifier: MIT */
/*
 * fake_wsl.c - a stand-in for wsl.exe, so the WSL2 backend runs end to end under Wine.
 *
 * State lives in %FAKE_WSL_DIR%:  "imported" (one line per --import: NAME|DIR|TAR),
 * "terminated" (touched by --terminate).
 *   --list --quiet               UTF-16LE with BOM: "Ubuntu" and, once imported, "microvm"
 *   --import N DIR TAR --version 2   records the import; fails if TAR does not exist
 *   -d microvm -- /usr/bin/microvm-agent --transport tcp --listen 127.0.0.1
 *        --auth-secret-file /dev/stdin
 *        the agent stand-in: reads the secret line from stdin, prints "fake-agent: up",
 *        serves JSON lines on 127.0.0.1:%MICROVM_WSL_CONTROL_PORT%, each connection after
 *        the authentication handshake (common/mvm_auth.c, CNG here; a connection that
 *        fails it is closed and logged "fake-agent: refused"); "shutdown" answers ok and
 *        exits 100 like the agent
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

#include "mvm_auth.h"

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

/* authenticate() - the agent side of the handshake on @c; Return: 1 when it passed. */
static int authenticate(SOCKET c, const uint8_t *key, uint32_t port)
{
	uint8_t buf[MVM_AUTH_HELLO_LEN], out[MVM_AUTH_CHALLENGE_LEN];
	struct mvm_auth st;
	size_t want;
	int n, r = MVM_AUTH_MORE;

	mvm_auth_agent_init(&st, key, port);
	while ((want = mvm_auth_agent_want(&st)) > 0) {
		n = recv(c, (char *)buf, (int)want, 0);
		if (n <= 0)
			return 0;
		r = mvm_auth_agent_input(&st, buf, (size_t)n, out);
		if (r < 0)
			return 0;
		if (r == MVM_AUTH_SEND)
			send(c, (const char *)out, (int)sizeof(out), 0);
	}
	return r == MVM_AUTH_DONE;
}

static int agent(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *port = getenv("MICROVM_WSL_CONTROL_PORT");
	uint8_t key[MVM_AUTH_KEY_LEN];
	char secret[MVM_SECRET_HEX_LEN + 8];
	WSADATA wsa;
	SOCKET ls, c;
	char line[512], reply[600];
	int len, n, quit = 0;

	_setmode(_fileno(stdin), _O_BINARY);
	if (!fgets(secret, sizeof(secret), stdin) ||
	    mvm_auth_key_from_hex(secret, strcspn(secret, "\r\n"), key)) {
		printf("fake-agent: no secret on stdin\n");
		return 1;
	}
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
		if (!authenticate(c, key, (uint32_t)atoi(port ? port : "1025"))) {
			printf("fake-agent: refused\n");
			fflush(stdout);
			closesocket(c);
			continue;
		}
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
	if (argc == 11 && !strcmp(argv[1], "-d") && !strcmp(argv[2], "microvm") &&
	    !strcmp(argv[3], "--") && !strcmp(argv[4], "/usr/bin/microvm-agent") &&
	    !strcmp(argv[5], "--transport") && !strcmp(argv[6], "tcp") &&
	    !strcmp(argv[7], "--listen") && !strcmp(argv[8], "127.0.0.1") &&
	    !strcmp(argv[9], "--auth-secret-file") && !strcmp(argv[10], "/dev/stdin"))
		return agent();
	printf("fake-wsl: unexpected arguments (%d)\n", argc);
	return 2;
}
