/* digest.c - what a digest says, in the order an on-call engineer reads
 * it: the kinds of problem, most severe first; the context of the first
 * of the most severe; why the message went and what still waits; the
 * counts; then the log, by host and by day, in the reader's zone.
 *
 * One pass over the batch (the survey) gathers all of it in bounded
 * memory: folding counts, up to KINDS_MAX kinds of problem, and the few
 * records before the first of the most severe.  compose.c writes the
 * lines out as MIME. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest_kinds.h"
#include "flush.h"

/* ---- the survey ----------------------------------------------------- */

/*
 * Folding, while streaming and in bounded memory: the survey counts each
 * (level, tag, message) -- or its masked form -- by a 64-bit hash in a
 * table of FOLD_SLOTS entries (3 MiB); the log then lists a repeated
 * record once, at its first appearance, with its count and last time.
 * Once the table is 3/4 full, records whose key is not in it yet are
 * listed one by one, unfolded.  The records at warning or above have a
 * part of the table to themselves (FOLD_SEVERE slots): a message whose
 * body lists the most severe first folds them whatever number of other
 * records came before.
 */
#define FOLD_SEVERE 32768
#define FOLD_REST 65536
#define FOLD_SLOTS (FOLD_SEVERE + FOLD_REST)
typedef struct fold_slot {
	uint64_t key;    /* 0: empty */
	int64_t count;
	int64_t last;
	int64_t printed; /* the rewind generation that printed it */
} fold_slot;

/* A kind of problem (digest_kinds.h): the records at or above
 * count_level with the same level, tag and masked first line. */
#define KINDS_MAX 4096
#define KIND_SLOTS 8192
#define TOP_KINDS 20
typedef sp_dkind kind;

/* The records before the first of the most severe, from its tag. */
#define CONTEXT_LINES 8
typedef struct ctx_rec {
	int64_t time;
	int level;
	char tag[48];
	char host[64];
	spbuf msg;             /* up to CONTEXT_LINES lines */
} ctx_rec;

struct sp_digest {
	fold_slot *fold_t;     /* NULL: fold = off */
	size_t fold_used[2];   /* in each part: warning or above, the rest */
	kind *kinds;
	int nkinds;
	int32_t *kidx;         /* KIND_SLOTS: index + 1 into kinds, 0 empty */
	int64_t kinds_lost;    /* records of kinds past KINDS_MAX */
	ctx_rec ring[SP_CONTEXT]; /* the last ones of the top tag, a ring */
	int nring, ring_at;
	ctx_rec top;           /* the first of the most severe */
	bool have_top;
	int tagw;              /* the tag column's width */
	int64_t folded;        /* records merged into an earlier one */
	bool fold, masked;     /* fold = off, exact, masked */
	int count_level;
	char host_last[256];   /* the last host's hash, kept */
	uint64_t host_h;
	bool host_ok;
};

/* ---- the line sink ---------------------------------------------------- */

/* Lines go to the composer's sink (c->say), whatever part it writes. */
bool sp_body_line(sp_composer *c, const char *s, size_t n)
{
	return c->say(c, s, n);
}

bool sp_body_printf(sp_composer *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_reset(&c->scratch);
	bool ok = sb_vprintf(&c->scratch, fmt, ap);
	va_end(ap);
	return ok && c->say(c, c->scratch.data, c->scratch.len);
}

