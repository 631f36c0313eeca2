// SPDX-License-Identifier: MIT
/*
 * auth.c - the authenticated-transport handshake (see mvm_auth.h for the theory of operation)
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#include <bcrypt.h>
#else
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#endif

#include "mvm_auth.h"

/**
 * mvm_auth_cleanse() - zero memory in a way the compiler cannot drop
 * @p:		memory (keys, nonces, MACs)
 * @n:		its size
 */
void mvm_auth_cleanse(void *p, size_t n)
{
#ifdef _WIN32
	SecureZeroMemory(p, n);
#else
	OPENSSL_cleanse(p, n);
#endif
}

/**
 * mvm_auth_key_from_hex() - the key an auth secret encodes
 * @hex:	MVM_SECRET_HEX_LEN hex characters (either case)
 * @len:	length of @hex
 * @key:	receives the decoded bytes
 *
 * Return: 0, or -EINVAL when @hex is not exactly 64 hex characters.
 */
int mvm_auth_key_from_hex(const char *hex, size_t len, uint8_t key[MVM_AUTH_KEY_LEN])
{
	if (!hex || len != MVM_SECRET_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = hex[i];
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -EINVAL;
		if (i % 2 == 0)
			key[i / 2] = (uint8_t)(v << 4);
		else
			key[i / 2] |= (uint8_t)v;
	}
	return 0;
}

/**
 * mvm_auth_random() - @n bytes from the system's cryptographic random generator
 * @buf:	destination
 * @n:		how many
 *
 * Return: 0 or -EIO.
 */
