/* handles.c - the handles open in this process, so that a forked child
 * can let go of its parent's connections before it opens its own.
 *
 * SQLite keeps, per process, a table of the locks its connections hold
 * on each file, and takes a POSIX lock only when the table says the
 * process has none.  A child inherits the table but not the locks
 * (fcntl locks are not inherited): its own connection to the spool would
 * find the parent's entries, hold no lock at all, and the parent closing
 * last would remove the write-ahead log it still writes into, so that
 * what it wrote later could be lost.  A child therefore closes every
 * connection it inherited (sp_store_let_go: nothing written, no lock of
 * the parent's touched, since the child holds none) before its first
 * handle of its own, and when it closes an inherited handle. */
#include <pthread.h>

#include "store.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sponge *head;
static unsigned clean_generation; /* no handle of an older one is open */

static void unlink_handle(sponge *sp)
{
	if (sp->open_prev)
		sp->open_prev->open_next = sp->open_next;
	else if (head == sp)
		head = sp->open_next;
	if (sp->open_next)
		sp->open_next->open_prev = sp->open_prev;
	sp->open_prev = sp->open_next = NULL;
}

void sp_handles_add(sponge *sp)
{
	pthread_mutex_lock(&lock);
	unsigned now = sp_fork_generation();
	if (clean_generation != now) { /* the first open since a fork */
		for (sponge *h = head, *next; h; h = next) {
			next = h->open_next;
			if (h->generation != now) {
				sp_store_let_go(h);
				unlink_handle(h);
			}
		}
		clean_generation = now;
	}
	sp->open_prev = NULL;
	sp->open_next = head;
	if (head)
		head->open_prev = sp;
	head = sp;
	pthread_mutex_unlock(&lock);
}

void sp_handles_remove(sponge *sp)
{
	pthread_mutex_lock(&lock);
	if (sp->generation != sp_fork_generation())
		sp_store_let_go(sp);
	if (sp->open_prev || sp->open_next || head == sp)
		unlink_handle(sp);
	pthread_mutex_unlock(&lock);
}
