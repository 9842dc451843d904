/* join.c - continuation lines joined into the record of their first line
 * (--join auto, the default): a Python traceback from "Traceback (most
 * recent call last):" through the exception line that ends it (chained
 * ones too), a Java/Kotlin stack trace (the exception line right after a
 * log line, "at …", "Caused by:", "... N more"), a Go panic or goroutine
 * dump, and any line indented under a first line -- the patterns of
 * Google's fluent-plugin-detect-exceptions and Filebeat's multiline
 * settings.  A line that is none of these starts a record of its own, so
 * unrelated lines are never joined. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { J_NONE, J_PLAIN, J_PYTB, J_PYEXC, J_GO };

static bool prefix(const char *l, size_t n, const char *p)
{
	size_t k = strlen(p);
	return n >= k && memcmp(l, p, k) == 0;
}

static bool indented(const char *l, size_t n)
{
	if (!n || (l[0] != ' ' && l[0] != '\t'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (l[i] != ' ' && l[i] != '\t')
			return true;
	return false; /* blank */
}

static bool blank(const char *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] != ' ' && l[i] != '\t')
			return false;
	return true;
}

static bool ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '$';
}

/* "java.lang.IllegalStateException: boom", "kotlin.KotlinNullPointerException" */
static bool java_exception(const char *l, size_t n)
{
	size_t i = 0, dots = 0, seg = 0;
	while (i < n && (ident(l[i]) || l[i] == '.')) {
		if (l[i] == '.')
			dots++, seg = i + 1;
		i++;
	}
	if (!dots || i == seg || (i < n && l[i] != ':'))
		return false;
	const char *last = l + seg;
	size_t len = i - seg;
	static const char *const ends[] = {"Exception", "Error", "Throwable"};
	for (int k = 0; k < 3; k++) {
		size_t e = strlen(ends[k]);
		if (len >= e && memcmp(last + len - e, ends[k], e) == 0)
			return true;
	}
	return false;
}

/* A line of a Go panic or goroutine dump that is not indented. */
static bool go_line(const char *l, size_t n)
{
	if (prefix(l, n, "goroutine ") || prefix(l, n, "created by ") ||
	    prefix(l, n, "[signal "))
		return true;
	/* a frame's function: "main.main()", "main.(*T).f(0xc000010000)" */
	const char *paren = memchr(l, '(', n);
	return paren && paren > l && l[n - 1] == ')' &&
	       !memchr(l, ' ', (size_t)(paren - l));
}

static int first_state(const char *l, size_t n)
{
	/* most log lines start with a date or a level: nothing to see */
	if (!n || !strchr("Tpfg", l[0]))
		return J_PLAIN;
	if (prefix(l, n, "Traceback (most recent call last):"))
		return J_PYTB;
	if (prefix(l, n, "panic: ") || prefix(l, n, "fatal error: ") ||
	    prefix(l, n, "goroutine "))
		return J_GO;
	return J_PLAIN;
}

/* Does line l continue the pending record?  May change the state. */
static bool continues(adder *a, const char *l, size_t n)
{
	/* a digit, '<' or '[' starts no continuation (a date, a syslog
	 * priority, a bracketed level): the common case, decided at once */
	if (n && ((l[0] >= '0' && l[0] <= '9') || l[0] == '<' || l[0] == '['))
		return false;
	switch (a->jstate) {
	case J_PLAIN:
		if (prefix(l, n, "Traceback (most recent call last):")) {
			a->jstate = J_PYTB;
			return true;
		}
		return indented(l, n) || java_exception(l, n) ||
		       prefix(l, n, "Caused by: ");
	case J_PYTB: /* frames, then the exception line that ends it */
		if (indented(l, n))
			return true;
		if (blank(l, n))
			return false;
		a->jstate = J_PYEXC;
		return true;
	case J_PYEXC: /* a chained exception follows after a blank line */
		if (prefix(l, n, "Traceback (most recent call last):")) {
			a->jstate = J_PYTB;
			return a->jblank > 0;
		}
		return indented(l, n) ||
		       (a->jblank > 0 &&
			(prefix(l, n, "During handling of the above exception") ||
			 prefix(l, n, "The above exception was the direct cause")));
	case J_GO:
		return indented(l, n) || go_line(l, n);
	}
	return false;
}

static bool jadd(adder *a, const char *p, size_t n)
{
	if (a->jlen + n > a->jcap) {
		size_t cap = a->jcap ? a->jcap : 4096;
		while (cap < a->jlen + n)
			cap *= 2;
		char *b = realloc(a->jbuf, cap);
		if (!b)
			return false;
		a->jbuf = b;
		a->jcap = cap;
	}
	memcpy(a->jbuf + a->jlen, p, n);
	a->jlen += n;
	return true;
}

/* The pending record's text into jbuf (it may still point into the
 * caller's buffer, to spare a copy of every line). */
static bool own(adder *a)
{
	if (!a->jptr)
		return true;
	const char *p = a->jptr;
	a->jptr = NULL;
	a->jlen = 0;
	return jadd(a, p, a->jplen);
}

void join_pin(adder *a)
{
	if (a->jptr && !own(a)) { /* out of memory: record it now */
		adder_record(a, a->jptr, a->jplen, 0);
		a->jstate = J_NONE;
	}
}

void join_flush(adder *a)
{
	if (a->jstate != J_NONE) {
		if (a->jptr)
			adder_record(a, a->jptr, a->jplen, 0);
		else
			adder_record(a, a->jbuf, a->jlen, 0);
	}
	a->jstate = J_NONE;
	a->jptr = NULL;
	a->jlen = 0;
	for (; a->jblank; a->jblank--) /* blank lines held back: their own */
		adder_record(a, "", 0, 0);
}

void join_line(adder *a, const char *l, size_t n, uint64_t cut)
{
	if (!a->join || cut) {
		join_flush(a);
		adder_record(a, l, n, cut);
		return;
	}
	size_t have = a->jptr ? a->jplen : a->jlen;
	if (a->jstate != J_NONE && have + a->jblank + 1 + n <= a->keep) {
		/* blank lines after an exception or in a Go dump: held until
		 * the next line says whether they belong */
		if ((a->jstate == J_PYEXC || a->jstate == J_GO) &&
		    blank(l, n)) {
			a->jblank++;
			return;
		}
		if (continues(a, l, n) && own(a)) {
			bool ok = true;
			for (; a->jblank && ok; a->jblank--)
				ok = jadd(a, "\n", 1);
			if (ok && jadd(a, "\n", 1) && jadd(a, l, n))
				return;
			/* out of memory: keep what we have, this line apart */
		}
	}
	join_flush(a);
	if (blank(l, n)) { /* a blank line takes nothing */
		adder_record(a, l, n, 0);
		return;
	}
	a->jptr = l; /* no copy yet: join_pin makes one if it must wait */
	a->jplen = n;
	a->jstate = first_state(l, n);
}
