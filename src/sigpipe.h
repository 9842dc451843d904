/* sigpipe.h - writing to a peer that may be gone (a socket, a command's
 * stdin) must be an error, not SIGPIPE (command.c).  For files that see
 * POSIX's signal types (_GNU_SOURCE or _POSIX_C_SOURCE). */
#ifndef SPONGE_SIGPIPE_H
#define SPONGE_SIGPIPE_H

#include <signal.h>
#include <stdbool.h>

#include "internal.h"

typedef struct sp_pipe_guard {
	sigset_t old;
	bool blocked;
} sp_pipe_guard;
/* Block SIGPIPE in the calling thread. */
SP_HIDDEN void sp_pipe_block(sp_pipe_guard *g);
/* Swallow any SIGPIPE that became pending for the thread meanwhile, and
 * restore its mask. */
SP_HIDDEN void sp_pipe_restore(sp_pipe_guard *g);

#endif
