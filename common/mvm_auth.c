// SPDX-License-Identifier: MIT
/*
 * auth.c - the authenticated-transport handshake (see mvm_auth.h for the theory of operation)
 */
#include <errno.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#include <bcrypt.h>
#else
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

/**
 * mvm_auth_mac() - HMAC-SHA256(key, label | port (4 bytes BE) | nh | na)
 * @key:	the shared key
 * @label:	MVM_AUTH_LABEL_AGENT or MVM_AUTH_LABEL_HOST (without its NUL)
 * @port:	the connection's port
 * @nh:		the host's nonce
 * @na:		the agent's nonce
 * @out:	receives the MAC
 *
 * Return: 0 or -EIO when the crypto library fails.
 */
int mvm_auth_mac(const uint8_t key[MVM_AUTH_KEY_LEN], const char *label, uint32_t port,
		 const uint8_t nh[MVM_AUTH_NONCE_LEN], const uint8_t na[MVM_AUTH_NONCE_LEN],
		 uint8_t out[MVM_AUTH_MAC_LEN])
{
	uint8_t msg[64 + 4 + 2 * MVM_AUTH_NONCE_LEN];
	size_t ll = strlen(label), n = 0;
	int ret = -EIO;

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
#ifdef _WIN32
	{
		BCRYPT_ALG_HANDLE alg = NULL;
		BCRYPT_HASH_HANDLE h = NULL;

		if (BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM, NULL,
						BCRYPT_ALG_HANDLE_HMAC_FLAG) == 0 &&
		    BCryptCreateHash(alg, &h, NULL, 0, (PUCHAR)key, MVM_AUTH_KEY_LEN, 0) == 0 &&
		    BCryptHashData(h, msg, (ULONG)n, 0) == 0 &&
		    BCryptFinishHash(h, out, MVM_AUTH_MAC_LEN, 0) == 0)
			ret = 0;
		if (h)
			BCryptDestroyHash(h);
		if (alg)
			BCryptCloseAlgorithmProvider(alg, 0);
	}
#else
	{
		unsigned int ol = 0;

		if (HMAC(EVP_sha256(), key, MVM_AUTH_KEY_LEN, msg, n, out, &ol) &&
		    ol == MVM_AUTH_MAC_LEN)
			ret = 0;
	}
#endif
	mvm_auth_cleanse(msg, sizeof(msg));
	return ret;
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

/** mvm_auth_wipe() - forget the key and the nonces of a finished handshake. */
void mvm_auth_wipe(struct mvm_auth *st)
{
	mvm_auth_cleanse(st, sizeof(*st));
}

/**
 * mvm_auth_host_hello() - start a handshake as the host: the HELLO message
 * @st:		handshake state (initialised here)
 * @key:	the shared key
 * @port:	the port the connection is for
 * @out:	receives HELLO (MVM_AUTH_HELLO_LEN bytes) to send
 *
 * Return: 0 or -EIO (no randomness).
 */
int mvm_auth_host_hello(struct mvm_auth *st, const uint8_t key[MVM_AUTH_KEY_LEN],
			uint32_t port, uint8_t out[MVM_AUTH_HELLO_LEN])
{
	memset(st, 0, sizeof(*st));
	memcpy(st->key, key, MVM_AUTH_KEY_LEN);
	st->port = port;
	if (mvm_auth_random(st->nh, sizeof(st->nh)))
		return -EIO;
	memcpy(out, MVM_AUTH_MAGIC, MVM_AUTH_MAGIC_LEN);
	memcpy(out + MVM_AUTH_MAGIC_LEN, st->nh, MVM_AUTH_NONCE_LEN);
	return 0;
}

/**
 * mvm_auth_host_finish() - check the agent's CHALLENGE and make our PROOF
 * @st:		state from mvm_auth_host_hello()
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
	ret = mvm_auth_mac(st->key, MVM_AUTH_LABEL_AGENT, st->port, st->nh, st->na, mac);
	if (ret)
		return ret;
	if (!mvm_auth_equal(mac, chall + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN, sizeof(mac)))
		ret = -EACCES;
	else
		ret = mvm_auth_mac(st->key, MVM_AUTH_LABEL_HOST, st->port, st->nh, st->na, proof);
	mvm_auth_cleanse(mac, sizeof(mac));
	return ret;
}

/**
 * mvm_auth_agent_init() - start a handshake as the agent
 * @st:		handshake state
 * @key:	the shared key
 * @port:	the port the connection came in on
 */
void mvm_auth_agent_init(struct mvm_auth *st, const uint8_t key[MVM_AUTH_KEY_LEN],
			 uint32_t port)
{
	memset(st, 0, sizeof(*st));
	memcpy(st->key, key, MVM_AUTH_KEY_LEN);
	st->port = port;
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
		ret = mvm_auth_mac(st->key, MVM_AUTH_LABEL_AGENT, st->port, st->nh, st->na,
				   out + MVM_AUTH_MAGIC_LEN + MVM_AUTH_NONCE_LEN);
		if (ret) {
			st->state = -1;
			return ret;
		}
		st->state = 1;
		st->len = 0;
		return MVM_AUTH_SEND;
	}
	ret = mvm_auth_mac(st->key, MVM_AUTH_LABEL_HOST, st->port, st->nh, st->na, mac);
	if (!ret && !mvm_auth_equal(mac, st->buf, sizeof(mac)))
		ret = -EACCES;
	mvm_auth_cleanse(mac, sizeof(mac));
	st->state = ret ? -1 : 2;
	return ret ? ret : MVM_AUTH_DONE;
}
