/* runs.c - runs of jobs: a handle's run (its records carry its id, its
 * end is written with its last record), the [job NAME] that applies to a
 * job, the jobs and their runs, and the dead man's switch. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Letters, digits and ._-@+: (a tag's characters, none a glob's). */
static bool job_name_ok(const char *job)
{
	size_t n = job ? strlen(job) : 0;
	if (!n || n > 64)
		return false;
	for (const char *p = job; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-@+:", *p)))
			return false;
	return true;
}

int sponge_run_begin(sponge *sp, const char *job, int64_t pid,
		     int64_t *run_id)
{
	SP_GUARD;
	if (!sp_usable(sp) || sp->run.id || !job_name_ok(job))
		return SPONGE_EINVAL;
	int rc = sp->qn ? sp_store_write(sp, false) : SPONGE_OK;
	int64_t id = 0;
	if (rc == SPONGE_OK)
		rc = sp_store_run_begin(sp, job, pid, sponge_now(), &id);
	if (rc == SPONGE_OK)
		sp->run = (struct sp_run_state){.id = id};
	if (run_id)
		*run_id = id;
	return rc;
}

int sponge_run_end(sponge *sp, int status, int signal, int timed_out)
{
	SP_GUARD;
	if (!sp_usable(sp) || !sp->run.id || sp->run.ended)
		return SPONGE_EINVAL;
	sp->run.ended = true;
	sp->run.end_us = sponge_now();
	sp->run.status = signal ? -1 : status;
	sp->run.signal = signal;
	sp->run.timed_out = timed_out != 0;
	return SPONGE_OK;
}

void sp_run_outcome(const sponge_run *r, char *buf, size_t n)
{
	if (r->timed_out)
		snprintf(buf, n, "timed out");
	else if (r->signal)
		snprintf(buf, n, "was killed by signal %d", r->signal);
	else if (!r->end_us)
		snprintf(buf, n, "did not end");
	else
		snprintf(buf, n, "%s (exit %d)", r->status ? "failed" : "ended",
			 r->status);
}

int sponge_job_get(const sponge *sp, const char *job, sponge_job *out,
		   int *found)
{
	if (!sp || !job || !out)
		return SPONGE_EINVAL;
	*out = (sponge_job){NULL, SPONGE_JOB_MAIL_NEVER, -1, 0, 0, 0, 0};
	if (found)
		*found = 0;
	/* its own section first, else the first glob that matches */
	const sp_job_cfg *j = NULL;
	for (size_t i = 0; i < sp->cfg.njobs && !j; i++)
		if (!strcmp(sp->cfg.jobs[i].name, job))
			j = &sp->cfg.jobs[i];
	for (size_t i = 0; i < sp->cfg.njobs && !j; i++)
		if (fnmatch(sp->cfg.jobs[i].name, job, 0) == 0)
			j = &sp->cfg.jobs[i];
	if (j) {
		*out = (sponge_job){j->name,	   j->mail,	 j->stderr_level,
				    j->every_us, j->grace_us, j->timeout_us,
				    j->kill};
		if (found)
			*found = 1;
	}
	return SPONGE_OK;
}

typedef struct jobs_arg {
	void (*each)(void *arg, const sponge_run *r);
	void *arg;
} jobs_arg;

static bool to_each(void *arg, const sponge_run *r)
{
	jobs_arg *a = arg;
	a->each(a->arg, r);
	return true;
}

int sponge_jobs(sponge *sp, const char *job, int64_t limit,
		void (*each)(void *arg, const sponge_run *r), void *arg)
{
	SP_GUARD;
	if (!sp_usable(sp) || !each)
		return SPONGE_EINVAL;
	jobs_arg a = {each, arg};
	return sp_store_jobs(sp, job, limit, to_each, &a);
}

static bool last_start(void *arg, const sponge_run *r)
{
	*(int64_t *)arg = r->start_us;
	return false;
}

/* The record that says job j is late: its last run began at `since`
 * (watched: no run yet, watched from then). */
static int say_late(sponge *sp, const sp_job_cfg *j, int64_t since,
		    bool watched)
{
	char t[32], every[32], grace[32], msg[512];
	sponge_format_time(since, t);
	sponge_format_span(j->every_us, every, sizeof every);
	sponge_format_span(j->grace_us, grace, sizeof grace);
	snprintf(msg, sizeof msg, "%s has not run since %s%.16sZ (expected "
				  "every %s, grace %s)",
		 j->name, watched ? "logsponge began watching it at " : "", t,
		 every, grace);
	int rc = sponge_append(sp, SPONGE_ERR, j->name, 0, msg, strlen(msg));
	return rc ? rc : sponge_sync(sp);
}

/* Is job j (every set) late at now?  Says so at most once per every. */
static int check_job(sponge *sp, const sp_job_cfg *j, int64_t now, bool *late)
{
	char key[128];
	int64_t start = 0;
	int rc = sp_store_jobs(sp, j->name, 1, last_start, &start);
	bool watched = !start;
	snprintf(key, sizeof key, "job_watch:%s", j->name);
	if (rc == SPONGE_OK && watched && !(start = sp_meta_int(sp, key)))
		return sp_meta_int_commit(sp, key, now);
	*late = rc == SPONGE_OK && now - start > j->every_us + j->grace_us;
	if (!*late)
		return rc;
	snprintf(key, sizeof key, "job_late:%s", j->name);
	int64_t said = sp_meta_int(sp, key);
	if (said > start && now - said < j->every_us)
		return SPONGE_OK;
	if ((rc = say_late(sp, j, start, watched)) == SPONGE_OK)
		rc = sp_meta_int_commit(sp, key, now);
	return rc;
}

int sponge_jobs_check(sponge *sp, int64_t now_us, int64_t *late)
{
	SP_GUARD;
	if (late)
		*late = 0;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	int rc = SPONGE_OK;
	for (size_t i = 0; i < sp->cfg.njobs && rc == SPONGE_OK; i++) {
		const sp_job_cfg *j = &sp->cfg.jobs[i];
		bool is_late = false;
		if (!j->every_us || strpbrk(j->name, "*?["))
			continue; /* a glob names no one job */
		rc = check_job(sp, j, now_us, &is_late);
		if (is_late && late)
			++*late;
	}
	return rc;
}
