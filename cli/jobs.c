/* jobs.c - the jobs command: each job's last run, how it ended and when
 * the next is expected ([job NAME] every); or one job's runs. */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

typedef struct jobs_out {
	sponge *sp;
	bool json;
	int64_t now;
} jobs_out;

/* "ok", "failed", "killed", "timed out", "running", "did not end" */
static const char *run_state(const jobs_out *o, const sponge_run *r)
{
	if (!r->end_us) /* its recorder, on this host, still there? */
		return !strcmp(r->host, sponge_host(o->sp)) && r->pid > 0 &&
				       kill((pid_t)r->pid, 0) == 0
			       ? "running"
			       : "did not end";
	return r->timed_out ? "timed out"
	       : r->signal  ? "killed"
	       : r->status  ? "failed"
			    : "ok";
}

/* "failed (exit 23)", "killed (signal 9)", "timed out", "running" */
static void ended_how(const jobs_out *o, const sponge_run *r, char *how,
		      size_t n)
{
	const char *st = run_state(o, r);
	if (r->end_us && !r->signal && !r->timed_out)
		snprintf(how, n, "%s (exit %d)", st, r->status);
	else if (r->signal)
		snprintf(how, n, "%s (signal %d)", st, r->signal);
	else
		snprintf(how, n, "%s", st);
}

/* When the next run is due ([job] every), and when it is late after
 * (*late_at: due + grace) and whether it is now. */
static int64_t next_due(const jobs_out *o, const sponge_run *r, bool *late,
			int64_t *late_at)
{
	sponge_job j;
	sponge_job_get(o->sp, r->job, &j, NULL);
	*late = false;
	if (!j.every_us || strpbrk(j.name, "*?["))
		return 0;
	int64_t due = r->start_us + j.every_us;
	*late_at = due + j.grace_us;
	*late = o->now > *late_at;
	return due;
}

static void run_json(void *arg, const sponge_run *r)
{
	jobs_out *o = arg;
	char s[32], e[32] = "", n[32] = "";
	bool late;
	int64_t late_at, due = r->runs ? next_due(o, r, &late, &late_at) : 0;
	sponge_format_time(r->start_us, s);
	if (r->end_us)
		sponge_format_time(r->end_us, e);
	if (due)
		sponge_format_time(due, n);
	json_t *j = json_pack("{s:s,s:I,s:s,s:s,s:s?,s:I,s:s,s:I}", "job", r->job,
			      "run", (json_int_t)r->id, "host", r->host,
			      "start", s, "end", r->end_us ? e : NULL,
			      "lines", (json_int_t)r->lines, "state",
			      run_state(o, r), "pid", (json_int_t)r->pid);
	if (r->end_us && !r->signal)
		json_object_set_new(j, "status", json_integer(r->status));
	if (r->signal)
		json_object_set_new(j, "signal", json_integer(r->signal));
	if (r->runs)
		json_object_set_new(j, "runs", json_integer(r->runs));
	if (due) {
		json_object_set_new(j, "next_expected", json_string(n));
		json_object_set_new(j, "late", json_boolean(late));
	}
	json_line(j);
}

static void run_text(void *arg, const sponge_run *r)
{
	jobs_out *o = arg;
	char s[32], took[32] = "-", how[48], next[64] = "";
	sponge_format_time(r->start_us, s);
	if (r->end_us)
		sponge_format_span(r->end_us - r->start_us, took, sizeof took);
	ended_how(o, r, how, sizeof how);
	bool late;
	int64_t late_at, due = r->runs ? next_due(o, r, &late, &late_at) : 0;
	if (due) {
		char d[32];
		sponge_format_time(late ? late_at : due, d);
		snprintf(next, sizeof next, "  %s %.16sZ", late ? "LATE since"
								: "next by",
			 d);
	}
	if (r->runs)
		printf("%-16s %.19sZ %7s  %-18s %6lld  %5lld%s\n", r->job, s, took,
		       how, (long long)r->lines, (long long)r->runs, next);
	else
		printf("%6lld  %.19sZ %7s  %-18s %6lld\n", (long long)r->id, s,
		       took, how, (long long)r->lines);
}

/* status's line on jobs: how many, and those whose last run failed or
 * that are late ("jobs:     3; backup failed (exit 23) at …"). */
typedef struct jobs_line {
	jobs_out o;
	int64_t n;
	char text[512];
	size_t len;
} jobs_line;

static void status_job(void *arg, const sponge_run *r)
{
	jobs_line *j = arg;
	char t[32], how[48], what[96] = "";
	bool late;
	int64_t late_at, due = next_due(&j->o, r, &late, &late_at);
	j->n++;
	if (due && late) {
		sponge_format_time(late_at, t);
		snprintf(what, sizeof what, "late since %.16sZ", t);
	} else if (SPONGE_RUN_FAILED(r)) {
		sponge_format_time(r->start_us, t);
		ended_how(&j->o, r, how, sizeof how);
		snprintf(what, sizeof what, "%s at %.16sZ", how, t);
	}
	int k = what[0] ? snprintf(j->text + j->len, sizeof j->text - j->len,
				   "; %s %s", r->job, what)
			: 0;
	if (k > 0 && (size_t)k < sizeof j->text - j->len)
		j->len += (size_t)k;
	else
		j->text[j->len] = '\0'; /* (no room: the others are cut) */
}

void jobs_status(sponge *sp, int64_t now)
{
	jobs_line j = {{sp, false, now}, 0, "", 0};
	if (sponge_jobs(sp, NULL, 0, status_job, &j) != SPONGE_OK || !j.n)
		return;
	printf("jobs:     %lld%s\n", (long long)j.n,
	       j.len ? j.text : ", their last runs ok");
}

static void jobs_usage(FILE *f)
{
	usage(f, "jobs");
	fprintf(f, "options:\n"
		   "      --json      one JSON object per line\n"
		   "      --limit N   at most N (default: all jobs; 20 runs)\n"
		   "Without NAME: each job's last run and when the next is "
		   "expected; with NAME,\nthat job's runs, newest first.\n");
}

int cmd_jobs(globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'J'},
		{"limit", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int64_t limit = -1;
	int c;
	while ((c = cmd_getopt(g, argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'L':
			if (!parse_count("jobs: --limit", optarg, &limit))
				return EXIT_USAGE;
			break;
		case 'h': jobs_usage(stdout); return 0;
		default: return option_error("jobs", "h", argv);
		}
	}
	if (argc - optind > 1) {
		errorf("jobs: one job at a time (logsponge jobs [NAME])");
		return EXIT_USAGE;
	}
	const char *job = optind < argc ? argv[optind] : NULL;
	if (limit < 0)
		limit = job ? 20 : 0;
	int status = 0;
	sponge *sp = open_spool(g, USE_QUERY, &status, NULL);
	if (!sp)
		return status;
	jobs_out o = {sp, json, sponge_now()};
	if (!json && job)
		printf("%6s  %-20s %7s  %-18s %6s\n", "run", "started", "took",
		       "ended", "lines");
	else if (!json)
		printf("%-16s %-20s %7s  %-18s %6s  %5s\n", "job", "last run",
		       "took", "ended", "lines", "runs");
	int rc = sponge_jobs(sp, job, limit, json ? run_json : run_text, &o);
	if (rc != SPONGE_OK)
		status = fail(sp, rc);
	sponge_close(sp);
	return finish_output(status);
}
