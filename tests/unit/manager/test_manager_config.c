/* SPDX-License-Identifier: MIT */
/*
 * test_manager_config.c - the SOCKS and manager config structs across header versions
 * (docs/library.md, "ABI rules"): a struct from older headers is shorter and its unknown
 * fields get the library's defaults (never what lies past it in the caller's memory, 0x5a
 * here: used, those bytes would crash or misconfigure); one from newer headers is refused.
 * test_runtime.c does the same for struct mvm_config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "microvm/manager.h"

/* SOCKS config that ends before allow_remote: timeouts, workers, log are the defaults */
static void test_socks_config_from_older_headers(void **state)
{
	const size_t old = offsetof(struct mvm_socks_config, allow_remote);
	struct mvm_socks_config cfg;
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);
	mvm_socks *s;

	(void)state;
	assert_non_null(vs);
	memset(&cfg, 0x5a, sizeof(cfg));
	mvm_socks_config_init_sized(&cfg, old);
	assert_int_equal(cfg.size, old);
	assert_int_equal(cfg.port, MVM_SOCKS_DEFAULT_PORT);
	cfg.port = 0;
	s = mvm_socks_new(&cfg, vs);
	assert_non_null(s);
	assert_int_equal(mvm_socks_start(s), 0);	/* 0x5a5a5a5a workers would not start */
	assert_true(mvm_socks_port(s) > 0);
	mvm_socks_free(s);
	mvm_vsock_free(vs);
}

static void test_socks_config_from_newer_headers(void **state)
{
	struct {
		struct mvm_socks_config cfg;
		uint64_t newer_field;
	} big;
	mvm_vsock *vs = mvm_vsock_new_tcp(NULL);

	(void)state;
	mvm_socks_config_init_sized(&big.cfg, sizeof(big));
	assert_null(mvm_socks_new(&big.cfg, vs));
	assert_non_null(strstr(mvm_last_error(), "struct mvm_socks_config of"));
	assert_non_null(strstr(mvm_last_error(), "newer headers than this libmicrovm"));
	mvm_vsock_free(vs);
}

/*
 * Manager config that ends before socks_generate_secret, pointing to a VM config that ends
 * before cpus: both get defaults past their size (no generated SOCKS secret, no log).
 */
static void test_manager_config_from_older_headers(void **state)
{
	const size_t old = offsetof(struct mvm_manager_config, socks_generate_secret);
	struct mvm_manager_config cfg;
	struct mvm_config vm;
	char user[256], pass[256];
	mvm_manager *m;

	(void)state;
	memset(&cfg, 0x5a, sizeof(cfg));
	memset(&vm, 0x5a, sizeof(vm));
	mvm_manager_config_init_sized(&cfg, old);
	assert_int_equal(cfg.size, old);
	assert_null(cfg.vm);
	assert_null(cfg.socks);
	mvm_config_init_sized(&vm, offsetof(struct mvm_config, cpus));
	vm.backend = MVM_BACKEND_NSBOX;
	cfg.vm = &vm;
	m = mvm_manager_new(&cfg);
	assert_non_null(m);
	mvm_manager_socks_credentials(m, user, pass);
	assert_string_equal(user, "");
	assert_string_equal(pass, "");
	mvm_manager_free(m);
}

static void test_manager_config_from_newer_headers(void **state)
{
	struct {
		struct mvm_manager_config cfg;
		uint64_t newer_field;
	} big;
	struct {
		struct mvm_socks_config cfg;
		uint64_t newer_field;
	} socks;
	struct mvm_manager_config cfg;

	(void)state;
	mvm_manager_config_init_sized(&big.cfg, sizeof(big));
	assert_null(mvm_manager_new(&big.cfg));
	assert_non_null(strstr(mvm_last_error(), "struct mvm_manager_config of"));

	/* the manager's own struct is fine, the SOCKS one it points to is too new */
	mvm_manager_config_init(&cfg);
	mvm_socks_config_init_sized(&socks.cfg, sizeof(socks));
	cfg.socks = &socks.cfg;
	assert_null(mvm_manager_new(&cfg));
	assert_non_null(strstr(mvm_last_error(), "struct mvm_socks_config of"));

	/* not initialised at all */
	memset(&cfg, 0, sizeof(cfg));
	assert_null(mvm_manager_new(&cfg));
	assert_non_null(strstr(mvm_last_error(), "mvm_manager_config_init() first"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socks_config_from_older_headers),
		cmocka_unit_test(test_socks_config_from_newer_headers),
		cmocka_unit_test(test_manager_config_from_older_headers),
		cmocka_unit_test(test_manager_config_from_newer_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
