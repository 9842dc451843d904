/* guard.c - the library and fork(): when a process forks, no thread is
 * inside the library.
 *
 * A thread that forks while another one is inside SQLite (or OpenSSL)
 * gives its child a copy of a mutex held by a thread the child does not
 * have: the child's first call into the library waits for ever.  So
 * every entry point that reaches SQLite, OpenSSL or a process-wide state
 * counts itself in (sp_guard_enter) and out; a fork waits, in its
 * prepare handler, until no thread is in, and holds new ones at the door
 * until it is done.  Only the outermost entry of a thread counts (entry
 * points call each other).  The child starts with the gate open and a
 * new generation: handles opened before the fork are the parent's, and
 * the child may only close them (which frees memory and touches nothing
 * the parent uses).
 *
 * The wait is as long as the longest call in progress: a flush in
 * another thread holds a fork back until it ends (each of its steps is
 * bounded by smtp.timeout). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "internal.h"

/* The fast path is two atomic operations: a thread counts itself in,
 * then looks whether a fork has begun (both sequentially consistent, so
 * either the fork sees the thread inside or the thread sees the fork).
 * The mutex and condition are for waiting only. */
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static atomic_uint inside;   /* threads inside the library */
static atomic_bool forking;  /* a fork is waiting or under way */
static unsigned generation;  /* forks survived by this process */
static _Thread_local unsigned depth;
static _Thread_local bool forker; /* this thread's fork closed the gate */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
	if (depth) /* forking from inside the library (a signal handler) */
		return;
	pthread_mutex_lock(&gate);
	atomic_store(&forking, true);
	forker = true;
	while (atomic_load(&inside))
		pthread_cond_wait(&gate_cv, &gate);
	pthread_mutex_unlock(&gate);
}

static void parent(void)
{
	if (!forker)
		return;
	forker = false;
	pthread_mutex_lock(&gate);
	atomic_store(&forking, false);
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate);
}

/* The child has one thread: the gate starts afresh. */
static void child(void)
{
	static const pthread_mutex_t m0 = PTHREAD_MUTEX_INITIALIZER;
	static const pthread_cond_t c0 = PTHREAD_COND_INITIALIZER;
	gate = m0;
	gate_cv = c0;
	atomic_store(&inside, depth ? 1u : 0u);
	atomic_store(&forking, false);
	forker = false;
	generation++;
}

static void install(void) { pthread_atfork(prepare, parent, child); }

/* Counted out: the last one out wakes a fork that waits. */
static void count_out(void)
{
	if (atomic_fetch_sub(&inside, 1) == 1 && atomic_load(&forking)) {
		pthread_mutex_lock(&gate);
		pthread_cond_broadcast(&gate_cv);
		pthread_mutex_unlock(&gate);
	}
}

int sp_guard_enter(void)
{
	if (depth++)
		return 0;
	pthread_once(&once, install);
	for (;;) {
		atomic_fetch_add(&inside, 1);
		if (!atomic_load(&forking))
			return 0;
		count_out(); /* a fork is under way: wait it out */
		pthread_mutex_lock(&gate);
		while (atomic_load(&forking))
			pthread_cond_wait(&gate_cv, &gate);
		pthread_mutex_unlock(&gate);
	}
}

void sp_guard_leave(int *unused)
{
	(void)unused;
	if (--depth)
		return;
	count_out();
}

unsigned sp_fork_generation(void) { return generation; }