/* Characters (not bytes) of UTF-8 text: what a column takes. */
static size_t columns(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* The tag, "-" for none, padded to the tag column, and a space. */
static void tag_column(const sp_composer *c, spbuf *o, const char *tag)
{
	const char *t = *tag ? tag : "-";
	sb_adds(o, t);
	for (size_t w = columns(t), want = c->dg ? (size_t)c->dg->tagw : 1;
	     w < want; w++)
		sb_addc(o, ' ');
	sb_addc(o, ' ');
}

static uint64_t host_hash(const char *h)
{
	uint64_t v = SP_FNV_BASIS;
	for (; *h; h++)
		v = sp_fnv_byte(v, (unsigned char)*h);
	return v;
}

/* The folding key: level, tag, the first line (a record of several lines
 * folds by it: two of the same traceback differ in their frames'
 * addresses), and the host (records of two hosts never fold together;
 * with one host it changes nothing). */
static uint64_t keyed(sp_digest *d, const sponge_record *r, uint64_t h)
{
	if (!d->host_ok || strcmp(d->host_last, r->host) != 0) {
		size_t hl = strlen(r->host);
		d->host_h = host_hash(r->host);
		d->host_ok = hl < sizeof d->host_last;
		if (d->host_ok)
			memcpy(d->host_last, r->host, hl + 1);
	}
	h ^= d->host_h * 31;
	return h ? h : 1;
}

static uint64_t record_key(sp_digest *d, const sponge_record *r, bool masked)
{
	size_t off, n = sp_summary(r->message, r->message_len, &off);
	return keyed(d, r, sp_fold_hash(r->level, r->tag, r->message + off, n,
					masked));
}

static fold_slot *fold_find(sp_digest *d, int level, uint64_t key,
			    bool insert)
{
	int rest = level > SPONGE_WARNING;
	fold_slot *t = d->fold_t + (rest ? FOLD_SEVERE : 0);
	size_t *used = &d->fold_used[rest], size = rest ? FOLD_REST : FOLD_SEVERE;
	for (size_t i = (size_t)key % size, k = 0; k < size;
	     k++, i = (i + 1) % size) {
		if (t[i].key == key)
			return &t[i];
		if (!t[i].key) {
			if (!insert || *used >= size / 4 * 3)
				return NULL;
			(*used)++;
			t[i].key = key;
			return &t[i];
		}
	}
	return NULL;
}

static void copy_cut(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap) { /* on a character boundary */
		n = cap - 1;
		while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static size_t first_line(const sponge_record *r)
{
	const char *nl = memchr(r->message, '\n', r->message_len);
	return nl ? (size_t)(nl - r->message) : r->message_len;
}

/* (exact: the exact hash of its summary line, when the caller has it) */
static void count_kind(sp_digest *d, const sponge_record *r, uint64_t exact)
{
	size_t off, n = sp_summary(r->message, r->message_len, &off);
	const char *m = r->message + off;
	uint64_t key = sp_fold_hash(r->level, r->tag, m, n, true);
	key = key ? key : 1;
	for (size_t i = key % KIND_SLOTS, k = 0; k < KIND_SLOTS;
	     k++, i = (i + 1) % KIND_SLOTS) {
		if (d->kidx[i]) {
			kind *x = &d->kinds[d->kidx[i] - 1];
			if (x->key != key)
				continue;
			x->count++;
			x->last = r->time_us > x->last ? r->time_us : x->last;
			/* (once it varies, no need to hash the text again) */
			if (!x->varies)
				x->varies = x->exact !=
					    (exact ? exact
						   : sp_fold_hash(r->level, r->tag,
								  m, n, false));
			x->hosts |= strcmp(x->host, r->host) != 0;
			x->escalating |= r->escalated != 0;
			return;
		}
		if (d->nkinds >= KINDS_MAX)
			break;
		kind *x = &d->kinds[d->nkinds++];
		d->kidx[i] = d->nkinds;
		memset(x, 0, sizeof *x);
		x->key = key;
		x->exact = exact ? exact
				 : sp_fold_hash(r->level, r->tag, m, n, false);
		x->level = r->level;
		/* its kind across levels: tag and masked line */
		x->fp = sp_fold_hash(0, r->tag, m, n, true);
		x->escalating = r->escalated != 0;
		x->count = 1;
		x->first = x->last = r->time_us;
		copy_cut(x->tag, sizeof x->tag, r->tag, strlen(r->tag));
		copy_cut(x->host, sizeof x->host, r->host, strlen(r->host));
		copy_cut(x->text, sizeof x->text, m, n);
		return;
	}
	d->kinds_lost++;
}

/* Lines [from, to) of m[0..len) into out, each cut to 300 bytes. */
static void copy_lines(spbuf *out, const char *m, size_t len, size_t from,
		       size_t to)
{
	const char *end = m + len;
	for (size_t line = 0; m <= end && line < to; line++) {
		const char *nl = memchr(m, '\n', (size_t)(end - m));
		size_t n = (size_t)((nl ? nl : end) - m);
		if (line >= from) {
			char cut[304];
			copy_cut(cut, 301, m, n);
			if (line > from || out->len)
				sb_addc(out, '\n');
			sb_adds(out, cut);
			if (strlen(cut) < n)
				sb_adds(out, "\xE2\x80\xA6");
		}
		if (!nl)
			break;
		m = nl + 1;
	}
}

/* A copy of r: its lines, each cut to 300 bytes; past CONTEXT_LINES its
 * head and its tail with "… N lines …" between (a Python traceback's
 * exception is on its last line). */
static void keep_record(ctx_rec *k, const sponge_record *r)
{
	k->time = r->time_us;
	k->level = r->level;
	copy_cut(k->tag, sizeof k->tag, r->tag, strlen(r->tag));
	copy_cut(k->host, sizeof k->host, r->host, strlen(r->host));
	sb_reset(&k->msg);
	size_t lines = 1;
	for (size_t i = 0; i < r->message_len; i++)
		lines += r->message[i] == '\n';
	if (lines <= CONTEXT_LINES) {
		copy_lines(&k->msg, r->message, r->message_len, 0, lines);
		return;
	}
	size_t head = CONTEXT_LINES / 2, tail = CONTEXT_LINES - head - 1;
	copy_lines(&k->msg, r->message, r->message_len, 0, head);
	sb_printf(&k->msg, "\n\xE2\x80\xA6 %zu lines \xE2\x80\xA6",
		  lines - head - tail);
	copy_lines(&k->msg, r->message, r->message_len, lines - tail, lines);
}

static void digest_free(sp_digest *d)
{
	if (!d)
		return;
	sp_free(d->fold_t);
	sp_free(d->kinds);
	sp_free(d->kidx);
	for (int i = 0; i < SP_CONTEXT; i++)
		sb_free(&d->ring[i].msg);
	sb_free(&d->top.msg);
	sp_free(d);
}

void sp_digest_free(sp_composer *c)
{
	digest_free(c->dg);
	c->dg = NULL;
}

int sp_digest_begin(sp_composer *c)
{
	sp_digest_free(c);
	sp_digest *d = sp_malloc(sizeof *d);
	if (!d)
		return sp_fail(c->sp, SPONGE_ENOMEM, "out of memory");
	memset(d, 0, sizeof *d);
	c->dg = d;
	d->fold = c->sp->cfg.fold != SP_FOLD_OFF;
	d->masked = c->sp->cfg.fold == SP_FOLD_MASKED;
	d->count_level = c->sp->cfg.policy.count_level;
	d->kinds = sp_malloc(KINDS_MAX * sizeof *d->kinds);
	d->kidx = sp_malloc(KIND_SLOTS * sizeof *d->kidx);
	d->fold_t = d->fold ? sp_malloc(FOLD_SLOTS * sizeof *d->fold_t) : NULL;
	for (int i = 0; i < SP_CONTEXT; i++)
		sb_init(&d->ring[i].msg, 0);
	sb_init(&d->top.msg, 0);
	if (!d->kinds || !d->kidx || (d->fold && !d->fold_t)) {
		sp_digest_free(c);
		return sp_fail(c->sp, SPONGE_ENOMEM, "out of memory");
	}
	memset(d->kidx, 0, KIND_SLOTS * sizeof *d->kidx);
	if (d->fold)
		memset(d->fold_t, 0, FOLD_SLOTS * sizeof *d->fold_t);
	return SPONGE_OK;
}

void sp_digest_add(sp_composer *c, const sponge_record *r)
{
	sp_digest *d = c->dg;
	if (!d)
		return;
	int w = (int)columns(*r->tag ? r->tag : "-");
	if (w > d->tagw && w <= 16)
		d->tagw = w;
	/* fold = exact hashes each summary line once, for both */
	size_t off, n = sp_summary(r->message, r->message_len, &off);
	uint64_t exact = d->fold && !d->masked
				 ? sp_fold_hash(r->level, r->tag,
						r->message + off, n, false)
				 : 0;
	if (r->level <= d->count_level)
		count_kind(d, r, exact);
	if (!d->fold)
		return;
	fold_slot *s = fold_find(d, r->level,
				 d->masked ? record_key(d, r, true)
					   : keyed(d, r, exact),
				 true);
	if (s) {
		d->folded += s->count > 0;
		s->count++;
		s->last = r->time_us;
	}
}

void sp_digest_each(void *composer, const sponge_record *r)
{
	sp_digest_add(composer, r);
}

/* The record with this id, copied into k (false: it is gone). */
static int fetch(sp_composer *c, int64_t id, ctx_rec *k, bool *got)
{
	const sponge_record *r;
	int rc = c->src->get(c->src, id, &r);
	*got = rc == SPONGE_ROW;
	if (*got)
		keep_record(k, r);
	return rc == SPONGE_ROW || rc == SPONGE_DONE ? SPONGE_OK : rc;
}

int sp_digest_end(sp_composer *c)
{
	sp_digest *d = c->dg;
	const sp_tally *n = &c->b->n;
	if (!d->tagw)
		d->tagw = 1;
	/* the first of the most severe, after what its tag logged before */
	int rc = SPONGE_OK;
	d->nring = d->ring_at = 0;
	for (int i = 0; rc == SPONGE_OK && i < n->nctx; i++) {
		bool got;
		rc = fetch(c, n->ctx_ids[i], &d->ring[d->nring], &got);
		d->nring += got;
	}
	int64_t top = n->count ? n->first_of[n->highest] : 0;
	if (rc == SPONGE_OK && top)
		rc = fetch(c, top, &d->top, &d->have_top);
	if (rc == SPONGE_OK)
		rc = sp_kinds_classify(c, d->kinds, d->nkinds);
	return rc;
}

int sp_digest_kinds(sp_composer *c, sp_batch *b)
{
	return c->dg ? sp_kinds_to_batch(c->sp, c->dg->kinds, c->dg->nkinds, b)
		     : SPONGE_OK;
}

int sp_digest_survey(sp_composer *c)
{
	int rc = sp_digest_begin(c);
	if (rc == SPONGE_OK)
		rc = c->src->open(c->src, SP_OLDEST_FIRST);
	const sponge_record *r;
	while (rc == SPONGE_OK && (rc = c->src->next(c->src, &r)) == SPONGE_ROW) {
		rc = SPONGE_OK;
		sp_digest_add(c, r);
	}
	c->src->close(c->src);
	if (rc == SPONGE_DONE)
		rc = sp_digest_end(c);
	return rc;
}

/* ---- times for people ----------------------------------------------- */

/* t in the reader's zone; the last second's answer is kept (a log's
 * records come many to a second, and a zone lookup is not free). */
static void civil(sp_composer *c, int64_t t, sp_civil *v)
{
	int64_t sec = t / 1000000 - (t % 1000000 < 0);
	if (!c->civ_ok || sec != c->civ_sec) {
		sp_zone_civil(c->zone, t, &c->civ);
		c->civ_sec = sec;
		c->civ_ok = true;
	}
	*v = c->civ;
}

/* "03:12:07" or, another day than the log's last, "12-01 23:58:01". */
void sp_digest_clock(sp_composer *c, int64_t t, char *buf, size_t n,
		     bool with_date)
{
	sp_civil v;
	civil(c, t, &v);
	if (with_date)
		snprintf(buf, n, "%04d-%02d-%02d %02d:%02d:%02d", v.year, v.mon,
			 v.mday, v.hour, v.min, v.sec);
	else
		snprintf(buf, n, "%02d:%02d:%02d", v.hour, v.min, v.sec);
}

static bool same_day(sp_composer *c, int64_t a, int64_t b)
{
	sp_civil x, y;
	civil(c, a, &x);
	civil(c, b, &y);
	return x.year == y.year && x.mon == y.mon && x.mday == y.mday;
}

void sp_digest_hms(sp_composer *c, int64_t t, char buf[32])
{
	/* once a second, not once a record */
	int64_t sec = t / 1000000 - (t % 1000000 < 0);
	if (!c->hms_ok || sec != c->hms_sec) {
		sp_digest_clock(c, t, c->hms, sizeof c->hms, c->b->size.gz != NULL);
		c->hms_sec = sec;
		c->hms_ok = true;
	}
	memcpy(buf, c->hms, sizeof c->hms);
}

/* "Wednesday 2026-12-02 (CET, UTC+01:00)". */
static void day_heading(const sp_civil *v, char *buf, size_t n)
{
	static const char *const days[] = {"Sunday", "Monday", "Tuesday",
					   "Wednesday", "Thursday", "Friday",
					   "Saturday"};
	char zone[48];
	sp_zone_label(v, zone, sizeof zone);
	snprintf(buf, n, "%s %04d-%02d-%02d (%s)", days[v->wday % 7], v->year,
		 v->mon, v->mday, zone);
}

/* A heading before r when its host or day (or zone) is not the last
 * record's: into out (empty when none). */
void sp_digest_headings(sp_composer *c, const sponge_record *r, spbuf *host,
			spbuf *day)
{
	sb_reset(host);
	sb_reset(day);
	if (c->b->size.gz) /* most severe first: full times, no headings */
		return;
	if (c->b->n.nhosts > 1 && strcmp(c->cur_host, r->host) != 0) {
		snprintf(c->cur_host, sizeof c->cur_host, "%s", r->host);
		sb_printf(host, "Host %s", r->host);
		c->cur_day = 0; /* each host's log starts with its day */
	}
	sp_civil v;
	civil(c, r->time_us, &v);
	int64_t key = ((int64_t)v.year * 10000 + v.mon * 100 + v.mday) *
			      100000 + v.off_s / 60 + 50000;
	if (key != c->cur_day) {
		c->cur_day = key;
		day_heading(&v, c->dbuf, sizeof c->dbuf);
		sb_adds(day, c->dbuf);
	}
}

/* ---- the top of the body -------------------------------------------- */

static int kind_order(const void *pa, const void *pb)
{
	const kind *a = pa, *b = pb;
	if (a->level != b->level)
		return a->level - b->level;
	bool na = a->mark == SP_MARK_NEW || a->mark == SP_MARK_REGRESSED;
	bool nb = b->mark == SP_MARK_NEW || b->mark == SP_MARK_REGRESSED;
	if (na != nb) /* what is new first, within a level */
		return na ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return a->first < b->first ? -1 : a->first > b->first;
}

/* "  ×312 err     api      upstream timeout after #ms  02:58:01–03:14:55" */
static void kind_line(sp_composer *c, const kind *k, int cw, int64_t end)
{
	spbuf *o = &c->line;
	sb_reset(o);
	char cnt[32];
	snprintf(cnt, sizeof cnt, "\xC3\x97%lld", (long long)k->count);
	sb_printf(o, "  %-*s %s ", cw + 2 /* "×" is 2 bytes */, cnt,
		  sp_level_column(k->level));
	tag_column(c, o, k->tag);
	sp_kind_mark(o, k);
	if (k->escalating)
		sb_adds(o, "ESCALATING ");
	if (k->varies) {
		sp_mask(o, k->text, strlen(k->text));
	} else {
		sb_adds(o, k->text);
	}
	char t1[32], t2[32];
	sp_digest_clock(c, k->first, t1, sizeof t1, !same_day(c, k->first, end));
	sp_digest_clock(c, k->last, t2, sizeof t2, !same_day(c, k->last, end));
	if (strcmp(t1, t2) != 0) {
		sb_printf(o, "  %s\xE2\x80\x93%s", t1, t2);
	} else {
		sb_printf(o, "  at %s", t1);
	}
	if (c->b->n.nhosts > 1)
		sb_printf(o, k->hosts ? " (several hosts)" : " (%s)", k->host);
	sp_body_line(c, o->data, o->len);
}

static void attention(sp_composer *c)
{
	sp_digest *d = c->dg;
	const char *lv = sponge_level_name(c->sp->cfg.policy.count_level);
	if (!d->nkinds) {
		sp_body_printf(c, "Nothing at %s or above.", lv);
		return;
	}
	qsort(d->kinds, (size_t)d->nkinds, sizeof *d->kinds, kind_order);
	int shown = d->nkinds < TOP_KINDS ? d->nkinds : TOP_KINDS;
	int cw = 1;
	for (int i = 0; i < shown; i++) {
		int w = snprintf(NULL, 0, "%lld", (long long)d->kinds[i].count);
		cw = w > cw ? w : cw;
	}
	sp_body_printf(c, "Needs attention: %d kind%s of record at %s or above, "
			  "most severe first:",
		       d->nkinds, d->nkinds == 1 ? "" : "s", lv);
	for (int i = 0; i < shown; i++)
		kind_line(c, &d->kinds[i], cw, c->b->n.t_last);
	if (d->nkinds > shown || d->kinds_lost)
		sp_body_printf(c, "  and %d more kind%s%s, in the log below",
			       d->nkinds - shown,
			       d->nkinds - shown == 1 ? "" : "s",
			       d->kinds_lost ? " (and others not counted)" : "");
	sp_kinds_new_line(c, d->kinds, d->nkinds);
}

/* A kept record: "  03:12:07 crit    db: …", its other lines indented. */
static void context_record(sp_composer *c, const ctx_rec *k, const char *mark)
{
	char t[32];
	sp_digest_clock(c, k->time, t, sizeof t, !same_day(c, k->time, c->b->n.t_last));
	const char *m = k->msg.data ? k->msg.data : "";
	size_t n = strcspn(m, "\n");
	/* several hosts: the tag's records may come from more than one */
	bool other = c->b->n.nhosts > 1 && strcmp(k->host, c->dg->top.host);
	sp_body_printf(c, "%s%s %s %s%s%s: %.*s", mark, t,
		       sp_level_column(k->level), k->tag[0] ? k->tag : "-",
		       other ? "@" : "", other ? k->host : "", (int)n, m);
	for (m += n; *m == '\n';) {
		m++;
		n = strcspn(m, "\n");
		sp_body_printf(c, "      %.*s", (int)n, m);
		m += n;
	}
}

static void context(sp_composer *c)
{
	sp_digest *d = c->dg;
	if (!d->have_top || c->b->n.highest > c->sp->cfg.policy.count_level)
		return;
	sp_body_line(c, "", 0);
	const char *lv = sponge_level_name(c->b->n.highest);
	char on[80] = "";
	if (c->b->n.nhosts > 1) /* which host, when there are several */
		snprintf(on, sizeof on, " (on %s)", d->top.host);
	if (d->nring)
		sp_body_printf(c, "The first %s%s, after what %s logged before "
				  "it:", lv, on, d->top.tag[0] ? d->top.tag : "-");
	else
		sp_body_printf(c, "The first %s%s:", lv, on);
	for (int i = 0; i < d->nring; i++)
		context_record(c, &d->ring[(d->ring_at + i) % SP_CONTEXT], "  ");
	context_record(c, &d->top, "* ");
}

/* "<prefix> emerg 1, err 3, info 40" over the levels with a count. */
static void level_counts_line(sp_composer *c, const char *prefix,
			      const int64_t n[8])
{
	spbuf *o = &c->line;
	sb_reset(o);
	sb_adds(o, prefix);
	const char *sep = " ";
	for (int l = 0; l < 8; l++) {
		if (!n[l])
			continue;
		sb_printf(o, "%s%s %lld", sep, sponge_level_name(l),
			  (long long)n[l]);
		sep = ", ";
	}
	sp_body_line(c, o->data, o->len);
}

/* Why it went, and what waits for the next message. */
static void why_and_waiting(sp_composer *c)
{
	const sp_batch *b = c->b;
	sp_body_line(c, "", 0);
	if (b->env.why[0])
		sp_body_printf(c, "Sent because: %s", b->env.why);
	int64_t waiting = 0;
	for (int l = 0; l < 8; l++)
		waiting += b->n.waiting[l];
	if (!waiting) {
		sp_body_line(c, "Waiting: nothing", 16);
		return;
	}
	char what[96];
	snprintf(what, sizeof what, "Waiting for the next message: %lld "
				    "record%s:",
		 (long long)waiting, waiting == 1 ? "" : "s");
	level_counts_line(c, what, b->n.waiting);
}

/* The counts: span, levels, tags, hosts, folding, drops, the wait. */
static void counts(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	char t1[32], t2[32], span[32], zone[48];
	sp_civil v;
	civil(c, n->t_last, &v);
	sp_zone_label(&v, zone, sizeof zone);
	sp_digest_clock(c, n->t_first, t1, sizeof t1, true);
	sp_digest_clock(c, n->t_last, t2, sizeof t2, !same_day(c, n->t_first, n->t_last));
	sponge_format_span(sp_sub(n->t_last, n->t_first), span, sizeof span);
	sp_body_printf(c, "From %s to %s %s (%s)", t1, t2, zone, span);
	level_counts_line(c, "Levels:", n->by_level);
	sp_body_printf(c, "Tags: %s", n->tags);
	if (n->nhosts > 1)
		sp_body_printf(c, "Hosts: %s", n->hosts);
	if (c->dg->folded)
		sp_body_printf(c, "Folded: %lld repeated record%s shown once "
				  "each with \xC3\x97N (fold = %s)",
			       (long long)c->dg->folded,
			       c->dg->folded == 1 ? "" : "s",
			       c->sp->cfg.fold == SP_FOLD_MASKED ? "masked"
								 : "exact");
	sp_digest_rules(c);
	int64_t dropped = 0;
	for (int l = 0; l < 8; l++)
		dropped += n->dropped[l];
	if (dropped) {
		char what[160];
		snprintf(what, sizeof what,
			 "Dropped because the spool was full "
			 "(spool.max_records/max_bytes), %lld record%s:",
			 (long long)dropped, dropped == 1 ? "" : "s");
		level_counts_line(c, what, n->dropped);
	}
	if (c->b->env.min_interval_us) {
		char w[32], mi[32];
		sponge_format_span(sp_sub(c->b->env.date_us, n->t_first), w,
				   sizeof w);
		sponge_format_span(c->b->env.min_interval_us, mi, sizeof mi);
		sp_body_printf(c, "Waited: the oldest record for %s "
				  "(policy.min_interval %s)", w, mi);
	}
}

/* Past the size cap: why the body is partial, what is attached. */
static void size_note(sp_composer *c)
{
	const sp_size_plan *z = &c->b->size;
	char sz[32];
	if (z->max_size % (1 << 20) == 0)
		snprintf(sz, sizeof sz, "%llu MiB",
			 (unsigned long long)(z->max_size >> 20));
	else
		snprintf(sz, sizeof sz, "%llu KiB",
			 (unsigned long long)(z->max_size >> 10));
	sp_body_line(c, "", 0);
	sp_body_printf(c, "This message may not exceed %s (mail.max_size, or "
			  "the server's SIZE), so its body shows the most "
			  "severe records that fit; the complete log of all "
			  "%lld records is attached: %s (%llu bytes, gzip).",
		       sz, (long long)c->b->n.count, z->gz_name,
		       (unsigned long long)z->gz_bytes);
}

bool sp_digest_title(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	sp_body_printf(c, "logsponge on %s: %lld record%s, highest level %s",
		       c->sp->host, (long long)n->count,
		       n->count == 1 ? "" : "s", sponge_level_name(n->highest));
	return sp_body_line(c, "", 0);
}

bool sp_digest_top(sp_composer *c)
{
	const sp_tally *n = &c->b->n;
	attention(c);
	context(c);
	why_and_waiting(c);
	counts(c);
	bool fold = c->dg->folded > 0;
	if (c->b->size.gz) {
		size_note(c);
		sp_body_line(c, "", 0);
		sp_body_printf(c, "The most severe records first%s:",
			       fold ? " (\xC3\x97N: repeats folded, with the "
				      "last time)"
				    : "");
	} else {
		sp_body_line(c, "", 0);
		sp_body_printf(c, "Log, oldest first%s:",
			       n->nhosts > 1 ? ", by host" : "");
		if (c->dg->folded)
			sp_body_printf(c, "(\xC3\x97N: repeats folded into the "
					  "first, with the last time)");
	}
	return !c->out.failed && !c->line.failed;
}

/* ---- the log ------------------------------------------------------ */

/* Is r a repeat already shown (skip it), or the first of *times? */
bool sp_digest_fold(sp_composer *c, const sponge_record *r, int64_t *times,
		    int64_t *last)
{
	*times = 1;
	sp_digest *d = c->dg;
	if (!d || !d->fold)
		return true;
	fold_slot *s = fold_find(d, r->level, record_key(d, r, d->masked), false);
	if (!s || s->count < 2)
		return true;
	if (s->printed == c->generation)
		return false; /* shown at its first */
	s->printed = c->generation;
	*times = s->count;
	*last = s->last;
	return true;
}

bool sp_digest_line(sp_composer *c, spbuf *o, const sponge_record *r,
		    int64_t times, int64_t last)
{
	char t[32];
	sp_digest_hms(c, r->time_us, t);
	/* (by hand: this runs once a record, printf's cost showed) */
	sb_adds(o, t);
	sb_addc(o, ' ');
	sb_add(o, sp_level_column(r->level), SP_LEVEL_COLUMN);
	sb_addc(o, ' ');
	tag_column(c, o, r->tag);
	if (times > 1)
		sb_printf(o, "\xC3\x97%lld ", (long long)times);
	size_t n = first_line(r);
	sb_add(o, r->message, n);
	if (times > 1) {
		char lt[32];
		sp_digest_clock(c, last, lt, sizeof lt,
			   c->b->size.gz || !same_day(c, r->time_us, last));
		sb_printf(o, "  (last %s)", lt);
	}
	/* the other lines of a record, indented */
	for (const char *m = r->message + n, *end = r->message + r->message_len;
	     m < end;) {
		m++; /* the '\n' */
		const char *nl = memchr(m, '\n', (size_t)(end - m));
		sb_add(o, "\n    ", 5);
		sb_add(o, m, (size_t)((nl ? nl : end) - m));
		m = nl ? nl : end;
	}
	return !o->failed;
}
