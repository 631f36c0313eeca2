/* SPDX-License-Identifier: MIT */
/*
 * loop_thread.h - a libuv loop on a thread of its own (see loop_thread.c).
 */
#ifndef MVM_RUNTIME_LOOP_THREAD_H
#define MVM_RUNTIME_LOOP_THREAD_H

#include <pthread.h>
#include <stdbool.h>

#include <uv.h>

/**
 * struct loop_thread - an event loop and the thread running it
 * @loop:	the loop (its handles are touched on @thread only)
 * @wake:	uv_async handle: any thread wakes the loop with uv_async_send(&@wake); its
 *		callback gets the owner through @wake.data
 * @thread:	the thread, while @started
 * @started:	loop_thread_start() succeeded and loop_thread_join() has not run
 */
struct loop_thread {
	uv_loop_t loop;
	uv_async_t wake;
	pthread_t thread;
	bool started;
};

int loop_thread_start(struct loop_thread *lt, uv_async_cb wake_cb, void *data);
bool loop_thread_is_current(const struct loop_thread *lt);
void loop_thread_end(struct loop_thread *lt);
void loop_thread_join(struct loop_thread *lt);

#endif