int mvm_auth_random(void *buf, size_t n)
{
#ifdef _WIN32
	return BCryptGenRandom(NULL, buf, (ULONG)n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0 ? 0
										      : -EIO;
#else
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
#endif
}

#ifdef _WIN32
/**
 * auth_alg() - CNG's HMAC-SHA256 provider, opened once for the process
 *
 * Keyed hashes and their copies must not outlive the provider they were made with, and a
 * handshake's copy may outlive the key it came from (mvm_vsock_set_secret() replaces a key
 * while a connect is under way), so the provider is never closed.  Two threads racing here
 * each open one; the loser closes its own.
 *
 * Return: the provider, or NULL.
 */
static BCRYPT_ALG_HANDLE auth_alg(void)
{
	static PVOID alg;
	BCRYPT_ALG_HANDLE a = InterlockedCompareExchangePointer(&alg, NULL, NULL), prev;

	if (a)
		return a;
	if (BCryptOpenAlgorithmProvider(&a, BCRYPT_SHA256_ALGORITHM, NULL,
					BCRYPT_ALG_HANDLE_HMAC_FLAG) != 0)
		return NULL;
	prev = InterlockedCompareExchangePointer(&alg, a, NULL);
	if (prev) {
		BCryptCloseAlgorithmProvider(a, 0);
		return prev;
	}
	return a;
}
#endif

/**
 * auth_ctx_dup() - a copy of a keyed context, independent of the original
 * @mac:	keyed context (struct mvm_auth_key's or a handshake's)
 *
 * Only reads @mac, so threads may copy one key at the same time.
 *
 * Return: the copy, or NULL (out of memory, or no key).
 */
static void *auth_ctx_dup(const void *mac)
{
	if (!mac)
		return NULL;
#ifdef _WIN32
	{
		BCRYPT_HASH_HANDLE h = NULL;

		if (BCryptDuplicateHash((BCRYPT_HASH_HANDLE)mac, &h, NULL, 0, 0) != 0)
			return NULL;
		return h;
	}
#else
	return EVP_MAC_CTX_dup(mac);
#endif
}

/**
 * auth_ctx_free() - free a keyed context; the library clears the raw key and pads it holds
 * (libcrypto: OPENSSL_secure_clear_free(), EVP_MD_CTX cleansing; CNG: up to CNG)
 * @mac:	context, or NULL
 */
static void auth_ctx_free(void *mac)
{
	if (!mac)
		return;
#ifdef _WIN32
	BCryptDestroyHash((BCRYPT_HASH_HANDLE)mac);
#else
	EVP_MAC_CTX_free(mac);
#endif
}

/**
 * auth_ctx_mac() - HMAC-SHA256 of @msg on a fresh copy of a keyed context, used up
 * @mac:	a fresh copy of the key's context (never used); freed here and set to NULL
 * @msg:	message
 * @n:		its length
 * @out:	receives the MAC
 *
 * Every MAC is computed on its own fresh copy of the key's context, never on a used one
 * started over: restarting a used libcrypto context with EVP_MAC_init(ctx, NULL, 0, NULL)
 * does not reset it on OpenSSL 3.0.0-3.0.2 (openssl#17811), and CNG has no restart at all
 * (a hash is finished once).  A copy is used once: a second MAC on it fails (-EIO).
 *
 * Return: 0 or -EIO (no copy, or the crypto library failed).
 */
static int auth_ctx_mac(void **mac, const uint8_t *msg, size_t n, uint8_t out[MVM_AUTH_MAC_LEN])
{
	void *h = *mac;
	int ret = -EIO;

	if (!h)
		return -EIO;
	*mac = NULL;
#ifdef _WIN32
	if (BCryptHashData(h, (PUCHAR)msg, (ULONG)n, 0) == 0 &&
	    BCryptFinishHash(h, out, MVM_AUTH_MAC_LEN, 0) == 0)
		ret = 0;
#else
	{
		size_t ol = 0;

		if (EVP_MAC_update(h, msg, n) && EVP_MAC_final(h, out, &ol, MVM_AUTH_MAC_LEN) &&
		    ol == MVM_AUTH_MAC_LEN)
			ret = 0;
	}
#endif
	auth_ctx_free(h);
	return ret;
}

/**
 * mvm_auth_key_init() - set a key up for HMAC-SHA256, once for all its handshakes
 * @k:		receives the keyed context (must not hold one: mvm_auth_key_fini() first)
 * @key:	the shared key; the caller wipes its own copy
 *
 * What the context holds: libcrypto's HMAC (OpenSSL 3.0) keeps the hashed inner and outer
 * pads *and a copy of the raw key* (hmac_setkey(): OPENSSL_secure_malloc, which is plain
 * heap when no secure heap is set up, as here), and every EVP_MAC_CTX_dup() copies that raw
 * key too.  Freeing a context clears it (OPENSSL_secure_clear_free() for the key,
 * EVP_MD_CTX cleansing for the pads).  CNG allocates the hash object itself (we pass no
 * buffer), so what it keeps and wiping it on BCryptDestroyHash() are up to CNG.
 *
 * Return: 0; -EBUSY when @k holds a key already (it is left as it was); -ENOMEM or -EIO
 * (the crypto library failed), @k is left without a key then.
 */
int mvm_auth_key_init(struct mvm_auth_key *k, const uint8_t key[MVM_AUTH_KEY_LEN])
{
#ifdef _WIN32
	BCRYPT_ALG_HANDLE alg = auth_alg();
	BCRYPT_HASH_HANDLE h = NULL;

	if (k->mac)
		return -EBUSY;
	if (!alg || BCryptCreateHash(alg, &h, NULL, 0, (PUCHAR)key, MVM_AUTH_KEY_LEN, 0) != 0)
		return -EIO;
	k->mac = h;
	return 0;
#else
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *hmac;
	EVP_MAC_CTX *ctx;
	int ret = 0;

	if (k->mac)
		return -EBUSY;
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	/* the context holds its own reference to the algorithm */
	EVP_MAC_free(hmac);
	if (!ctx)
		return hmac ? -ENOMEM : -EIO;
	if (!EVP_MAC_init(ctx, key, MVM_AUTH_KEY_LEN, params)) {
		EVP_MAC_CTX_free(ctx);
		ret = -EIO;
	} else {
		k->mac = ctx;
	}
	return ret;
#endif
}

/**
 * mvm_auth_key_init_hex() - mvm_auth_key_init() from the auth secret's hex form
 * @k:		receives the keyed context (must not hold one)
 * @hex:	MVM_SECRET_HEX_LEN hex characters (either case)
 * @len:	length of @hex
 *
 * The decoded key is on this function's stack only until it returns (wiped); the keyed
 * context keeps its own copy of it (mvm_auth_key_init()).
 *
 * Return: 0, -EINVAL when @hex is not exactly 64 hex characters, -EBUSY when @k holds a key
 * already, -ENOMEM or -EIO.
 */
int mvm_auth_key_init_hex(struct mvm_auth_key *k, const char *hex, size_t len)
{
	uint8_t key[MVM_AUTH_KEY_LEN];
	int ret;

	if (k->mac)
		return -EBUSY;
	ret = mvm_auth_key_from_hex(hex, len, key);
	if (!ret)
		ret = mvm_auth_key_init(k, key);
	mvm_auth_cleanse(key, sizeof(key));
	return ret;
}

/**
 * mvm_auth_key_fini() - free a key's context (the library clears the key and pads in it)
 * @k:		key; afterwards without a key (again usable with mvm_auth_key_init())
 *
 * Handshakes already started from @k keep working: each has its own copy.
 */
void mvm_auth_key_fini(struct mvm_auth_key *k)
{
	if (!k)
		return;
	auth_ctx_free(k->mac);
	k->mac = NULL;
}

/**
 * auth_mac() - HMAC-SHA256(key, label | port (4 bytes BE) | nh | na)
 * @mac:	a fresh copy of the key's context: used up (auth_ctx_mac())
 * @label:	MVM_AUTH_LABEL_AGENT or MVM_AUTH_LABEL_HOST (without its NUL)
 * @port:	the connection's port
 * @nh:		the host's nonce
 * @na:		the agent's nonce
 * @out:	receives the MAC
 *
 * Return: 0, -EINVAL for a label over 64 bytes, or -EIO when the crypto library fails.
 */
static int auth_mac(void **mac, const char *label, uint32_t port,
		    const uint8_t nh[MVM_AUTH_NONCE_LEN], const uint8_t na[MVM_AUTH_NONCE_LEN],
		    uint8_t out[MVM_AUTH_MAC_LEN])
{
	uint8_t msg[64 + 4 + 2 * MVM_AUTH_NONCE_LEN];
	size_t ll = strlen(label), n = 0;
	int ret;

	if (ll > 64)
		return -EINVAL;
	memcpy(msg, label, ll);
	n = ll;
	msg[n++] = (uint8_t)(port >> 24);
	msg[n++] = (uint8_t)(port >> 16);
	msg[n++] = (uint8_t)(port >> 8);
	msg[n++] = (uint8_t)port;
	memcpy(msg + n, nh, MVM_AUTH_NONCE_LEN);
	n += MVM_AUTH_NONCE_LEN;
	memcpy(msg + n, na, MVM_AUTH_NONCE_LEN);
	n += MVM_AUTH_NONCE_LEN;
	ret = auth_ctx_mac(mac, msg, n, out);
	mvm_auth_cleanse(msg, sizeof(msg));
	return ret;
}

/**
 * mvm_auth_mac() - HMAC-SHA256(key, label | port (4 bytes BE) | nh | na), one-off
 * @k:		the shared key (mvm_auth_key_init())
 * @label:	MVM_AUTH_LABEL_AGENT or MVM_AUTH_LABEL_HOST (without its NUL)
 * @port:	the connection's port
 * @nh:		the host's nonce
 * @na:		the agent's nonce
 * @out:	receives the MAC
 *
 * The MAC a handshake computes, on a copy of @k's context (known-answer tests; a
 * handshake computes it on its own copy).
 *
 * Return: 0, -EINVAL (label over 64 bytes, or @k holds no key), -ENOMEM, or -EIO when the
 * crypto library fails.
 */
int mvm_auth_mac(const struct mvm_auth_key *k, const char *label, uint32_t port,
		 const uint8_t nh[MVM_AUTH_NONCE_LEN], const uint8_t na[MVM_AUTH_NONCE_LEN],
		 uint8_t out[MVM_AUTH_MAC_LEN])
{
	void *mac;

	if (!k || !k->mac)
		return -EINVAL;
	mac = auth_ctx_dup(k->mac);
	if (!mac)
		return -ENOMEM;
	return auth_mac(&mac, label, port, nh, na, out);
}

/**
 * mvm_auth_equal() - compare two byte strings in time independent of their contents
 * @a:		first
 * @b:		second
 * @n:		length of both
 *
 * Return: 1 when equal, 0 otherwise.
 */
int mvm_auth_equal(const void *a, const void *b, size_t n)
{
#ifdef _WIN32
	/* CNG has no compare; the classic accumulate-the-differences loop. */
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(x[i] ^ y[i]);
	return d == 0;
#else
	return CRYPTO_memcmp(a, b, n) == 0;
#endif
}

/**
 * mvm_auth_wipe() - end a handshake: free its copies of the key's context, forget the nonces
 * @st:		handshake state (started or not, or all zero; wiping twice is harmless)
 */
void mvm_auth_wipe(struct mvm_auth *st)
{
	auth_ctx_free(st->mac[0]);
	auth_ctx_free(st->mac[1]);
	mvm_auth_cleanse(st, sizeof(*st));
}

/**
 * auth_start() - a fresh handshake state holding two copies of @k's context, one per MAC
 * @st:		handshake state (initialised here; mvm_auth_wipe() it whatever the result)
 * @k:		the shared key
 * @port:	the port the connection is for
 *
 * Return: 0, -EINVAL (@k holds no key) or -ENOMEM.
 */
static int auth_start(struct mvm_auth *st, const struct mvm_auth_key *k, uint32_t port)
{
	memset(st, 0, sizeof(*st));
	st->port = port;
	if (!k || !k->mac)
		return -EINVAL;
	st->mac[0] = auth_ctx_dup(k->mac);
	st->mac[1] = auth_ctx_dup(k->mac);
	return st->mac[0] && st->mac[1] ? 0 : -ENOMEM;
}

/**
 * mvm_auth_host_start() - start a handshake as the host: take its copies of the key
 * @st:		handshake state (initialised here; mvm_auth_wipe() it whatever the result)
 * @k:		the shared key; only read, and not needed once this returns
 * @port:	the port the connection is for
 *
 * Cheap (two context copies): callers holding a lock over @k call this under it and
 * mvm_auth_host_hello() (which draws the nonce) after releasing it.
 *
 * Return: 0, -EINVAL (@k holds no key) or -ENOMEM.
 */
int mvm_auth_host_start(struct mvm_auth *st, const struct mvm_auth_key *k, uint32_t port)
{
	return auth_start(st, k, port);
}

/**
 * mvm_auth_host_hello() - the HELLO message: draw the host's nonce
 * @st:		state from mvm_auth_host_start()
 * @out:	receives HELLO (MVM_AUTH_HELLO_LEN bytes) to send
 *
 * Return: 0, -EINVAL (@st was not started) or -EIO (no randomness).
 */
int mvm_auth_host_hello(struct mvm_auth *st, uint8_t out[MVM_AUTH_HELLO_LEN])
{
	if (!st->mac[0])
		return -EINVAL;
	if (mvm_auth_random(st->nh, sizeof(st->nh)))
		return -EIO;
	memcpy(out, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN);
	memcpy(out + MVM_AUTH_MAGIC_LEN, st->nh, MVM_AUTH_NONCE_LEN);
	return 0;
}

/**
 * mvm_auth_host_finish() - check the agent's CHALLENGE and make our PROOF
 * @st:		state from mvm_auth_host_start() and mvm_auth_host_hello()
 * @chall:	the MVM_AUTH_CHALLENGE_LEN bytes the agent sent
 * @proof:	receives PROOF (MVM_AUTH_PROOF_LEN bytes) to send, only on success
 *
 * Return: 0; -EPROTO when @chall is not a challenge at all (wrong magic); -EACCES when its
 * MAC is wrong (another key, or not our agent); -EIO when the crypto library fails.
 */
int mvm_auth_host_finish(struct mvm_auth *st, const uint8_t chall[MVM_AUTH_CHALLENGE_LEN],
			 uint8_t proof[MVM_AUTH_PROOF_LEN])
{
	uint8_t mac[MVM_AUTH_MAC_LEN];
	int ret;

	if (memcmp(chall, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN))
		return -EPROTO;
	memcpy(st->na, chall + MVM_AUTH_MAGIC_LEN, MVM_AUTH_NONCE_LEN);
	ret = auth_mac(&st->mac[0], MVM_AUTH_LABEL_AGENT, st->port, st->nh, st->na, mac);
	if (ret)
		return ret;
	if (!mvm_auth_equal(mac, chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN, sizeof(mac)))
		ret = -EACCES;
	else
		ret = auth_mac(&st->mac[1], MVM_AUTH_LABEL_HOST, st->port, st->nh, st->na,
			       proof);
	mvm_auth_cleanse(mac, sizeof(mac));
	return ret;
}

/**
 * mvm_auth_agent_init() - start a handshake as the agent
 * @st:		handshake state (initialised here; mvm_auth_wipe() it whatever the result)
 * @k:		the shared key; only read, and not needed once this returns
 * @port:	the port the connection came in on
 *
 * Return: 0, -EINVAL (@k holds no key) or -ENOMEM; on failure @st is failed already
 * (mvm_auth_agent_want() is 0, input is refused).
 */
int mvm_auth_agent_init(struct mvm_auth *st, const struct mvm_auth_key *k, uint32_t port)
{
	int ret = auth_start(st, k, port);

	if (ret)
		st->state = -1;
	return ret;
}

/**
 * mvm_auth_agent_want() - how many more bytes the current message needs
 * @st:		agent state
 *
 * The caller reads at most this many, so that nothing after the handshake is consumed.
 *
 * Return: bytes, 0 when the handshake is over (done or failed).
 */
size_t mvm_auth_agent_want(const struct mvm_auth *st)
{
	if (st->state == 0)
		return MVM_AUTH_HELLO_LEN - st->len;
	if (st->state == 1)
		return MVM_AUTH_PROOF_LEN - st->len;
	return 0;
}

/**
 * mvm_auth_agent_input() - bytes from the host
 * @st:		agent state
 * @data:	received bytes
 * @n:		how many; at most mvm_auth_agent_want()
 * @out:	receives CHALLENGE when MVM_AUTH_SEND is returned
 *
 * A wrong magic is refused as soon as its first wrong byte arrives, so a client speaking
 * the port's plain protocol is turned away at once.
 *
 * Return: MVM_AUTH_MORE, MVM_AUTH_SEND, MVM_AUTH_DONE; -EPROTO for bytes that are not the
 * handshake (or more than wanted, or input after the end), -EACCES for a wrong PROOF, -EIO
 * when the crypto library fails.  After an error the state stays failed.
 */
int mvm_auth_agent_input(struct mvm_auth *st, const uint8_t *data, size_t n,
			 uint8_t out[MVM_AUTH_CHALLENGE_LEN])
{
	uint8_t mac[MVM_AUTH_MAC_LEN];
	int ret;

	if (n > mvm_auth_agent_want(st) || st->state < 0 || st->state > 1) {
		st->state = -1;
		return -EPROTO;
	}
	if (st->state == 0) {
		for (size_t i = 0; i < n && st->len + i < MVM_AUTH_MAGIC_LEN; i++) {
			if (data[i] != (uint8_t)MVM_AUTH_MAGIC[st->len + i]) {
				st->state = -1;
				return -EPROTO;
			}
		}
	}
	memcpy(st->buf + st->len, data, n);
	st->len += n;
	if (mvm_auth_agent_want(st))
		return MVM_AUTH_MORE;
	if (st->state == 0) {
		memcpy(st->nh, st->buf + MVM_AUTH_MAGIC_LEN, MVM_AUTH_NONCE_LEN);
		if (mvm_auth_random(st->na, sizeof(st->na))) {
			st->state = -1;
			return -EIO;
		}
		memcpy(out, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN);
		memcpy(out + MVM_AUTH_MAGIC_LEN, st->na, MVM_AUTH_NONCE_LEN);
		ret = auth_mac(&st->mac[0], MVM_AUTH_LABEL_AGENT, st->port, st->nh, st->na,
			       out + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN);
		if (ret) {
			st->state = -1;
			return ret;
		}
		st->state = 1;
		st->len = 0;
		return MVM_AUTH_SEND;
	}
	ret = auth_mac(&st->mac[1], MVM_AUTH_LABEL_HOST, st->port, st->nh, st->na, mac);
	if (!ret && !mvm_auth_equal(mac, st->buf, sizeof(mac)))
		ret = -EACCES;
	mvm_auth_cleanse(mac, sizeof(mac));
	st->state = ret ? -1 : 2;
	return ret ? ret : MVM_AUTH_DONE;
}
