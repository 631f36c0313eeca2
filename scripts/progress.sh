# progress.sh - a progress line on a terminal for long build steps (sourced, not run).
#
# progress LABEL CMD...   run CMD (a command or a shell function); while it runs, if stderr
#                         is a terminal, redraw "LABEL... N s" on one line every second and
#                         erase it at the end.  Not on a terminal (scripts, CI logs): CMD just
#                         runs, nothing is drawn.  Returns CMD's exit status (set -e safe).
#
# Used by guest/kernel/build.sh and guest/image/build.sh.

progress() {
	progress_label=$1
	shift
	if [ ! -t 2 ]; then
		"$@"
		return
	fi
	progress_st=$(mktemp)
	(
		set +e
		"$@"
		echo $? >"$progress_st"
	) &
	progress_pid=$!
	progress_t0=$(date +%s)
	while [ ! -s "$progress_st" ]; do
		printf '\r\033[K%s... %s s' "$progress_label" $(($(date +%s) - progress_t0)) >&2
		sleep 1
	done
	wait "$progress_pid" || true
	printf '\r\033[K' >&2
	progress_rc=$(cat "$progress_st")
	rm -f "$progress_st"
	return "$progress_rc"
}
