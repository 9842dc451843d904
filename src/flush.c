/* flush.c - decide, compose, hand to a transport, then commit or keep. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


#include "flush.h"
#include "store.h"

/* ---- the lock ----------------------------------------------------- */

static int journal_reserve(int fd);

static int take_lock(sponge *sp, int *fd)
{
	spbuf p;
	sb_init(&p, 0);
	sb_printf(&p, "%s.lock", sp->path);
	if (p.failed) {
		sb_free(&p);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	*fd = open(p.data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int rc = sp_fail(sp, sp_errno_code(errno, SPONGE_EIO), "%s: %s",
				 p.data, strerror(errno));
		sb_free(&p);
		return rc;
	}
	/* The lock belongs to the spool's owner, whoever made it (root
	 * flushing a user's spool must not lock the user out). */
	struct stat spst, lkst;
	if (geteuid() == 0 && stat(sp->path, &spst) == 0 &&
	    fstat(*fd, &lkst) == 0 &&
	    (lkst.st_uid != spst.st_uid || lkst.st_gid != spst.st_gid) &&
	    fchown(*fd, spst.st_uid, spst.st_gid) != 0) {
		int rc = sp_fail(sp, SPONGE_EIO, "%s: %s", p.data,
				 strerror(errno));
		close(*fd);
		*fd = -1;
		sb_free(&p);
		return rc;
	}
	(void)journal_reserve(*fd); /* checked again before sending */
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		int rc = e == EWOULDBLOCK
				 ? sp_fail(sp, SPONGE_EBUSY,
					   "%s: another flush of this spool is "
					   "running", sp->path)
				 : sp_fail(sp, SPONGE_EIO, "%s: %s", p.data,
					   strerror(e));
		sb_free(&p);
		return rc;
	}
	sb_free(&p);
	return SPONGE_OK;
}

/*
 * The lock file is also the flush's journal.  It gets JOURNAL_SIZE bytes
 * of disk when it is made, so that later writes inside them need no new
 * space: after the server's final 250 an "accepted" line goes there
 * (synced) before the bulk delete, which needs room in the WAL.  When the
 * delete fails (a full disk), the next flush finishes it from the journal
 * instead of sending the batch again.
 */
#define JOURNAL_SIZE 4096
#define JOURNAL_TAG "logsponge-accepted 1 "

/* 0, or the errno why the journal's room cannot be had. */
static int journal_reserve(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return errno;
	if (st.st_size >= JOURNAL_SIZE &&
	    (blkcnt_t)st.st_blocks * 512 >= JOURNAL_SIZE)
		return 0;
	return posix_fallocate(fd, 0, JOURNAL_SIZE);
}

/* A message goes only when its "accepted" note has room: without it a
 * commit that fails after the 250 would send the batch again and again. */
static int journal_ready(sponge *sp, int fd)
{
	int e = journal_reserve(fd);
	if (!e)
		return SPONGE_OK;
	return sp_fail(sp, e == ENOSPC || e == EDQUOT ? SPONGE_ETEMPFAIL
						     : SPONGE_EIO,
		       "%s.lock: cannot reserve %d bytes for the flush's "
		       "journal: %s (nothing was sent)", sp->path, JOURNAL_SIZE,
		       strerror(e));
}

/* A batch's bounds as one word: "<max id>", or "<max id>/<least severe
 * level>" for a batch that kept only its most severe levels. */
static void batch_word(const sp_tally *n, char *buf, size_t size)
{
	if (sp_batch_max_level(n) < 7)
		snprintf(buf, size, "%lld/%d", (long long)n->max_id,
			 sp_batch_max_level(n));
	else
		snprintf(buf, size, "%lld", (long long)n->max_id);
}

/* The same read back (*p past it); false when it is not one. */
static bool read_batch_word(const char **p, int64_t *max_id, int *level_cap)
{
	char *end;
	errno = 0;
	*max_id = strtoll(*p, &end, 10);
	if (end == *p || errno)
		return false;
	*level_cap = 0;
	if (*end == '/') {
		long l = strtol(end + 1, &end, 10);
		if (l < 0 || l > 7)
			return false;
		*level_cap = (int)l + 1;
	}
	*p = end;
	return true;
}

