/* rules.h - noise rules: one per line, first match wins (rules.c). */
#ifndef SPONGE_RULES_H
#define SPONGE_RULES_H

#include "internal.h"

/* What a rule does with a record it matches. */
enum sp_verb {
	SP_VERB_IGNORE, /* kept, out of the triggers and the listed log */
	SP_VERB_DROP,   /* not stored; counted */
	SP_VERB_LEVEL,  /* re-levelled (to=L) */
	SP_VERB_KEEP,   /* exempt from every later rule; to=L raises it */
};

typedef struct sp_rule {
	int verb;               /* enum sp_verb */
	int to;                 /* LEVEL, KEEP: the new level; -1 none */
	char *tag, *host;       /* globs (fnmatch); NULL: any */
	int most, least;        /* level>=L: no less severe than L (the
				   number at most L); level<=L: no more
				   severe (at least L); -1 none */
	bool masked;            /* "text" in the digest's masked form (matched
				   whole against the masked line), else /ERE/
				   (anywhere in the message) */
	char *pattern;          /* as written, without its quotes/slashes */
	char *regex;            /* what the engine compiles */
	char *name;             /* name=, else FILE:LINE */
	int64_t until_us;       /* until=: it expires then; 0 never */
	int64_t unless_n;       /* unless=N/WINDOW: past N matches in the */
	int64_t unless_us;      /*   window the records count again; 0 none */
	char where[160];        /* FILE:LINE */
	bool logcheck;          /* a logcheck rule: an ERE against the record
				   as a syslog file's line */
	void *posix;            /* regex_t, for an ERE the engine cannot take
				   (NULL: the engine's) */
} sp_rule;

typedef struct sp_rules {
	sp_rule *r;
	size_t n, cap;
} sp_rules;

/* Parse a rules file's text (file names it in messages) and append its
 * rules to rs.  On the first line that does not parse: SPONGE_ECONFIG
 * and err says "FILE:LINE: why" (the rules before it are kept). */
SP_HIDDEN int sp_rules_parse(sp_rules *rs, const char *file, const char *text,
			     size_t len, spbuf *err);
SP_HIDDEN void sp_rules_free(sp_rules *rs);
/* Compile rule r's pattern (an ERE) with the C library's regex into
 * r->posix, once; one that would make regcomp build a huge automaton
 * ({200}{200}, a++++) is refused.  SPONGE_ECONFIG with err "WHERE: why". */
SP_HIDDEN int sp_rule_posix(sp_rule *r, spbuf *err);
/* Append logcheck's rules of one file (grep -E lines; blank lines and
 * lines starting with '#' skipped, as logcheck's cleanrules does). */
SP_HIDDEN int sp_rules_add_logcheck(sp_rules *rs, const char *file,
				    const char *text, size_t len, spbuf *err);

/* The Vectorscan expression for a masked pattern: anchored at both ends,
 * "#" one masked value (as "#" stands in the masked line), "*" any text,
 * everything else itself. */
SP_HIDDEN bool sp_rules_masked_regex(spbuf *out, const char *pattern);

/* A POSIX ERE as GNU grep -E reads it, written for Vectorscan: inside a
 * bracket a backslash is itself and a leading ':' is escaped; outside,
 * {,n} is {0,n} and an escaped letter or digit that GNU does not give a
 * meaning (\d, \x) is the character itself.  False when the rule needs
 * what the engine lacks (a back-reference, \< \>, [= =], [. .]): match
 * it with the C library's regex instead. */
SP_HIDDEN bool sp_posix_to_pcre(const char *ere, spbuf *out);
/* The same, but where the engine lacks something, a pattern that matches
 * at least what the ERE matches (a back-reference becomes .*, \\< and \\>
 * nothing): a prefilter, each of its matches to be confirmed by the C
 * library's regex.  False only for [= =] and [. .]. */
SP_HIDDEN bool sp_posix_superset(const char *ere, spbuf *out);

#endif
