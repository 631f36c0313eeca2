/* SPDX-License-Identifier: MIT */
/*
 * loop_thread.c - a libuv loop on a thread of its own, for the runtime's portable host code.
 *
 * Theory of operation
 * -------------------
 * The TCP vsock transport (vsock_tcp.c) and the console fan-out (console.c) each run one
 * libuv loop on a thread started when first needed.  Other threads never touch the loop's
 * handles: they change their owner's state under the owner's lock and call
 * uv_async_send(&lt->wake) (thread-safe, never blocks, coalesces), whose callback, on the
 * loop thread, acts on the state.  To end, the owner tells its wake callback to call
 * loop_thread_end(), which closes the wake handle; once the owner's other handles are
 * closed too, uv_run() returns and the thread exits, and loop_thread_join() reaps it and
 * closes the loop.  loop_thread_is_current() lets the owner's functions, when called from
 * one of its own callbacks, act inline instead of waiting for the loop (which would wait
 * for itself).
 */
#include <errno.h>

#include "runtime/loop_thread.h"

/** loop_thread_main() - run the loop until its last handle is closed */
static void *loop_thread_main(void *arg)
{
	struct loop_thread *lt = arg;

	uv_run(&lt->loop, UV_RUN_DEFAULT);
	return NULL;
}

/**
 * loop_thread_start() - create the loop with its wake handle and start the thread
 * @lt:		zeroed, or joined before
 * @wake_cb:	callback of @lt->wake (on the loop thread)
 * @data:	@lt->wake.data
 *
 * Return: 0 (also when already started) or -errno.
 */
int loop_thread_start(struct loop_thread *lt, uv_async_cb wake_cb, void *data)
{
	int rc;

	if (lt->started)
		return 0;
	rc = uv_loop_init(&lt->loop);
	if (rc)
		return rc;	/* libuv errors are -errno values */
	rc = uv_async_init(&lt->loop, &lt->wake, wake_cb);
	if (rc)
		goto err_loop;
	lt->wake.data = data;
	rc = -pthread_create(&lt->thread, NULL, loop_thread_main, lt);
	if (rc)
		goto err_async;
	lt->started = true;
	return 0;
err_async:
	uv_close((uv_handle_t *)&lt->wake, NULL);
	uv_run(&lt->loop, UV_RUN_NOWAIT);	/* let the close finish */
err_loop:
	uv_loop_close(&lt->loop);
	return rc;
}

/** loop_thread_is_current() - whether the caller is @lt's thread */
bool loop_thread_is_current(const struct loop_thread *lt)
{
	return lt->started && pthread_equal(lt->thread, pthread_self());
}

/**
 * loop_thread_end() - on the loop thread (the wake callback): close the wake handle, so that
 * uv_run() returns once the owner's other handles are closed
 */
void loop_thread_end(struct loop_thread *lt)
{
	if (!uv_is_closing((uv_handle_t *)&lt->wake))
		uv_close((uv_handle_t *)&lt->wake, NULL);
}

/**
 * loop_thread_join() - wait for the thread (after its wake callback was told to end) and
 * close the loop; nothing to do if it never started
 */
void loop_thread_join(struct loop_thread *lt)
{
	if (!lt->started)
		return;
	pthread_join(lt->thread, NULL);
	uv_loop_close(&lt->loop);
	lt->started = false;
}
