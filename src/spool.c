/* spool.c - the handle: opening the spool (its path in spool_path.c),
 * queueing records (the store writes them). */
#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC, gethostname */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

const char *sponge_path(const sponge *sp) { return sp ? sp->path : NULL; }
const char *sponge_host(const sponge *sp) { return sp ? sp->host : NULL; }
const char *sponge_config_path(const sponge *sp)
{
	return sp ? sp->cfg.path : NULL;
}

const char *sponge_config_error(const sponge *sp)
{
	return sp ? sp->cfg_error.data : "";
}

const char *sponge_config_warnings(sponge *sp)
{
	if (!sp)
		return "";
	sb_reset(&sp->warnings);
	const sp_config *c = &sp->cfg;
	const char *f = c->path ? c->path : "(no config file)";
	if (!c->verify)
		sb_printf(&sp->warnings, "%s: smtp.verify = no: the server's "
				    "certificate and name are not checked\n", f);
	if (c->tls == SP_TLS_NONE)
		sb_printf(&sp->warnings, "%s: smtp.tls = none: mail goes over the "
				    "network in clear text\n", f);
	struct stat st;
	if (c->path && c->password_command && stat(c->path, &st) == 0 &&
	    (st.st_mode & 044))
		sb_printf(&sp->warnings, "%s: readable by group or others, and "
				    "smtp.password_command may hold the password "
				    "(chmod 600 it)\n", f);
	return sp->warnings.data;
}

int sp_get_policy(const sponge *sp, sponge_policy *out)
{
	if (!sp || !out)
		return SPONGE_EINVAL;
	*out = sp->cfg.policy;
	return SPONGE_OK;
}

/* ---- paths -------------------------------------------------------- */

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_dir : NULL;
}

/* $VAR/rest, or ~/fallback/rest when $VAR is unset or not absolute. */
static bool xdg_path(spbuf *out, const char *var, const char *fallback,
		     const char *rest)
{
	const char *base = getenv(var);
	if (base && base[0] == '/')
		return sb_printf(out, "%s/%s", base, rest);
	const char *h = home_dir();
	if (!h)
		return false;
	return sb_printf(out, "%s/%s/%s", h, fallback, rest);
}

static int pick_config(sponge *sp, const char *explicit_path, unsigned flags)
{
	spbuf p;
	sb_init(&p, 0);
	int rc = SPONGE_OK;
	bool must_exist = false;

	if (flags & SPONGE_OPEN_NOCONFIG)
		return SPONGE_OK;
	if (explicit_path) {
		sb_adds(&p, explicit_path);
		must_exist = true;
	} else if (getenv("LOGSPONGE_CONFIG") && *getenv("LOGSPONGE_CONFIG")) {
		sb_adds(&p, getenv("LOGSPONGE_CONFIG"));
		must_exist = true;
	} else {
		if (xdg_path(&p, "XDG_CONFIG_HOME", ".config",
			     "logsponge/config") &&
		    access(p.data, F_OK) != 0) {
			sb_reset(&p);
		}
		if (p.len == 0 && access("/etc/logsponge.conf", F_OK) == 0)
			sb_adds(&p, "/etc/logsponge.conf");
	}
	if (p.failed) {
		rc = sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	} else if (p.len) {
		if (!must_exist && access(p.data, F_OK) != 0) {
			/* vanished: nothing to read */
		} else {
			rc = sp_config_load(&sp->cfg, p.data, &sp->err,
					    &sp->cfg_error);
		}
	}
	sb_free(&p);
	return rc;
}

/* The spool root's cron jobs and the systemd units use. */
#define SP_ROOT_SPOOL "/var/lib/logsponge/spool.db"