/* After the server's 250: remember the batch as accepted.  Fields: the
 * batch (max id[/level]), first id, count, the reported drops,
 * Message-ID, the reply. */
static bool journal_accept(int fd, const sp_batch *b, const char *reply)
{
	char line[JOURNAL_SIZE], word[48];
	batch_word(&b->n, word, sizeof word);
	int n = snprintf(line, sizeof line - 1,
			 JOURNAL_TAG "%s %lld %lld", word,
			 (long long)b->n.first_id, (long long)b->n.count);
	for (int l = 0; l < 8; l++)
		n += snprintf(line + n, sizeof line - 1 - (size_t)n, " %lld",
			      (long long)b->n.dropped[l]);
	n += snprintf(line + n, sizeof line - 1 - (size_t)n, " %s %.1500s",
		      b->env.message_id, reply);
	for (int i = 0; i < n; i++) /* one line */
		if (line[i] == '\n' || line[i] == '\r' || line[i] == '\0')
			line[i] = ' ';
	line[n++] = '\n';
	return pwrite(fd, line, (size_t)n, 0) == n && fdatasync(fd) == 0;
}

static void journal_clear(int fd)
{
	if (pwrite(fd, "\n", 1, 0) == 1)
		(void)fdatasync(fd);
}

/* The spool token in a Message-ID (logsponge.<ids>.<token>@host). */
static bool mid_token(const char *mid, char tok[33])
{
	const char *at = strchr(mid, '@');
	const char *dot = at ? memrchr(mid, '.', (size_t)(at - mid)) : NULL;
	if (!dot || at - dot - 1 != 32)
		return false;
	memcpy(tok, dot + 1, 32);
	tok[32] = '\0';
	return true;
}

/* A batch accepted but not yet removed, from the journal: fills b (the
 * fields the commit needs) and reply; false when there is none. */
static bool journal_pending(int fd, sp_batch *b, spbuf *reply)
{
	char line[JOURNAL_SIZE + 1];
	ssize_t n = pread(fd, line, JOURNAL_SIZE, 0);
	if (n <= (ssize_t)strlen(JOURNAL_TAG) ||
	    memcmp(line, JOURNAL_TAG, strlen(JOURNAL_TAG)) != 0)
		return false;
	line[n] = '\0';
	char *nl = strchr(line, '\n');
	if (!nl)
		return false; /* torn: the 250 was not recorded */
	*nl = '\0';
	memset(b, 0, sizeof *b);
	const char *w = line + strlen(JOURNAL_TAG);
	if (!read_batch_word(&w, &b->n.max_id, &b->n.level_cap))
		return false;
	char *p = line + (w - line), *end;
	int64_t v[11];
	v[0] = b->n.max_id;
	for (int i = 1; i < 11; i++) {
		errno = 0;
		v[i] = strtoll(p, &end, 10);
		if (end == p || errno)
			return false;
		p = end;
	}
	b->n.first_id = v[1];
	b->n.count = v[2];
	memcpy(b->n.dropped, v + 3, sizeof b->n.dropped);
	while (*p == ' ')
		p++;
	size_t mlen = strcspn(p, " ");
	if (!mlen || mlen >= sizeof b->env.message_id)
		return false;
	memcpy(b->env.message_id, p, mlen);
	b->env.message_id[mlen] = '\0';
	p += mlen;
	if (*p == ' ')
		p++;
	sb_reset(reply);
	sb_adds(reply, p);
	return b->n.max_id > 0;
}


/* ---- flush -------------------------------------------------------- */


/* When the last message went out; with none yet, when logsponge first
 * looked (remembered in meta), so a heartbeat has a start. */
/* A last message "in the future" (it went while the clock was ahead)
 * counts from when a flush first saw it there, so that min_interval holds
 * mail back for at most min_interval after the clock came back. */
