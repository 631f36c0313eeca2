/* SPDX-License-Identifier: MIT */
/*
 * progress.c - one progress line on a terminal for the CLI's long steps.
 *
 * Theory of operation
 * -------------------
 * A long step (booting the guest and waiting for its agent, a first unpack of the guest
 * image, a VPN connect) calls cli_progress_begin() with what it is doing; if stderr is a
 * terminal, a thread redraws "\r<what>... N s" once a second until cli_progress_end()
 * erases the line.  In a script (stderr not a terminal) nothing is drawn and nothing else
 * changes, so logs stay clean.  Messages printed while a line is shown go through
 * cli_progress_note(), which erases the line first (the next tick draws it again); one mutex
 * orders the ticker and the notes.  One progress line at a time: the CLI runs its long steps
 * one after another.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t prog_cond = PTHREAD_COND_INITIALIZER;
static pthread_t prog_thread;
static bool prog_active, prog_stop;
static char prog_what[128];
static struct timespec prog_t0;

/**
 * prog_draw() - draw the line; caller holds prog_lock
 */
static void prog_draw(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	fprintf(stderr, "\r\033[K%s... %ld s", prog_what, (long)(now.tv_sec - prog_t0.tv_sec));
	fflush(stderr);
}

/**
 * prog_main() - the ticker: redraw every second until told to stop
 * @arg:	unused
 *
 * Return: NULL.
 */
static void *prog_main(void *arg)
{
	struct timespec until;

	(void)arg;
	pthread_mutex_lock(&prog_lock);
	while (!prog_stop) {
		prog_draw();
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&prog_cond, &prog_lock, &until);
	}
	pthread_mutex_unlock(&prog_lock);
	return NULL;
}

/**
 * cli_progress_begin() - show "@what... N s" on the terminal until cli_progress_end()
 * @what:	what is going on ("microvm up: starting the VM")
 *
 * Does nothing when stderr is not a terminal, or a line is already shown.
 */
void cli_progress_begin(const char *what)
{
	if (prog_active || !isatty(STDERR_FILENO))
		return;
	snprintf(prog_what, sizeof(prog_what), "%s", what);
	clock_gettime(CLOCK_MONOTONIC, &prog_t0);
	prog_stop = false;
	prog_active = pthread_create(&prog_thread, NULL, prog_main, NULL) == 0;
}

/**
 * cli_progress_end() - stop the ticker and erase its line
 */
void cli_progress_end(void)
{
	if (!prog_active)
		return;
	pthread_mutex_lock(&prog_lock);
	prog_stop = true;
	pthread_cond_signal(&prog_cond);
	pthread_mutex_unlock(&prog_lock);
	pthread_join(prog_thread, NULL);
	prog_active = false;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

/**
 * cli_progress_note() - print a line to stderr without mixing it into the progress line
 * @fmt:	printf format; a newline is added
 */
void cli_progress_note(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&prog_lock);
	if (prog_active)
		fprintf(stderr, "\r\033[K");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (prog_active)
		prog_draw();
	fflush(stderr);
	pthread_mutex_unlock(&prog_lock);
}