static int pick_spool(sponge *sp, const char *explicit_path)
{
	spbuf p;
	sb_init(&p, 0);
	const char *env = getenv("LOGSPONGE_SPOOL");
	if (explicit_path && *explicit_path)
		sb_adds(&p, explicit_path);
	else if (env && *env)
		sb_adds(&p, env);
	else if (sp->cfg.spool_path) {
		const char *c = sp->cfg.spool_path;
		if (c[0] == '~' && c[1] == '/') {
			const char *h = home_dir();
			if (!h)
				return sp_fail(sp, SPONGE_ECONFIG,
					       "spool.path: no home directory "
					       "to expand ~ in");
			sb_printf(&p, "%s%s", h, c + 1);
		} else {
			sb_adds(&p, c);
		}
	} else if (geteuid() == 0 && !(getenv("XDG_STATE_HOME") &&
				      getenv("XDG_STATE_HOME")[0] == '/')) {
		/* root's cron jobs, shell and the units share one spool */
		sb_adds(&p, SP_ROOT_SPOOL);
	} else if (!xdg_path(&p, "XDG_STATE_HOME", ".local/state",
			     "logsponge/spool.db")) {
		return sp_fail(sp, SPONGE_ECANTOPEN,
			       "no spool path: set LOGSPONGE_SPOOL, HOME or "
			       "XDG_STATE_HOME");
	}
	if (p.failed) {
		sb_free(&p);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	sp->path = sp_strdup(p.data);
	sb_free(&p);
	return sp->path ? SPONGE_OK : sp_fail(sp, SPONGE_ENOMEM, "out of memory");
}

int sponge_open(sponge **out, const char *spool_path, const char *config_path,
		unsigned flags)
{
	SP_GUARD;
	if (!out)
		return SPONGE_EINVAL;
	sponge *sp = sp_malloc(sizeof *sp);
	*out = sp;
	if (!sp)
		return SPONGE_ENOMEM;
	memset(sp, 0, sizeof *sp);
	sp->generation = sp_fork_generation();
	sb_init(&sp->err, 4096);
	sb_init(&sp->warnings, 0);
	sb_init(&sp->info, 1024);
	sb_init(&sp->cfg_error, 4096);
	sb_init(&sp->clean, 0);
	sb_init(&sp->parsed, 0);
	sb_init(&sp->rules_error, 0);
	sb_init(&sp->qdata, 0);
	sp_config_defaults(&sp->cfg);

	if (gethostname(sp->host, sizeof sp->host - 1) != 0 || !sp->host[0])
		snprintf(sp->host, sizeof sp->host, "localhost");
	int rc = pick_config(sp, config_path, flags);
	if (rc == SPONGE_OK && (flags & SPONGE_OPEN_NOSPOOL))
		return SPONGE_OK; /* the config alone */
	if (rc == SPONGE_OK)
		rc = pick_spool(sp, spool_path);
	if (rc == SPONGE_OK)
		rc = sp_spool_resolve(sp, flags);
	if (rc == SPONGE_OK) {
		sp_handles_add(sp);
		rc = sp_store_open(sp);
	}
	if (rc != SPONGE_OK)
		return rc;
	sb_reset(&sp->err);
	return SPONGE_OK;
}

int sponge_close(sponge *sp)
{
	if (!sp)
		return SPONGE_OK;
	SP_GUARD;
	int rc = SPONGE_OK;
	/* a parent's handle in a forked child: its queued records are the
	 * parent's; the child lets go of its copy of the connection */
	if (sp->generation == sp_fork_generation()) {
		if (sp->db && (sp->qn || sp->hits_pending || sp->pos_name))
			rc = sp_store_write(sp, true);
		sp_store_close(sp);
	}
	sp_handles_remove(sp);
	sp_ruleset_free(sp);
	sp_config_free(&sp->cfg);
	sp_free(sp->path);
	sp_free(sp->q);
	sb_free(&sp->qdata);
	sb_free(&sp->clean);
	sb_free(&sp->parsed);
	sb_free(&sp->rules_error);
	sp_kind_table_free(&sp->learn);
	sp_free(sp->pos_name);
	sp_free(sp->pos_cursor);
	sp_free(sp->pos_read);
	sb_free(&sp->err);
	sb_free(&sp->warnings);
	sb_free(&sp->info);
	sb_free(&sp->cfg_error);
	sp_free(sp);
	return rc;
}

/* A clock for the batch age: a few ms resolution is plenty, and it costs
 * a fraction of a precise one (this runs once per record). */
static int64_t coarse_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* What the rules did to a record on its way in. */
typedef struct verdict {
	int level;      /* as stored: + SP_IGNORED when ignored */
	int rule;       /* or -1 */
	int orig_level; /* or -1 */
	int pid;        /* or 0 */
	bool drop;
	bool escalated; /* past its rule's unless=: counted after all */
} verdict;

/* The spool's count of rule h's matches in its unless= window is read
 * again after this long (it is counted by the hour). */
#define UNLESS_REREAD_US (60 * 1000000LL)

/* Has rule h matched its unless=N times within its window already? */
static bool past_unless(sponge *sp, sp_rule_hit *h, int64_t now)
{
	if (!h->unless_n)
		return false;
	if (sp->db && (!h->base_at || now - h->base_at >= UNLESS_REREAD_US)) {
		int64_t base = 0;
		if (sp_store_rule_window(sp, h->name, now - h->unless_us,
					 &base) == SPONGE_OK) {
			h->base = base;
			h->since_base = 0;
			h->base_at = now;
		}
	}
	return h->base + h->since_base + h->n >= h->unless_n;
}

/* Judge e by the noise rules (read at the first record; rules that do
 * not read judge nothing, sponge_rules_error() says why).  A line
 * sponge_parse_line() just parsed is judged as the syslog line it was. */
static void judge(sponge *sp, const sponge_entry *e, verdict *v)
{
	*v = (verdict){e->level, -1, -1, 0, false, false};
	if (!sp->rules_tried)
		sponge_rules_load(sp);
	bool parsed = sp->parsed_msg && e->msg == sp->parsed_msg;
	sp->parsed_msg = NULL; /* it speaks of this record only */
	if (parsed)
		v->pid = sp->parsed_pid;
	if (!sp->nhits)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	sponge_judgement j;
	if (sp_rules_judge_ingest(sp, e, parsed ? sp->parsed_line : NULL,
				  parsed ? sp->parsed_len : 0, v->pid,
				  (int64_t)ts.tv_sec * 1000000, &j) != SPONGE_OK ||
	    j.rule < 0 || (size_t)j.rule >= sp->nhits)
		return;
	int64_t now = (int64_t)ts.tv_sec * 1000000;
	v->rule = (int)j.rule;
	v->escalated = past_unless(sp, &sp->hits[j.rule], now);
	sp->hits[j.rule].n++;
	sp->hits_pending = true;
	if (!v->escalated)
		v->level = sp_verdict_level(&j, e->level, &v->orig_level,
					    &v->drop);
}

static int enqueue(sponge *sp, int64_t t, int64_t received, const verdict *v,
		   const char *tag,
		   size_t tlen, const char *host, size_t hlen, const char *msg,
		   size_t mlen)
{
	if (sp->qn == sp->qcap) {
		size_t ncap = sp->qcap ? sp->qcap * 2 : 256;
		sp_queued *nq = sp_realloc(sp->q, ncap * sizeof *nq);
		if (!nq)
			return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		sp->q = nq;
		sp->qcap = ncap;
	}
	size_t before = sp->qdata.len;
	if (!sb_add(&sp->qdata, tag, tlen) || !sb_add(&sp->qdata, host, hlen) ||
	    !sb_add(&sp->qdata, msg, mlen)) {
		sp->qdata.len = before;
		sp->qdata.data[before] = '\0';
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	if (sp->qn == 0)
		sp->q_first_us = coarse_now();
	if (sp->run.id && !sp->run.ended) { /* its output's lines */
		sp->run.lines++;
		for (const char *m = msg, *e = msg + mlen;
		     (m = memchr(m, '\n', (size_t)(e - m))); m++)
			sp->run.lines++;
	}
	sp->q[sp->qn++] = (sp_queued){
		t,	   received,	      v->level, before, tlen,
		before + tlen, hlen, before + tlen + hlen, mlen,
		v->rule, v->orig_level, v->pid, v->escalated, false, sp->run.id};
	return SPONGE_OK;
}

static bool queue_due(const sponge *sp)
{
	if (sp->batch_max <= 1 ||sp->qn >= sp->batch_max || sp->qdata.len >= sp->batch_bytes_max)
		return true;
	return sp->batch_ms &&
	       coarse_now() - sp->q_first_us >= (int64_t)sp->batch_ms * 1000;
}

#define TAG_MAX 64
#define HOST_MAX 255

size_t sponge_max_record(const sponge *sp)
{
	return sp ? (size_t)sp->cfg.max_record : 0;
}

/* Clean a short field (tag, host) into sp->clean; returns its length. */
static bool clean_field(sponge *sp, const char *s, size_t limit, size_t *len)
{
	size_t before = sp->clean.len, used;
	if (!sp_clean(&sp->clean, s, strlen(s), limit, &used))
		return false;
	*len = sp->clean.len - before;
	return true;
}

int sponge_append_entry(sponge *sp, const sponge_entry *e)
{
	SP_GUARD;
	if (!sp_usable(sp) || !e)
		return SPONGE_EINVAL;
	if (e->level < 0 || e->level > 7)
		return sp_fail(sp, SPONGE_EINVAL, "level %d out of range 0…7",
			       e->level);
	if (!e->msg && e->len)
		return sp_fail(sp, SPONGE_EINVAL, "NULL message");
	verdict v;
	judge(sp, e, &v);
	if (v.drop) /* counted by its rule, written with the next records */
		return sp->batch_max <= 1 ? sp_store_write(sp, false)
					  : SPONGE_OK;
	const char *msg = e->msg ? e->msg : "";
	size_t len = e->len;
	/* A stated time is kept (clamped to years 0001-9999, so that no
	 * difference of two times overflows); when it is more than a minute
	 * away from now, when it was received is kept too. */
	int64_t t = e->time_us ? sp_clamp_time(e->time_us) : sponge_now();
	int64_t received = 0;
	if (e->time_us) {
		/* a minute's precision is all this needs: the clock is read
		 * once per batch (and every 1024 records) */
		if (!sp->qn || !(++sp->rcv_reads & 1023)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME_COARSE, &ts);
			sp->rcv_now = (int64_t)ts.tv_sec * 1000000 +
				      ts.tv_nsec / 1000;
		}
		if (t - sp->rcv_now > SP_RECEIVED_SLACK_US ||
		    sp->rcv_now - t > SP_RECEIVED_SLACK_US)
			received = sp->rcv_now;
	}

	/* Clean tag, host and (if needed) message into one scratch buffer. */
	sb_reset(&sp->clean);
	size_t tlen, hlen;
	if (!clean_field(sp, e->tag ? e->tag : "", TAG_MAX, &tlen) ||
	    !clean_field(sp, e->host ? e->host : sp->host, HOST_MAX, &hlen))
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	/* line ends after the last line are not part of it */
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		len--;
	const char *m = msg;
	size_t mlen = len, moff = 0;
	size_t limit = sp->cfg.max_record;
	if (len > limit || e->cut_bytes || !sp_is_clean(msg, len)) {
		size_t used;
		moff = sp->clean.len;
		if (!sp_clean_text(&sp->clean, msg, len, limit, &used, true))
			return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		uint64_t cut = (uint64_t)(len - used) + e->cut_bytes;
		if (cut && !sb_printf(&sp->clean,
				      " [logsponge: cut %llu bytes]",
				      (unsigned long long)cut))
			return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
		m = NULL; /* the buffer may have moved: set below */
		mlen = sp->clean.len - moff;
	}
	const char *tag = sp->clean.data, *host = sp->clean.data + tlen;
	if (!m)
		m = sp->clean.data + moff;

	int rc = enqueue(sp, t, received, &v, tag, tlen, host, hlen, m, mlen);
	if (rc == SPONGE_OK && queue_due(sp))
		rc = sp_store_write(sp, false);
	if (rc != SPONGE_OK && sp->batch_max <= 1 && sp->qn) {
		/* unbatched: the caller sees the failure; keep no queue */
		sp->qn = 0;
		sb_reset(&sp->qdata);
	}
	return rc;
}

int sponge_append(sponge *sp, int level, const char *tag, int64_t time_us,
		  const char *msg, size_t len)
{
	sponge_entry e = {level, tag, time_us, NULL, msg, len, 0};
	return sponge_append_entry(sp, &e);
}

int sponge_vlog(sponge *sp, int level, const char *tag, const char *fmt,
		va_list ap)
{
	/* (the formatting allocates: a fork waits for it too, or a child
	 * could find an allocator's lock held, under ASan's allocator) */
	SP_GUARD;
	if (!sp || !sp->db)
		return SPONGE_EINVAL;
	if (!fmt)
		return sp_fail(sp, SPONGE_EINVAL, "NULL format");
	spbuf b;
	sb_init(&b, 0);
	if (!sb_vprintf(&b, fmt, ap)) {
		sb_free(&b);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	int rc = sponge_append(sp, level, tag, 0, b.data, b.len);
	sb_free(&b);
	return rc;
}

int sponge_log(sponge *sp, int level, const char *tag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sponge_vlog(sp, level, tag, fmt, ap);
	va_end(ap);
	return rc;
}

int sponge_set_batch(sponge *sp, unsigned max_records, size_t max_bytes,
		     unsigned max_ms)
{
	SP_GUARD;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	sp->batch_max = max_records;
	sp->batch_bytes_max = max_bytes ? max_bytes : SIZE_MAX;
	sp->batch_ms = max_ms;
	if (max_records <= 1 && sp->qn)
		return sp_store_write(sp, false);
	return SPONGE_OK;
}

size_t sponge_queued(const sponge *sp) { return sp ? sp->qn : 0; }

int sponge_sync(sponge *sp)
{
	SP_GUARD;
	if (!sp_usable(sp))
		return SPONGE_EINVAL;
	if (sp->qn || sp->hits_pending || sp->pos_name)
		return sp_store_write(sp, true);
	return sp_store_sync(sp);
}

size_t sponge_discard_queue(sponge *sp, sponge_writer out, void *arg)
{
	if (!sp)
		return 0;
	size_t n = sp->qn;
	const char *d = sp->qdata.data;
	bool ok = out != NULL;
	for (size_t i = 0; i < n && ok; i++)
		ok = out(arg, d + sp->q[i].msg_off, sp->q[i].msg_len) == 0 &&
		     out(arg, "\n", 1) == 0;
	sp->qn = 0;
	sb_reset(&sp->qdata);
	return n;
}