static int64_t not_in_future(sponge *sp, int64_t t, int64_t now, bool dry)
{
	if (t <= now)
		return t;
	spbuf v;
	sb_init(&v, 0);
	int64_t seen = 0, was = 0;
	if (sp_meta_get(sp, "future_last", &v) == SPONGE_OK && v.len) {
		char *end;
		was = strtoll(v.data, &end, 10);
		seen = was == t ? strtoll(end, NULL, 10) : 0;
	}
	if (!seen || seen > now) {
		seen = now;
		char s[64];
		snprintf(s, sizeof s, "%lld %lld", (long long)t, (long long)now);
		if (!dry)
			sp_meta_commit(sp, "future_last", s, "writing meta");
	}
	sb_free(&v);
	return seen;
}

/* When the last message went (*sent; 0: none yet), or else when the
 * spool was first watched (the heartbeat counts from then). */
static int64_t last_message(sponge *sp, int64_t now, bool dry, int64_t *sent)
{
	int rc = SPONGE_OK;
	int64_t t = 0;
	*sent = 0;
	rc = sp_store_last_sent(sp, &t);
	if (t && !rc)
		t = not_in_future(sp, t, now, dry);
	if (t || rc) {
		*sent = t;
		return t;
	}
	t = sp_meta_int(sp, "watch_since");
	if (!t && !dry)
		sp_meta_int_commit(sp, "watch_since", now);
	return t > now ? now : t;
}

/* Pin the batch before it goes: until its removal, later flushes send
 * exactly this batch again, with this Message-ID. */
static int mark_inflight(sponge *sp, const sp_batch *b)
{
	char v[400], word[48];
	batch_word(&b->n, word, sizeof word);
	snprintf(v, sizeof v, "%s %s", word, b->env.message_id);
	return sp_meta_commit(sp, "inflight", v, "marking the batch");
}

/* When the spool began remembering kinds (0: unknown). */
static int64_t kinds_since(sponge *sp)
{
	return sp_meta_int(sp, "kinds_since");
}

/* flush_on_new's inputs: pending records of new kinds, the learn time. */
static int new_kinds_in(sponge *sp, const sponge_policy *pol, int64_t now,
			sp_policy_in *in)
{
	in->learning = pol->learn_us &&
		       sp_sub(now, kinds_since(sp)) < pol->learn_us;
	return sp_store_new_pending(sp, pol->flush_on_new, &in->new_pending);
}

/* An ended run whose last record waits: does its job mail now? */
typedef struct runs_due_arg {
	sponge *sp;
	sp_policy_in *in;
} runs_due_arg;

static bool run_due(void *arg, const sponge_run *r)
{
	runs_due_arg *a = arg;
	sp_policy_in *in = a->in;
	sponge_job j;
	sponge_job_get(a->sp, r->job, &j, NULL);
	if (j.mail == SPONGE_JOB_MAIL_ALWAYS ||
	    (j.mail == SPONGE_JOB_MAIL_FAILURE && SPONGE_RUN_FAILED(r))) {
		if (!in->runs_due++) {
			char how[64];
			sp_run_outcome(r, how, sizeof how);
			snprintf(in->run_why, sizeof in->run_why, "%.64s %s",
				 r->job, how);
		}
	}
	return true;
}

/* The policy's verdict now, from the kept counts (*st) and the last
 * message (in->last_us); dry: change nothing (no "watching since" note). */
static int verdict_now(sponge *sp, unsigned flags, bool dry, int64_t now,
		       sponge_stats *st, sp_policy_in *in, int *verdict,
		       char *why, size_t n)
{
	int rc = sp_stats_get(sp, st);
	if (rc)
		return rc;
	const sponge_policy *pol = &sp->cfg.policy;
	memset(in, 0, sizeof *in);
	in->pending = st->pending;
	memcpy(in->by_level, st->by_level, sizeof in->by_level);
	in->oldest_us = st->oldest_us;
	in->now = now;
	in->force = flags & SPONGE_FLUSH_FORCE;
	if (pol->min_interval_us || pol->heartbeat_us)
		in->last_us = last_message(sp, now, dry, &in->sent_us);
	if (pol->flush_on_new >= 0 &&
	    (rc = new_kinds_in(sp, pol, now, in)) != SPONGE_OK)
		return rc;
	runs_due_arg ra = {sp, in};
	if (sp->cfg.njobs && st->pending &&
	    (rc = sp_store_runs_ended_pending(sp, run_due, &ra)) != SPONGE_OK)
		return rc;
	*verdict = sp_policy(pol, in, why, n);
	return SPONGE_OK;
}

