/* SPDX-License-Identifier: MIT */
/*
 * secret.h - wiping secrets (passwords, SOCKS credentials) from memory after use.
 *
 * explicit_bzero() is memset() that the compiler may not drop as a dead store before free()
 * (on Windows this header maps it to SecureZeroMemory()).
 * The JSON helper wipes one string member of a parsed or built request before cJSON_Delete(),
 * which frees without clearing.  Used by the CLI, the manager and microvm-agent.
 */
#ifndef MVM_SECRET_H
#define MVM_SECRET_H

#include <string.h>

#include <cjson/cJSON.h>

#ifdef _WIN32
#include <windows.h>
/* mingw-w64 has no explicit_bzero(); SecureZeroMemory() is Windows' non-elidable memset */
#define explicit_bzero(p, n) SecureZeroMemory((p), (n))
#endif

/**
 * secret_wipe_json() - clear the string member @key of @obj in place (no-op if absent)
 * @obj:	a cJSON object, or NULL
 * @key:	member name ("password")
 */
static inline void secret_wipe_json(cJSON *obj, const char *key)
{
	cJSON *p = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	if (cJSON_IsString(p) && p->valuestring)
		explicit_bzero(p->valuestring, strlen(p->valuestring));
}

#endif