/* One flush, step by step (sponge_flush reads as the steps). */
typedef struct flush_run {
	sponge *sp;
	unsigned flags;
	bool dry;
	sponge_flush_result *res;
	const sp_transport *t;
	int lockfd;
	int64_t now;
	sp_batch b;
	int64_t inflight;        /* a pinned batch's max id, or 0 */
	int inflight_cap;        /* and its level cap */
	char pinned_mid[320];    /* and its Message-ID */
	bool resend;             /* the pinned batch goes again */
	int64_t waited;          /* min_interval held it back this long */
	int64_t since;           /* a heartbeat: the last message */
	void *link;              /* what the transport's open made */
} flush_run;

/* Check the config, pick the transport, take the lock. */
static int flush_start(flush_run *f)
{
	sponge *sp = f->sp;
	sb_reset(&sp->err);
	if (sp->cfg_error.len)
		return sp_fail(sp, SPONGE_ECONFIG, "%s", sp->cfg_error.data);
	f->t = sp_transport_of(&sp->cfg);
	int rc = sp_check_mail_config(sp, f->t);
	if (rc)
		return rc;
	f->res->insecure = !sp->cfg.verify && f->t == &sp_transport_smtp;
	if (!f->dry && (rc = take_lock(sp, &f->lockfd)))
		return rc;
	if (!f->dry)
		sp_crash_point("after-lock");
	/* A flush reads the whole batch a few times in order: a page cache
	 * larger than this does not help it, and a small one keeps its
	 * memory the same for 10,000 records and for 10,000,000. */
	sp_store_cache(sp, 512);
	f->now = sponge_now();
	/* a job that did not run becomes a record first (the dead man's
	 * switch); a failure to look loses nothing and sends on */
	if (!f->dry && sp->cfg.njobs)
		sponge_jobs_check(sp, f->now, NULL);
	return SPONGE_OK;
}

/* A note that names another spool (its Message-ID carries that spool's
 * token): the spool was replaced after a send whose removal failed.  It
 * says nothing of these records: cleared, with a warning. */
static bool note_is_foreign(flush_run *f, const sp_batch *done)
{
	char mine[33], theirs[33];
	if (sp_store_token(f->sp, mine) != SPONGE_OK)
		return false; /* unknown: keep the note, the commit decides */
	if (mid_token(done->env.message_id, theirs) &&
	    strcmp(mine, theirs) == 0)
		return false;
	snprintf(f->res->warning, sizeof f->res->warning,
		 "%s.lock: ignored a note of a sent message (<%.300s>) that "
		 "belongs to another spool file at this path; no record of "
		 "this spool was removed", f->sp->path,
		 done->env.message_id);
	journal_clear(f->lockfd);
	return true;
}

/* A batch the server accepted whose removal failed: finish that, never
 * send it again. */
static int finish_accepted(flush_run *f)
{
	spbuf reply;
	sb_init(&reply, 0);
	sp_batch done;
	int rc = SPONGE_OK;
	if (!f->dry && journal_pending(f->lockfd, &done, &reply) &&
	    !note_is_foreign(f, &done)) {
		rc = sp_store_commit_sent(f->sp, &done, reply.data);
		if (rc == SPONGE_OK)
			journal_clear(f->lockfd);
		else
			sb_printf(&f->sp->err, " (finishing the removal of a "
					       "sent message's records, <%s>; "
					       "they will not be sent again)",
				  done.env.message_id);
	}
	sb_free(&reply);
	return rc;
}

/* Nothing goes: expire what is old enough (no scan otherwise) and
 * forget sent records past spool.keep_sent. */
static int tidy(flush_run *f, const sponge_stats *st)
{
	sponge *sp = f->sp;
	const sponge_policy *pol = &sp->cfg.policy;
	int rc = SPONGE_OK;
	if (f->dry)
		return rc;
	if (st->pending && pol->expire_us &&
	    st->oldest_us < sp_sub(f->now, pol->expire_us))
		rc = sp_store_expire(sp, f->now, &f->res->expired);
	if (rc == SPONGE_OK && sp->cfg.keep_sent_us)
		rc = sp_store_forget_sent(sp, f->now);
	return rc;
}

/* A pinned batch (it may have reached the server) goes again, whatever
 * the policy says; else the policy decides from the kept counts.  *go:
 * a message is to be composed. */
static int select_batch(flush_run *f, bool *go)
{
	sponge *sp = f->sp;
	*go = false;
	spbuf v;
	sb_init(&v, 0);
	int rc = sp_meta_get(sp, "inflight", &v);
	const char *mid_at = v.data;
	if (rc != SPONGE_OK || !v.len ||
	    !read_batch_word(&mid_at, &f->inflight, &f->inflight_cap))
		f->inflight = 0;
	else if (*mid_at == ' ')
		snprintf(f->pinned_mid, sizeof f->pinned_mid, "%s", mid_at + 1);
	sb_free(&v);
	if (rc == SPONGE_OK && f->inflight > 0 &&
	    (rc = sp_plan_tally_capped(sp, f->inflight, f->inflight_cap, 0,
				       &f->b.n)) == SPONGE_OK &&
	    f->b.n.count > 0) {
		f->resend = true;
		*go = true;
		snprintf(f->res->reason, sizeof f->res->reason,
			 "sending: resending a batch that may not have been "
			 "delivered");
		return SPONGE_OK;
	}
	sponge_stats st;
	sp_policy_in in;
	int verdict;
	if (rc || (rc = verdict_now(sp, f->flags, f->dry, f->now, &st, &in,
				    &verdict, f->res->reason,
				    sizeof f->res->reason)))
		return rc;
	if (verdict == SPONGE_VERDICT_HOLD)
		return SPONGE_OK; /* due, held back: not expired either */
	if (verdict == SPONGE_VERDICT_NONE)
		return tidy(f, &st);
	*go = true;
	if (verdict == SPONGE_VERDICT_HEARTBEAT) /* nothing for that long */
		f->since = in.last_us;
	else if (sp->cfg.policy.min_interval_us && in.sent_us)
		f->waited = sp->cfg.policy.min_interval_us;
	return SPONGE_OK;
}

/* The plan's first step: what the batch holds (read now, once a message
 * goes; a pinned batch's was read to select it).  The digest's survey
 * shares the scan; a batch that cannot go whole (past mail.max_size,
 * where the scan stops) gets its survey when its size is planned. */
static int tally(flush_run *f, sp_composer *comp)
{
	if (f->resend)
		return SPONGE_OK;
	if (f->since) /* a heartbeat: nothing in it */
		return sp_plan_tally(f->sp, 0, 0, &f->b.n);
	/* kinds from before a change of the masking, made again first */
	int rc = f->dry ? SPONGE_OK : sp_store_kinds_remask(f->sp);
	if (rc == SPONGE_OK)
		rc = sp_digest_begin(comp);
	if (rc == SPONGE_OK)
		rc = sp_plan_tally_each(f->sp, INT64_MAX, f->sp->cfg.max_size,
					&f->b.n, sp_digest_each, comp);
	if (rc == SPONGE_OK && f->b.n.count && !f->b.n.partial)
		rc = sp_digest_end(comp);
	if (rc == SPONGE_OK && f->b.n.count && !f->b.n.partial)
		rc = sp_digest_kinds(comp, &f->b);
	if (rc != SPONGE_OK || !f->b.n.count || f->b.n.partial)
		sp_digest_free(comp);
	return rc;
}

/* Then the envelope and the size plan, within the server's limit. */
static int plan(flush_run *f, sp_composer *comp, uint64_t server_max)
{
	sponge *sp = f->sp;
	sp_batch *b = &f->b;
	b->env.date_us = f->now;
	b->env.since_us = f->since;
	b->env.min_interval_us = f->waited;
	/* "sending: threshold: …" -> "threshold: …" */
	const char *why = f->res->reason;
	snprintf(b->env.why, sizeof b->env.why, "%s",
		 strncmp(why, "sending: ", 9) ? why : why + 9);
	b->env.new_kind = false;
	for (int l = 0; l <= sp->cfg.new_level && l < 8; l++)
		b->env.new_kind |= b->new_kinds[l] > 0;
	int64_t learn = sp->cfg.policy.learn_us, day = 86400000000LL;
	int64_t in = sp_sub(f->now, kinds_since(sp));
	b->env.learn_days = learn && in < learn ? (int)((learn + day - 1) / day)
						: 0;
	b->env.learn_day = b->env.learn_days ? (int)(in / day) + 1 : 0;
	int rc;
	if ((rc = sp_plan_envelope(sp, &b->n, &b->env,
				   f->resend ? f->pinned_mid : NULL)) ||
	    (b->n.count && (rc = sp_plan_size(sp, b, comp, server_max))))
		return rc;
	f->res->decided = 1;
	f->res->records = b->n.count;
	snprintf(f->res->message_id, sizeof f->res->message_id, "%s",
		 b->env.message_id);
	return SPONGE_OK;
}

/* Open the transport (learning what it takes), plan within that, pin
 * the batch, hand the message over. */
static int deliver(flush_run *f, sp_composer *comp, sp_send_result *sr,
		   sponge_writer out, void *arg)
{
	sponge *sp = f->sp;
	uint64_t server_max = 0;
	int rc = journal_ready(sp, f->lockfd);
	if (rc) {
		sr->outcome = rc == SPONGE_ETEMPFAIL ? SP_TEMPORARY : SP_LOCAL;
		sr->stage = "journal";
		return rc;
	}
	rc = f->t->open ? f->t->open(sp, sr, &f->link, &server_max)
			: SPONGE_OK;
	if (rc == SPONGE_OK && (rc = plan(f, comp, server_max)) == SPONGE_EPERMFAIL) {
		/* too big for this server even alone: say so in history */
		sr->outcome = SP_PERMANENT;
		sr->stage = "size";
		sb_adds(&sr->reply, sponge_errmsg(sp));
	}
	if (rc)
		return rc;
	sp_crash_point("after-batch");
	if ((rc = mark_inflight(sp, &f->b)))
		return rc;
	rc = f->t->send(sp, f->link, comp, sr, out, arg);
	sp_compose_stop(comp);
	/* what the message carried, as composed (a resent or capped batch
	 * was surveyed while composing) */
	int krc = sp_digest_kinds(comp, &f->b);
	return rc ? rc : krc;
}

/* Accepted: note it in the journal, then remove the batch.  Else keep
 * it and write the failure's history row. */
static int settle(flush_run *f, int rc, sp_send_result *sr)
{
	sponge *sp = f->sp;
	if (rc == SPONGE_OK && sr->outcome == SP_SENT) {
		sp_crash_point("after-250");
		bool noted = journal_accept(f->lockfd, &f->b, sr->reply.data);
		if (noted)
			sp_crash_point("after-note");
		rc = sp_store_commit_sent(sp, &f->b, sr->reply.data);
		snprintf(f->res->refused, sizeof f->res->refused, "%s",
			 sr->refused.data);
		if (rc == SPONGE_OK) {
			f->res->sent = 1;
			journal_clear(f->lockfd);
		} else {
			sb_adds(&sp->err,
				noted ? " (the message was sent; its records "
					"stay until a later flush can remove "
					"them, and will not be sent again)"
				      : " (the message was sent; its records "
					"stay and will be sent again, with the "
					"same Message-ID)");
		}
		return rc;
	}
	if (rc != SPONGE_OK && sr->outcome == SP_OUTCOME_UNKNOWN && !sr->stage)
		return rc; /* nothing was attempted (pinning the batch failed) */
	if (sr->outcome == SP_SENT || sr->outcome == SP_OUTCOME_UNKNOWN)
		sr->outcome = SP_LOCAL; /* transport failed without saying how */
	if (!sr->stage)
		sr->stage = "";
	snprintf(f->res->stage, sizeof f->res->stage, "%s", sr->stage);
	if (!sr->reply.len)
		sb_adds(&sr->reply, sp->err.data);
	/* a batch that may have reached the server keeps its pin (and so
	 * its Message-ID) whatever this attempt's failure */
	sr->maybe_delivered |= f->resend;
	/* the error message must survive writing the history row */
	spbuf keep;
	sb_init(&keep, 0);
	sb_adds(&keep, sp->err.len ? sp->err.data : sr->reply.data);
	int hrc = sp_store_record_failure(sp, &f->b, sp_outcome_name(sr->outcome), sr);
	rc = sp_outcome_code(sr->outcome);
	sp_fail(sp, rc, "%s%s", keep.data,
		hrc ? " (and the history row could not be written)" : "");
	sb_free(&keep);
	return rc;
}

int sp_flush(sponge *sp, unsigned flags, sponge_writer out, void *arg,
	     sponge_flush_result *res)
{
	sponge_flush_result dummy;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	flush_run f;
	memset(&f, 0, sizeof f);
	f.sp = sp;
	f.flags = flags;
	f.dry = flags & SPONGE_FLUSH_DRY_RUN;
	f.res = res;
	f.lockfd = -1;
	if (f.dry && !out)
		return sp_fail(sp, SPONGE_EINVAL, "dry run needs a writer");
	int rc = flush_start(&f);
	if (rc) {
		if (f.lockfd >= 0)
			close(f.lockfd);
		return rc;
	}
	sp_batch_source src;
	sp_batch_source_init(&src, sp, &f.b);
	sp_composer comp;
	sp_compose_init(&comp, sp, &f.b, &src.base);
	sp_send_result sr;
	memset(&sr, 0, sizeof sr);
	sb_init(&sr.reply, 2048);
	sb_init(&sr.refused, 4096);

	bool go = false;
	if ((rc = finish_accepted(&f)) == SPONGE_OK &&
	    (rc = select_batch(&f, &go)) == SPONGE_OK && go &&
	    (rc = tally(&f, &comp)) == SPONGE_OK) {
		if (!f.dry)
			rc = settle(&f, deliver(&f, &comp, &sr, out, arg), &sr);
		else if ((rc = plan(&f, &comp, 0)) == SPONGE_OK) {
			comp.readable = flags & SPONGE_FLUSH_READABLE;
			rc = sp_send_stream(&comp, comp.readable, out, arg);
		}
	}
	if (f.t && f.t->close)
		f.t->close(f.link);

	sp_plan_free(&f.b);
	sp_store_cache(sp, 2000);
	sp_compose_free(&comp);
	sb_free(&sr.reply);
	sb_free(&sr.refused);
	if (f.lockfd >= 0)
		close(f.lockfd);
	/* give freed space back, after the lock: a VACUUM's time depends on
	 * the spool's size, and another flush may go meanwhile (it waits
	 * for the spool at most spool.busy_timeout) */
	if (res->sent)
		sp_shrink(sp);
	return rc;
}

int sp_decide(sponge *sp, unsigned flags, sponge_decision *d)
{
	memset(d, 0, sizeof *d);
	d->verdict = SPONGE_VERDICT_UNKNOWN;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	d->now = sponge_now();
	sponge_stats st;
	sp_policy_in in;
	int rc = verdict_now(sp, flags, true, d->now, &st, &in, &d->verdict,
			     d->reason, sizeof d->reason);
	if (rc == SPONGE_OK)
		sp_policy_rules(&sp->cfg.policy, &in, d);
	else
		d->verdict = SPONGE_VERDICT_UNKNOWN;
	return rc;
}

int sponge_decide(sponge *sp, unsigned flags, int *verdict, char *reason,
		  size_t n)
{
	SP_GUARD;
	if (!verdict)
		return SPONGE_EINVAL;
	sponge_decision d;
	int rc = sp_decide(sp, flags, &d);
	*verdict = d.verdict;
	if (rc == SPONGE_OK && reason && n)
		snprintf(reason, n, "%s", d.reason);
	return rc;
}
